/**
 * @module manager/store/migrations — the versioned schema of the Manager's database, one ordered list for both
 * dialects. A migration, once released, is never edited: add a new version instead.
 *
 * Type choices (identical behaviour through the Store port, DESIGN.md §5):
 * - JSON fields are TEXT in both databases: the document round-trips byte for byte (key order kept, `\u0000`
 *   escapes accepted — jsonb would reorder keys and reject that escape). Cast with `::jsonb` for ad-hoc queries.
 * - Timestamps are ISO-8601 TEXT in SQLite (the store normalizes every value with `toISOString()`, so text order
 *   is time order) and TIMESTAMPTZ in Postgres (converted back to ISO with milliseconds on read).
 * - Booleans are INTEGER 0/1 in SQLite (STRICT tables), BOOLEAN in Postgres.
 * - Postgres key columns use `COLLATE "C"`: byte order like SQLite's BINARY collation, so list order and cursors
 *   agree across databases whatever the server's locale (en_US would sort "ab" before "a-c").
 */
import type { Dialect } from "./sql-driver.ts";

export interface Migration {
  version: number;
  name: string;
  sqlite: string[];
  postgres: string[];
}

/** Column types per dialect, used only to write the DDL below once for both databases. */
interface ColumnTypes {
  /** A text column that is (part of) a key or an ordering: byte-ordered in both. */
  key: string;
  text: string;
  json: string;
  ts: string;
  int: string;
  bigint: string;
  bool: string;
  /** Table suffix. */
  table: string;
}

const TYPES: Record<Dialect, ColumnTypes> = {
  sqlite: {
    key: "TEXT",
    text: "TEXT",
    json: "TEXT",
    ts: "TEXT",
    int: "INTEGER",
    bigint: "INTEGER",
    bool: "INTEGER",
    table: " STRICT",
  },
  postgres: {
    key: 'TEXT COLLATE "C"',
    text: "TEXT",
    json: "TEXT",
    ts: "TIMESTAMPTZ",
    int: "INTEGER",
    bigint: "BIGINT",
    bool: "BOOLEAN",
    table: "",
  },
};

/** Version 1: every table of the Store port. Frozen. */
function initialSchema(dialect: Dialect): string[] {
  const t = TYPES[dialect];
  const FALSE = dialect === "sqlite" ? "0" : "false";
  return [
    `CREATE TABLE clusters (
      id ${t.key} PRIMARY KEY,
      name ${t.key} NOT NULL UNIQUE,
      display_name ${t.text},
      datacenter ${t.text} NOT NULL,
      labels ${t.json} NOT NULL,
      capsule_proxy_url ${t.text},
      status ${t.text} NOT NULL,
      status_reason ${t.text},
      versions ${t.json} NOT NULL,
      capabilities ${t.json} NOT NULL,
      kubeconfig_ciphertext ${t.text},
      last_seen_at ${t.ts},
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL
    )${t.table}`,
    `CREATE TABLE tenants (
      name ${t.key} PRIMARY KEY,
      display_name ${t.text},
      owners ${t.json} NOT NULL,
      plan ${t.text},
      clusters ${t.json} NOT NULL,
      labels ${t.json} NOT NULL,
      policy_sets ${t.json} NOT NULL,
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL
    )${t.table}`,
    `CREATE TABLE projects (
      tenant ${t.key} NOT NULL,
      name ${t.key} NOT NULL,
      display_name ${t.text},
      cluster ${t.key} NOT NULL,
      namespace ${t.text} NOT NULL,
      labels ${t.json} NOT NULL,
      policy_sets ${t.json} NOT NULL,
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL,
      PRIMARY KEY (tenant, name)
    )${t.table}`,
    "CREATE INDEX projects_cluster ON projects (cluster, tenant, name)",
    `CREATE TABLE apps (
      tenant ${t.key} NOT NULL,
      project ${t.key} NOT NULL,
      name ${t.key} NOT NULL,
      cluster ${t.key} NOT NULL,
      namespace ${t.text} NOT NULL,
      labels ${t.json} NOT NULL,
      spec ${t.json} NOT NULL,
      revision ${t.int} NOT NULL,
      deployed_revision ${t.int},
      suspended ${t.bool} NOT NULL,
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL,
      PRIMARY KEY (tenant, project, name)
    )${t.table}`,
    "CREATE INDEX apps_cluster ON apps (cluster, tenant, project, name)",
    `CREATE TABLE app_revisions (
      tenant ${t.key} NOT NULL,
      project ${t.key} NOT NULL,
      app ${t.key} NOT NULL,
      revision ${t.int} NOT NULL,
      spec ${t.json} NOT NULL,
      created_at ${t.ts} NOT NULL,
      created_by ${t.text} NOT NULL,
      note ${t.text},
      PRIMARY KEY (tenant, project, app, revision)
    )${t.table}`,
    `CREATE TABLE plans (
      name ${t.key} PRIMARY KEY,
      display_name ${t.text},
      description ${t.text},
      quotas ${t.json} NOT NULL,
      limit_range ${t.json},
      allow_load_balancers ${t.bool} NOT NULL,
      traits ${t.json} NOT NULL,
      policies ${t.json} NOT NULL,
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL
    )${t.table}`,
    `CREATE TABLE policy_sets (
      name ${t.key} PRIMARY KEY,
      description ${t.text},
      traits ${t.json} NOT NULL,
      policies ${t.json} NOT NULL,
      allowed_component_types ${t.json},
      created_at ${t.ts} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      version ${t.int} NOT NULL
    )${t.table}`,
    `CREATE TABLE usage_records (
      id ${t.key} PRIMARY KEY,
      cluster_id ${t.key} NOT NULL,
      tenant ${t.key} NOT NULL,
      window_start ${t.ts} NOT NULL,
      window_end ${t.ts} NOT NULL,
      metrics ${t.json} NOT NULL,
      by_project ${t.json} NOT NULL,
      adjustment ${t.bool} NOT NULL,
      received_at ${t.ts} NOT NULL
    )${t.table}`,
    // DESIGN.md §3: a redelivered hourly report is a no-op; adjustments are separate rows, unique by id.
    `CREATE UNIQUE INDEX usage_records_window ON usage_records (cluster_id, tenant, window_start)
      WHERE adjustment = ${FALSE}`,
    "CREATE INDEX usage_records_order ON usage_records (window_start, cluster_id, tenant, id)",
    "CREATE INDEX usage_records_tenant ON usage_records (tenant, window_start)",
    `CREATE TABLE change_log (
      cluster_id ${t.key} NOT NULL,
      revision ${t.bigint} NOT NULL,
      kind ${t.text} NOT NULL,
      key ${t.text} NOT NULL,
      op ${t.text} NOT NULL,
      body ${t.json},
      created_at ${t.ts} NOT NULL,
      PRIMARY KEY (cluster_id, revision)
    )${t.table}`,
    // The revision counter lives apart from the log so that compaction never lowers it (DESIGN.md §3 resync).
    `CREATE TABLE cluster_revisions (
      cluster_id ${t.key} PRIMARY KEY,
      revision ${t.bigint} NOT NULL
    )${t.table}`,
    `CREATE TABLE status_mirror (
      cluster_id ${t.key} NOT NULL,
      kind ${t.key} NOT NULL,
      key ${t.key} NOT NULL,
      observed_generation ${t.bigint} NOT NULL,
      body ${t.json} NOT NULL,
      updated_at ${t.ts} NOT NULL,
      PRIMARY KEY (cluster_id, kind, key)
    )${t.table}`,
    "CREATE INDEX status_mirror_kind_key ON status_mirror (kind, key)",
    `CREATE TABLE events (
      id ${t.key} PRIMARY KEY,
      cluster_id ${t.key} NOT NULL,
      tenant ${t.key},
      at ${t.ts} NOT NULL,
      type ${t.text} NOT NULL,
      reason ${t.text} NOT NULL,
      message ${t.text} NOT NULL,
      object ${t.json}
    )${t.table}`,
    "CREATE INDEX events_at ON events (at, id)",
    "CREATE INDEX events_cluster ON events (cluster_id, at, id)",
    "CREATE INDEX events_tenant ON events (tenant, at, id)",
    `CREATE TABLE audit_log (
      id ${t.key} PRIMARY KEY,
      at ${t.ts} NOT NULL,
      actor ${t.key} NOT NULL,
      role ${t.text} NOT NULL,
      action ${t.text} NOT NULL,
      resource ${t.text} NOT NULL,
      tenant ${t.key},
      request_id ${t.text} NOT NULL,
      details ${t.json}
    )${t.table}`,
    "CREATE INDEX audit_log_at ON audit_log (at, id)",
    "CREATE INDEX audit_log_tenant ON audit_log (tenant, at, id)",
    "CREATE INDEX audit_log_actor ON audit_log (actor, at, id)",
    `CREATE TABLE idempotency_keys (
      scope ${t.key} NOT NULL,
      key ${t.key} NOT NULL,
      request_hash ${t.text} NOT NULL,
      status ${t.int} NOT NULL,
      body ${t.text} NOT NULL,
      created_at ${t.ts} NOT NULL,
      PRIMARY KEY (scope, key)
    )${t.table}`,
    "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
    `CREATE TABLE settings (
      key ${t.key} PRIMARY KEY,
      value ${t.text} NOT NULL
    )${t.table}`,
  ];
}

/**
 * Version 2: cluster enrolment (DESIGN.md §4). Bootstrap tokens are kept only as SHA-256 hex; a certificate row per
 * issued client certificate lets the Manager refuse a revoked serial; `clusters.revoked_at` marks a cluster that may
 * not connect again until it is re-enrolled with a fresh bootstrap token. Frozen.
 */
function enrolmentSchema(dialect: Dialect): string[] {
  const t = TYPES[dialect];
  return [
    `ALTER TABLE clusters ADD COLUMN revoked_at ${t.ts}`,
    `CREATE TABLE bootstrap_tokens (
      token_hash ${t.key} PRIMARY KEY,
      cluster_id ${t.key} NOT NULL,
      created_at ${t.ts} NOT NULL,
      expires_at ${t.ts} NOT NULL,
      used_at ${t.ts}
    )${t.table}`,
    "CREATE INDEX bootstrap_tokens_cluster ON bootstrap_tokens (cluster_id)",
    `CREATE TABLE cluster_certificates (
      serial ${t.key} PRIMARY KEY,
      cluster_id ${t.key} NOT NULL,
      fingerprint ${t.text} NOT NULL,
      not_before ${t.ts} NOT NULL,
      not_after ${t.ts} NOT NULL,
      issued_at ${t.ts} NOT NULL,
      revoked_at ${t.ts}
    )${t.table}`,
    "CREATE INDEX cluster_certificates_cluster ON cluster_certificates (cluster_id, issued_at, serial)",
  ];
}

/**
 * Version 3: usage reports outside the acceptance window (too old, from the future, malformed windows) are kept
 * with a reason instead of being dropped (DESIGN.md §3: usage is never lost), for an operator to inspect. Frozen.
 */
function usageQuarantineSchema(dialect: Dialect): string[] {
  const t = TYPES[dialect];
  return [
    `CREATE TABLE usage_quarantine (
      id ${t.key} PRIMARY KEY,
      cluster_id ${t.key} NOT NULL,
      tenant ${t.text} NOT NULL,
      reason ${t.text} NOT NULL,
      window_start ${t.ts} NOT NULL,
      window_end ${t.ts} NOT NULL,
      report ${t.json} NOT NULL,
      received_at ${t.ts} NOT NULL
    )${t.table}`,
    "CREATE INDEX usage_quarantine_received ON usage_quarantine (received_at, id)",
  ];
}

/** Version 4: the change log keeps the traceparent of the request that made a change (DESIGN.md §8). Frozen. */
function changeTraceSchema(dialect: Dialect): string[] {
  return [`ALTER TABLE change_log ADD COLUMN traceparent ${TYPES[dialect].text}`];
}

/**
 * Version 5: the unique index of regular usage windows leads with the window, not the cluster. The same rows are
 * unique; but a commit of reports (every cluster's tenants for the same recent hours) used to touch a leaf page per
 * cluster in this index, each written to the WAL, and now touches the few pages at the index's end — about half the
 * cost of a usage insert (docs/benchmarks.md). No query used the old column order: the index is partial, so it
 * served only the conflict check. Frozen.
 */
function usageWindowFirst(dialect: Dialect): string[] {
  const FALSE = dialect === "sqlite" ? "0" : "false";
  return [
    "DROP INDEX usage_records_window",
    `CREATE UNIQUE INDEX usage_records_window ON usage_records (window_start, cluster_id, tenant)
      WHERE adjustment = ${FALSE}`,
  ];
}

/** Every migration, in version order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial schema",
    sqlite: initialSchema("sqlite"),
    postgres: initialSchema("postgres"),
  },
  {
    version: 2,
    name: "cluster enrolment: bootstrap tokens, client certificates, revocation",
    sqlite: enrolmentSchema("sqlite"),
    postgres: enrolmentSchema("postgres"),
  },
  {
    version: 3,
    name: "usage quarantine",
    sqlite: usageQuarantineSchema("sqlite"),
    postgres: usageQuarantineSchema("postgres"),
  },
  {
    version: 4,
    name: "change-log traceparent",
    sqlite: changeTraceSchema("sqlite"),
    postgres: changeTraceSchema("postgres"),
  },
  {
    version: 5,
    name: "usage window index leads with the window",
    sqlite: usageWindowFirst("sqlite"),
    postgres: usageWindowFirst("postgres"),
  },
];

export const LATEST_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

/** The bookkeeping table itself; created before the lock-protected check of what is applied. */
export const SCHEMA_MIGRATIONS_DDL: Record<Dialect, string> = {
  sqlite: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  ) STRICT`,
  postgres: `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
  )`,
};
