/**
 * @module manager/store/sql-store — every repository of the Store port, written once over a `SqlDriver`.
 * SQL here is the common subset of SQLite ≥ 3.35 and Postgres ≥ 13: `$n` placeholders, row-value comparisons,
 * `INSERT … ON CONFLICT`, `RETURNING`. Dialect-specific text lives in the drivers and in `migrations.ts`.
 */
import { errors, KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { LATEST_VERSION, MIGRATIONS, SCHEMA_MIGRATIONS_DDL } from "./migrations.ts";
import type { SqlDriver, SqlParam, TableVersions } from "./sql-driver.ts";
import type {
  AppRevisionRepo,
  AppRevisionRow,
  AppRow,
  AuditRepo,
  AuditRow,
  BootstrapTokenRepo,
  BootstrapTokenRow,
  ChangeInput,
  ChangeLogRepo,
  ChangeRow,
  ClusterCertificateRepo,
  ClusterCertificateRow,
  ClusterRow,
  EventRepo,
  EventRow,
  IdempotencyRepo,
  IdempotencyRow,
  ListOptions,
  MigrationStatus,
  Page,
  PageRequest,
  ProjectRow,
  SettingRepo,
  StatusMirrorRepo,
  StatusMirrorRow,
  Store,
  StoreTx,
  UpdateOptions,
  UsageQuarantineRepo,
  UsageQuarantineRow,
  UsageRepo,
  UsageRow,
} from "./store.ts";

// ── Column codecs ───────────────────────────────────────────────────────────────────────────────────────────────

type ColumnType = "text" | "json" | "int" | "bool" | "ts";

interface Column {
  field: string;
  column: string;
  type: ColumnType;
}

const col = (field: string, column: string, type: ColumnType): Column => ({ field, column, type });

/**
 * Every stored timestamp is re-emitted with `toISOString()`: one fixed format is what makes text comparison in
 * SQLite equal time comparison (store.ts conventions), and it rejects garbage before it reaches the database.
 */
function normalizeTimestamp(value: unknown, field: string): string {
  // Already in that form (as nearly every timestamp is): returned as is, saving a parse and a format — three
  // per usage row. Days past the 28th take the long way, so an impossible date is judged exactly as before.
  if (typeof value === "string" && CANONICAL_TIMESTAMP.test(value) && value.charCodeAt(8) <= 50 /* '2' */) {
    if (value.charCodeAt(8) < 50 || value.charCodeAt(9) <= 56 /* '8' */) return value;
  }
  const date = typeof value === "string" ? new Date(value) : Number.NaN;
  if (typeof value !== "string" || Number.isNaN(date.valueOf())) {
    throw errors.badRequest(`${field} must be an ISO-8601 timestamp`, [
      { path: field, message: "must be an ISO-8601 timestamp" },
    ]);
  }
  return (date as Date).toISOString();
}

function encode(value: unknown, type: ColumnType, field: string): SqlParam {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "text":
      return String(value);
    case "json":
      return JSON.stringify(value);
    case "int":
      return Number(value);
    case "bool":
      return value === true;
    case "ts":
      return normalizeTimestamp(value, field);
    default: {
      const never: never = type;
      throw new Error(`unknown column type ${String(never)}`);
    }
  }
}

/**
 * The form `toISOString()` produces, which is how every timestamp is written (see `encode`). Reading one back
 * as it is saves a Date parse and format per timestamp — three per row, the largest decoding cost of a list.
 */
const CANONICAL_TIMESTAMP =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

function decode(raw: unknown, type: ColumnType): unknown {
  if (raw === null || raw === undefined) return type === "bool" ? false : null;
  switch (type) {
    case "text":
      return String(raw);
    case "json":
      return typeof raw === "string" ? JSON.parse(raw) : raw;
    case "int":
      // Postgres BIGINT and count(*) arrive as strings.
      return Number(raw);
    case "bool":
      return raw === true || raw === 1 || raw === "1" || raw === "t";
    case "ts":
      if (raw instanceof Date) return raw.toISOString();
      if (typeof raw === "string" && CANONICAL_TIMESTAMP.test(raw)) return raw;
      return new Date(String(raw)).toISOString();
    default: {
      const never: never = type;
      throw new Error(`unknown column type ${String(never)}`);
    }
  }
}

function decodeRow<R>(raw: Record<string, unknown>, columns: readonly Column[]): R {
  const out: Record<string, unknown> = {};
  for (const c of columns) out[c.field] = decode(raw[c.column], c.type);
  return out as R;
}

/** Builds `$from, $from+1, …` for `count` parameters. */
function placeholders(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ");
}

// ── Pagination ──────────────────────────────────────────────────────────────────────────────────────────────────

const MAX_SCAN_BATCH = 1000;

function badCursor(reason: string): KubeNovaError {
  return errors.badRequest(`cursor is malformed: ${reason}`, [{ path: "cursor", message: reason }]);
}

function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/** Decodes and type-checks a cursor against the key columns, so a forged cursor cannot reach the SQL. */
function decodeCursor(cursor: string, keys: readonly Column[]): SqlParam[] {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw badCursor("not base64url");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw badCursor("not a cursor returned by this list");
  }
  if (!Array.isArray(parsed) || parsed.length !== keys.length) throw badCursor("wrong shape");
  return keys.map((k, i) => {
    const value: unknown = parsed[i];
    if (k.type === "int") {
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw badCursor("wrong key type");
      return value;
    }
    if (typeof value !== "string") throw badCursor("wrong key type");
    if (k.type === "ts") {
      try {
        return normalizeTimestamp(value, "cursor");
      } catch {
        throw badCursor("wrong key type");
      }
    }
    return value;
  });
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw errors.badRequest("limit must be a positive integer", [
      { path: "limit", message: "must be a positive integer" },
    ]);
  }
}

interface PageQuery<R> {
  table: string;
  columns: readonly Column[];
  /** The ordering key, unique per row. */
  keys: readonly Column[];
  descending?: boolean;
  /** Extra SQL conditions over `params` ($1…). */
  conditions: string[];
  params: SqlParam[];
  limit: number;
  cursor?: string | undefined;
  where?: ((row: R) => boolean) | undefined;
}

/**
 * One page in key order. With a `where` predicate it scans forward in batches until the page is full (plus one
 * row, to know whether another page exists) or the rows run out, so pages are full and the cursor — the key of
 * the last row returned — stays valid whatever the predicate.
 */
async function listPage<R>(driver: SqlDriver, q: PageQuery<R>): Promise<Page<R>> {
  checkLimit(q.limit);
  let after = q.cursor === undefined ? null : decodeCursor(q.cursor, q.keys);
  const keyList = q.keys.map((k) => k.column).join(", ");
  const order = q.keys.map((k) => `${k.column}${q.descending ? " DESC" : ""}`).join(", ");
  const batch = q.where ? Math.min(Math.max(q.limit + 1, 100), MAX_SCAN_BATCH) : q.limit + 1;
  const matched: R[] = [];
  for (;;) {
    const conditions = [...q.conditions];
    const params = [...q.params];
    if (after) {
      conditions.push(
        `(${keyList}) ${q.descending ? "<" : ">"} (${placeholders(params.length + 1, after.length)})`,
      );
      params.push(...after);
    }
    params.push(batch);
    const sql =
      `SELECT * FROM ${q.table}` +
      (conditions.length ? ` WHERE ${conditions.join(" AND ")}` : "") +
      ` ORDER BY ${order} LIMIT $${params.length}`;
    const rows = await driver.query(sql, params);
    let last: R | undefined;
    for (const raw of rows) {
      const row = decodeRow<R>(raw, q.columns);
      last = row;
      if (!q.where || q.where(row)) {
        matched.push(row);
        if (matched.length > q.limit) break;
      }
    }
    if (matched.length > q.limit || rows.length < batch || last === undefined) break;
    after = keyOf(last, q.keys);
  }
  const items = matched.slice(0, q.limit);
  const tail = items[items.length - 1];
  return {
    items,
    nextCursor: matched.length > q.limit && tail !== undefined ? encodeCursor(keyOf(tail, q.keys)) : null,
  };
}

function keyOf<R>(row: R, keys: readonly Column[]): SqlParam[] {
  const record = row as Record<string, unknown>;
  return keys.map((k) => record[k.field] as SqlParam);
}

// ── Versioned entities (clusters, tenants, projects, apps, plans, policy sets) ───────────────────────────────────

interface EntitySpec {
  table: string;
  /** Noun used in error messages: `tenant "acme" already exists`. */
  kind: string;
  keys: readonly Column[];
  /** All columns, keys included, excluding created_at/updated_at/version. */
  columns: readonly Column[];
  /** Columns that never change after insert (beyond the keys). */
  immutable?: readonly string[];
}

const VERSION_COLUMNS: readonly Column[] = [
  col("createdAt", "created_at", "ts"),
  col("updatedAt", "updated_at", "ts"),
  col("version", "version", "int"),
];

interface VersionedRow {
  createdAt: string;
  updatedAt: string;
  version: number;
}

// ── Read cache ───────────────────────────────────────────────────────────────────────────────────────────────────

/** Rows (a get counts one, a page its items) one table's cache holds at most (a few MB); the oldest go first. */
export const READ_CACHE_ROWS_PER_TABLE = 5_000;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * Decoded reads of one table, reused until the table's write clock moves (`TableVersions`). Reading a row back
 * from SQLite and decoding it (JSON columns, timestamps) is most of an API GET's cost; like the Kubernetes API
 * server's watch cache, repeated reads of unchanged data are served from memory. Entries are deep-frozen — the
 * same object goes to every caller, so a caller that tried to change one would throw instead of corrupting it —
 * and the version is taken before the load, so a write racing the load leaves an entry that is already stale.
 */
class ReadCache {
  private readonly entries = new Map<string, { version: number; value: unknown; rows: number }>();
  private rows = 0;

  constructor(
    private readonly versions: TableVersions,
    private readonly table: string,
  ) {}

  async read<T>(key: string, load: () => Promise<T>, rowsOf: (value: T) => number): Promise<T> {
    const version = this.versions.version(this.table);
    const hit = this.entries.get(key);
    if (hit && hit.version === version) return hit.value as T;
    const value = deepFreeze(await load());
    const rows = Math.max(1, rowsOf(value));
    if (hit) {
      this.entries.delete(key);
      this.rows -= hit.rows;
    }
    if (rows > READ_CACHE_ROWS_PER_TABLE) return value;
    for (const [oldest, entry] of this.entries) {
      if (this.rows + rows <= READ_CACHE_ROWS_PER_TABLE) break;
      this.entries.delete(oldest);
      this.rows -= entry.rows;
    }
    this.entries.set(key, { version, value, rows });
    this.rows += rows;
    return value;
  }
}

class EntityTable<R extends VersionedRow> {
  readonly all: readonly Column[];
  private readonly cache: ReadCache | null;

  constructor(
    private readonly driver: SqlDriver,
    private readonly spec: EntitySpec,
  ) {
    this.all = [...spec.columns, ...VERSION_COLUMNS];
    this.cache = driver.versions ? new ReadCache(driver.versions, spec.table) : null;
  }

  private keyCondition(from: number): string {
    return this.spec.keys.map((k, i) => `${k.column} = $${from + i}`).join(" AND ");
  }

  private displayKey(key: readonly SqlParam[]): string {
    return key.map(String).join("/");
  }

  get(key: SqlParam[]): Promise<R | null> {
    if (!this.cache) return this.load(key);
    return this.cache.read(
      `get${JSON.stringify(key)}`,
      () => this.load(key),
      () => 1,
    );
  }

  private async load(key: SqlParam[]): Promise<R | null> {
    const rows = await this.driver.query(
      `SELECT * FROM ${this.spec.table} WHERE ${this.keyCondition(1)}`,
      key,
    );
    return rows[0] ? decodeRow<R>(rows[0], this.all) : null;
  }

  getBy(column: Column, value: SqlParam): Promise<R | null> {
    if (!this.cache) return this.loadBy(column, value);
    const key = `by:${column.column}:${JSON.stringify(value)}`;
    return this.cache.read(
      key,
      () => this.loadBy(column, value),
      () => 1,
    );
  }

  private async loadBy(column: Column, value: SqlParam): Promise<R | null> {
    const rows = await this.driver.query(`SELECT * FROM ${this.spec.table} WHERE ${column.column} = $1`, [
      value,
    ]);
    return rows[0] ? decodeRow<R>(rows[0], this.all) : null;
  }

  list(
    conditions: string[],
    params: SqlParam[],
    options: ListOptions<R>,
    keys = this.spec.keys,
  ): Promise<Page<R>> {
    const load = () => this.loadPage(conditions, params, options, keys);
    // A `where` predicate is a function: nothing to key a cache entry by.
    if (!this.cache || options.where) return load();
    const key = `list${JSON.stringify([conditions, params, keys.map((k) => k.column), options.limit, options.cursor ?? null])}`;
    return this.cache.read(key, load, (page) => page.items.length);
  }

  private loadPage(
    conditions: string[],
    params: SqlParam[],
    options: ListOptions<R>,
    keys: readonly Column[],
  ): Promise<Page<R>> {
    return listPage<R>(this.driver, {
      table: this.spec.table,
      columns: this.all,
      keys,
      conditions,
      params,
      limit: options.limit,
      cursor: options.cursor,
      where: options.where,
    });
  }

  /** Inserts with version 1; KN-409 on any unique key (ON CONFLICT DO NOTHING keeps a Postgres tx usable). */
  async insert(row: R): Promise<R> {
    const record = row as unknown as Record<string, unknown>;
    const stored: Record<string, unknown> = { ...record, version: 1 };
    const params = this.all.map((c) => encode(stored[c.field], c.type, c.field));
    const rows = await this.driver.query(
      `INSERT INTO ${this.spec.table} (${this.all.map((c) => c.column).join(", ")})
       VALUES (${placeholders(1, params.length)}) ON CONFLICT DO NOTHING RETURNING *`,
      params,
    );
    if (!rows[0]) {
      throw errors.conflict(
        `${this.spec.kind} "${this.displayKey(keyOf(row, this.spec.keys))}" already exists`,
      );
    }
    return decodeRow<R>(rows[0], this.all);
  }

  /**
   * Writes every mutable field, bumps `version`, stamps `updatedAt` with the store's clock (the write time);
   * `createdAt`, the key and immutable fields stay as stored.
   */
  async update(row: R, options: UpdateOptions = {}): Promise<R> {
    const record = row as unknown as Record<string, unknown>;
    const skip = new Set([
      ...this.spec.keys.map((k) => k.field),
      ...(this.spec.immutable ?? []),
      "createdAt",
      "updatedAt",
      "version",
    ]);
    const mutable = this.spec.columns.filter((c) => !skip.has(c.field));
    const params: SqlParam[] = mutable.map((c) => encode(record[c.field], c.type, c.field));
    const sets = mutable.map((c, i) => `${c.column} = $${i + 1}`);
    params.push(new Date().toISOString());
    sets.push(`updated_at = $${params.length}`, "version = version + 1");
    const key = keyOf(row, this.spec.keys);
    let where = this.keyCondition(params.length + 1);
    params.push(...key);
    if (options.expectedVersion !== undefined) {
      params.push(options.expectedVersion);
      where += ` AND version = $${params.length}`;
    }
    const rows = await this.driver.query(
      `UPDATE ${this.spec.table} SET ${sets.join(", ")} WHERE ${where} RETURNING *`,
      params,
    );
    if (rows[0]) return decodeRow<R>(rows[0], this.all);
    return this.failWrite(key, options);
  }

  async delete(key: SqlParam[], options: UpdateOptions = {}): Promise<boolean> {
    const params = [...key];
    let where = this.keyCondition(1);
    if (options.expectedVersion !== undefined) {
      params.push(options.expectedVersion);
      where += ` AND version = $${params.length}`;
    }
    const changed = await this.driver.exec(`DELETE FROM ${this.spec.table} WHERE ${where}`, params);
    if (changed > 0) return true;
    if (options.expectedVersion === undefined) return false;
    const current = await this.get(key);
    if (!current) return false;
    throw this.versionMismatch(key, current.version, options.expectedVersion);
  }

  private async failWrite(key: SqlParam[], options: UpdateOptions): Promise<never> {
    const current = await this.get(key);
    if (!current) throw errors.notFound(this.spec.kind, this.displayKey(key));
    throw this.versionMismatch(key, current.version, options.expectedVersion ?? current.version);
  }

  private versionMismatch(key: SqlParam[], actual: number, expected: number): KubeNovaError {
    return new KubeNovaError(
      "KN-412",
      `${this.spec.kind} "${this.displayKey(key)}" is at version ${actual}, not ${expected}`,
      { context: { expectedVersion: expected, actualVersion: actual } },
    );
  }
}

const CLUSTER: EntitySpec = {
  table: "clusters",
  kind: "cluster",
  keys: [col("name", "name", "text")],
  immutable: ["id"],
  columns: [
    col("id", "id", "text"),
    col("name", "name", "text"),
    col("displayName", "display_name", "text"),
    col("datacenter", "datacenter", "text"),
    col("labels", "labels", "json"),
    col("capsuleProxyUrl", "capsule_proxy_url", "text"),
    col("status", "status", "text"),
    col("statusReason", "status_reason", "text"),
    col("versions", "versions", "json"),
    col("capabilities", "capabilities", "json"),
    col("kubeconfigCiphertext", "kubeconfig_ciphertext", "text"),
    col("lastSeenAt", "last_seen_at", "ts"),
    col("revokedAt", "revoked_at", "ts"),
  ],
};

const TENANT: EntitySpec = {
  table: "tenants",
  kind: "tenant",
  keys: [col("name", "name", "text")],
  columns: [
    col("name", "name", "text"),
    col("displayName", "display_name", "text"),
    col("owners", "owners", "json"),
    col("plan", "plan", "text"),
    col("clusters", "clusters", "json"),
    col("labels", "labels", "json"),
    col("policySets", "policy_sets", "json"),
  ],
};

const PROJECT: EntitySpec = {
  table: "projects",
  kind: "project",
  keys: [col("tenant", "tenant", "text"), col("name", "name", "text")],
  columns: [
    col("tenant", "tenant", "text"),
    col("name", "name", "text"),
    col("displayName", "display_name", "text"),
    col("cluster", "cluster", "text"),
    col("namespace", "namespace", "text"),
    col("labels", "labels", "json"),
    col("policySets", "policy_sets", "json"),
  ],
};

const APP: EntitySpec = {
  table: "apps",
  kind: "app",
  keys: [col("tenant", "tenant", "text"), col("project", "project", "text"), col("name", "name", "text")],
  columns: [
    col("tenant", "tenant", "text"),
    col("project", "project", "text"),
    col("name", "name", "text"),
    col("cluster", "cluster", "text"),
    col("namespace", "namespace", "text"),
    col("labels", "labels", "json"),
    col("spec", "spec", "json"),
    col("revision", "revision", "int"),
    col("deployedRevision", "deployed_revision", "int"),
    col("suspended", "suspended", "bool"),
  ],
};

const PLAN: EntitySpec = {
  table: "plans",
  kind: "plan",
  keys: [col("name", "name", "text")],
  columns: [
    col("name", "name", "text"),
    col("displayName", "display_name", "text"),
    col("description", "description", "text"),
    col("quotas", "quotas", "json"),
    col("limitRange", "limit_range", "json"),
    col("allowLoadBalancers", "allow_load_balancers", "bool"),
    col("traits", "traits", "json"),
    col("policies", "policies", "json"),
  ],
};

const POLICY_SET: EntitySpec = {
  table: "policy_sets",
  kind: "policy set",
  keys: [col("name", "name", "text")],
  columns: [
    col("name", "name", "text"),
    col("description", "description", "text"),
    col("traits", "traits", "json"),
    col("policies", "policies", "json"),
    col("allowedComponentTypes", "allowed_component_types", "json"),
  ],
};

/** The plain single-name repos (tenants, plans, policy sets) share one shape. */
function namedRepo<R extends VersionedRow & { name: string }>(table: EntityTable<R>) {
  return {
    get: (name: string) => table.get([name]),
    list: (options: ListOptions<R>) => table.list([], [], options),
    insert: (row: R) => table.insert(row),
    update: (row: R, options?: UpdateOptions) => table.update(row, options),
    delete: (name: string, options?: UpdateOptions) => table.delete([name], options),
  };
}

/** Adds `column = $n` for each defined filter value. */
function filterConditions(filters: Array<[column: string, value: string | undefined]>) {
  const conditions: string[] = [];
  const params: SqlParam[] = [];
  for (const [column, value] of filters) {
    if (value === undefined) continue;
    params.push(value);
    conditions.push(`${column} = $${params.length}`);
  }
  return { conditions, params };
}

// ── Append-only and keyed tables ────────────────────────────────────────────────────────────────────────────────

const APP_REVISION_COLUMNS: readonly Column[] = [
  col("tenant", "tenant", "text"),
  col("project", "project", "text"),
  col("app", "app", "text"),
  col("revision", "revision", "int"),
  col("spec", "spec", "json"),
  col("createdAt", "created_at", "ts"),
  col("createdBy", "created_by", "text"),
  col("note", "note", "text"),
];

const USAGE_COLUMNS: readonly Column[] = [
  col("id", "id", "text"),
  col("clusterId", "cluster_id", "text"),
  col("tenant", "tenant", "text"),
  col("windowStart", "window_start", "ts"),
  col("windowEnd", "window_end", "ts"),
  col("metrics", "metrics", "json"),
  col("byProject", "by_project", "json"),
  col("adjustment", "adjustment", "bool"),
  col("receivedAt", "received_at", "ts"),
];

const QUARANTINE_COLUMNS: readonly Column[] = [
  col("id", "id", "text"),
  col("clusterId", "cluster_id", "text"),
  col("tenant", "tenant", "text"),
  col("reason", "reason", "text"),
  col("windowStart", "window_start", "ts"),
  col("windowEnd", "window_end", "ts"),
  col("report", "report", "json"),
  col("receivedAt", "received_at", "ts"),
];

const CHANGE_COLUMNS: readonly Column[] = [
  col("clusterId", "cluster_id", "text"),
  col("revision", "revision", "int"),
  col("kind", "kind", "text"),
  col("key", "key", "text"),
  col("op", "op", "text"),
  col("body", "body", "json"),
  col("createdAt", "created_at", "ts"),
  col("traceparent", "traceparent", "text"),
];

const STATUS_COLUMNS: readonly Column[] = [
  col("clusterId", "cluster_id", "text"),
  col("kind", "kind", "text"),
  col("key", "key", "text"),
  col("observedGeneration", "observed_generation", "int"),
  col("body", "body", "json"),
  col("updatedAt", "updated_at", "ts"),
];

const EVENT_COLUMNS: readonly Column[] = [
  col("id", "id", "text"),
  col("clusterId", "cluster_id", "text"),
  col("tenant", "tenant", "text"),
  col("at", "at", "ts"),
  col("type", "type", "text"),
  col("reason", "reason", "text"),
  col("message", "message", "text"),
  col("object", "object", "json"),
];

const AUDIT_COLUMNS: readonly Column[] = [
  col("id", "id", "text"),
  col("at", "at", "ts"),
  col("actor", "actor", "text"),
  col("role", "role", "text"),
  col("action", "action", "text"),
  col("resource", "resource", "text"),
  col("tenant", "tenant", "text"),
  col("requestId", "request_id", "text"),
  col("details", "details", "json"),
];

const IDEMPOTENCY_COLUMNS: readonly Column[] = [
  col("scope", "scope", "text"),
  col("key", "key", "text"),
  col("requestHash", "request_hash", "text"),
  col("status", "status", "int"),
  col("body", "body", "text"),
  col("createdAt", "created_at", "ts"),
];

/** `INSERT … ON CONFLICT DO NOTHING RETURNING 1`: true when the row was new. */
async function insertIfAbsent(
  driver: SqlDriver,
  table: string,
  columns: readonly Column[],
  row: object,
): Promise<boolean> {
  const record = row as Record<string, unknown>;
  const params = columns.map((c) => encode(record[c.field], c.type, c.field));
  const rows = await driver.query(
    `INSERT INTO ${table} (${columns.map((c) => c.column).join(", ")})
     VALUES (${placeholders(1, params.length)}) ON CONFLICT DO NOTHING RETURNING 1 AS inserted`,
    params,
  );
  return rows.length > 0;
}

/** Rows per multi-row INSERT: far below SQLite's 32766 and Postgres' 65535 bind-parameter limits. */
const INSERT_CHUNK_ROWS = 500;

/**
 * Multi-row `insertManyIfAbsent` statements by table and row count, built once. Rows go in chunks of powers of
 * two up to 256 (a batch of 237 is 128 + 64 + 32 + 8 + 4 + 1), so each table has at most nine statement shapes
 * for the driver to keep prepared instead of one per batch size, each prepared anew (a few % of ingest's CPU).
 */
const insertManySql = new Map<string, string>();
const INSERT_MANY_MAX_ROWS = 256;

/**
 * `insertIfAbsent` for many rows keyed by an `id` column: one `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING
 * RETURNING id` per chunk instead of a statement per row. Per row, in order: "inserted" when it was written,
 * "duplicate" when it met an existing row or unique key, or repeats an earlier row of the same call.
 */
async function insertManyIfAbsent(
  driver: SqlDriver,
  table: string,
  columns: readonly Column[],
  rows: readonly { id: string }[],
): Promise<Array<"inserted" | "duplicate">> {
  const outcomes: Array<"inserted" | "duplicate"> = [];
  const answered = new Set<string>();
  for (let start = 0; start < rows.length; ) {
    const left = rows.length - start;
    const size = left >= INSERT_MANY_MAX_ROWS ? INSERT_MANY_MAX_ROWS : 2 ** Math.floor(Math.log2(left));
    const chunk = size === rows.length ? rows : rows.slice(start, start + size);
    start += size;
    const params: SqlParam[] = [];
    for (const row of chunk) {
      const record = row as unknown as Record<string, unknown>;
      for (const c of columns) params.push(encode(record[c.field], c.type, c.field));
    }
    const key = `${table}:${chunk.length}`;
    let sql = insertManySql.get(key);
    if (sql === undefined) {
      const tuples = chunk.map((_, i) => `(${placeholders(i * columns.length + 1, columns.length)})`);
      sql = `INSERT INTO ${table} (${columns.map((c) => c.column).join(", ")}) VALUES ${tuples.join(", ")}
        ON CONFLICT DO NOTHING RETURNING id`;
      insertManySql.set(key, sql);
    }
    const inserted = new Set<string>();
    for (const r of await driver.query<{ id: unknown }>(sql, params)) inserted.add(String(r.id));
    for (const row of chunk) {
      outcomes.push(inserted.has(row.id) && !answered.has(row.id) ? "inserted" : "duplicate");
      answered.add(row.id);
    }
  }
  return outcomes;
}

function changeLogRepo(driver: SqlDriver): ChangeLogRepo {
  return {
    append: (clusterId, changes) =>
      driver.transaction(async (tx) => {
        if (changes.length === 0) return [];
        // One atomic upsert reserves the whole range; its row lock (Postgres) or the write lock (SQLite) is held
        // until commit, so concurrent appends to one cluster serialize: no repeated and no skipped revisions.
        const counter = await tx.query<{ revision: unknown }>(
          `INSERT INTO cluster_revisions (cluster_id, revision) VALUES ($1, $2)
           ON CONFLICT (cluster_id) DO UPDATE SET revision = cluster_revisions.revision + $2
           RETURNING revision`,
          [clusterId, changes.length],
        );
        const high = Number(counter[0]?.revision);
        const createdAt = new Date().toISOString();
        const rows: ChangeRow[] = changes.map((change: ChangeInput, i) => ({
          clusterId,
          revision: high - changes.length + 1 + i,
          kind: change.kind,
          key: change.key,
          op: change.op,
          body: change.body,
          createdAt,
          traceparent: change.traceparent ?? null,
        }));
        for (let start = 0; start < rows.length; start += INSERT_CHUNK_ROWS) {
          const chunk = rows.slice(start, start + INSERT_CHUNK_ROWS);
          const params: SqlParam[] = [];
          const tuples = chunk.map((row) => {
            const values = CHANGE_COLUMNS.map((c) =>
              encode((row as unknown as Record<string, unknown>)[c.field], c.type, c.field),
            );
            const tuple = `(${placeholders(params.length + 1, values.length)})`;
            params.push(...values);
            return tuple;
          });
          await tx.exec(
            `INSERT INTO change_log (${CHANGE_COLUMNS.map((c) => c.column).join(", ")}) VALUES ${tuples.join(", ")}`,
            params,
          );
        }
        return rows;
      }),
    list: async (clusterId, options) => {
      checkLimit(options.limit);
      const rows = await driver.query(
        "SELECT * FROM change_log WHERE cluster_id = $1 AND revision > $2 ORDER BY revision LIMIT $3",
        [clusterId, options.afterRevision, options.limit],
      );
      return rows.map((raw) => decodeRow<ChangeRow>(raw, CHANGE_COLUMNS));
    },
    latestRevision: async (clusterId) => {
      const rows = await driver.query<{ revision: unknown }>(
        "SELECT revision FROM cluster_revisions WHERE cluster_id = $1",
        [clusterId],
      );
      return rows[0] ? Number(rows[0].revision) : 0;
    },
    earliestRevision: async (clusterId) => {
      const rows = await driver.query<{ revision: unknown }>(
        "SELECT MIN(revision) AS revision FROM change_log WHERE cluster_id = $1",
        [clusterId],
      );
      const value = rows[0]?.revision;
      return value === null || value === undefined ? null : Number(value);
    },
    compact: (clusterId, throughRevision) =>
      driver.exec("DELETE FROM change_log WHERE cluster_id = $1 AND revision <= $2", [
        clusterId,
        throughRevision,
      ]),
    deleteCluster: (clusterId) =>
      driver.transaction(async (tx) => {
        await tx.exec("DELETE FROM change_log WHERE cluster_id = $1", [clusterId]);
        await tx.exec("DELETE FROM cluster_revisions WHERE cluster_id = $1", [clusterId]);
      }),
  };
}

function appRevisionRepo(driver: SqlDriver): AppRevisionRepo {
  const keys = APP_REVISION_COLUMNS.slice(0, 4);
  return {
    get: async (tenant, project, app, revision) => {
      const rows = await driver.query(
        "SELECT * FROM app_revisions WHERE tenant = $1 AND project = $2 AND app = $3 AND revision = $4",
        [tenant, project, app, revision],
      );
      return rows[0] ? decodeRow<AppRevisionRow>(rows[0], APP_REVISION_COLUMNS) : null;
    },
    list: (tenant, project, app, options: PageRequest) =>
      listPage<AppRevisionRow>(driver, {
        table: "app_revisions",
        columns: APP_REVISION_COLUMNS,
        // Newest first within one app; the three fixed key parts keep the cursor comparison on the index.
        keys,
        descending: true,
        conditions: ["tenant = $1", "project = $2", "app = $3"],
        params: [tenant, project, app],
        limit: options.limit,
        cursor: options.cursor,
      }),
    insert: async (row) => {
      if (!(await insertIfAbsent(driver, "app_revisions", APP_REVISION_COLUMNS, row))) {
        throw errors.conflict(
          `app revision "${row.tenant}/${row.project}/${row.app}@${row.revision}" already exists`,
        );
      }
      return row;
    },
    deleteForApp: (tenant, project, app) =>
      driver.exec("DELETE FROM app_revisions WHERE tenant = $1 AND project = $2 AND app = $3", [
        tenant,
        project,
        app,
      ]),
  };
}

function usageRepo(driver: SqlDriver): UsageRepo {
  return {
    // The partial unique index makes a redelivered hourly report a no-op (DESIGN.md §3: exactly-once in the DB).
    insert: async (row) =>
      (await insertIfAbsent(driver, "usage_records", USAGE_COLUMNS, row)) ? "inserted" : "duplicate",
    insertMany: (rows) => insertManyIfAbsent(driver, "usage_records", USAGE_COLUMNS, rows),
    list: async (filter, options) => {
      const { conditions, params } = filterConditions([
        ["tenant", filter.tenant],
        ["cluster_id", filter.clusterId],
      ]);
      if (filter.from !== undefined) {
        params.push(normalizeTimestamp(filter.from, "from"));
        conditions.push(`window_start >= $${params.length}`);
      }
      if (filter.to !== undefined) {
        params.push(normalizeTimestamp(filter.to, "to"));
        conditions.push(`window_start < $${params.length}`);
      }
      return listPage<UsageRow>(driver, {
        table: "usage_records",
        columns: USAGE_COLUMNS,
        keys: [USAGE_COLUMNS[3]!, USAGE_COLUMNS[1]!, USAGE_COLUMNS[2]!, USAGE_COLUMNS[0]!],
        conditions,
        params,
        limit: options.limit,
        cursor: options.cursor,
      });
    },
  };
}

function usageQuarantineRepo(driver: SqlDriver): UsageQuarantineRepo {
  return {
    insert: async (row) =>
      (await insertIfAbsent(driver, "usage_quarantine", QUARANTINE_COLUMNS, row)) ? "inserted" : "duplicate",
    insertMany: (rows) => insertManyIfAbsent(driver, "usage_quarantine", QUARANTINE_COLUMNS, rows),
    list: async (filter, options) => {
      const { conditions, params } = filterConditions([["cluster_id", filter.clusterId]]);
      return listPage<UsageQuarantineRow>(driver, {
        table: "usage_quarantine",
        columns: QUARANTINE_COLUMNS,
        keys: [QUARANTINE_COLUMNS[7]!, QUARANTINE_COLUMNS[0]!],
        descending: true,
        conditions,
        params,
        limit: options.limit,
        cursor: options.cursor,
      });
    },
  };
}

function statusMirrorRepo(driver: SqlDriver): StatusMirrorRepo {
  return {
    // One statement, so two reports racing for one object cannot both pass a read-then-write check.
    // Equal generation: the later report wins (status changes without a spec change keep the generation).
    upsert: async (row: StatusMirrorRow) => {
      const params = STATUS_COLUMNS.map((c) =>
        encode((row as unknown as Record<string, unknown>)[c.field], c.type, c.field),
      );
      const rows = await driver.query(
        `INSERT INTO status_mirror (${STATUS_COLUMNS.map((c) => c.column).join(", ")})
         VALUES (${placeholders(1, params.length)})
         ON CONFLICT (cluster_id, kind, key) DO UPDATE SET
           observed_generation = excluded.observed_generation,
           body = excluded.body,
           updated_at = excluded.updated_at
         WHERE status_mirror.observed_generation <= excluded.observed_generation
         RETURNING 1 AS written`,
        params,
      );
      return rows.length > 0;
    },
    get: async (clusterId, kind, key) => {
      const rows = await driver.query(
        "SELECT * FROM status_mirror WHERE cluster_id = $1 AND kind = $2 AND key = $3",
        [clusterId, kind, key],
      );
      return rows[0] ? decodeRow<StatusMirrorRow>(rows[0], STATUS_COLUMNS) : null;
    },
    listByKey: async (kind, keyPrefix) => {
      // substr/length instead of LIKE: no wildcard escaping, and SQLite's LIKE is case-insensitive.
      const rows = await driver.query(
        `SELECT * FROM status_mirror WHERE kind = $1 AND substr(key, 1, length(CAST($2 AS TEXT))) = CAST($2 AS TEXT)
         ORDER BY key, cluster_id`,
        [kind, keyPrefix],
      );
      return rows.map((raw) => decodeRow<StatusMirrorRow>(raw, STATUS_COLUMNS));
    },
  };
}

function eventRepo(driver: SqlDriver): EventRepo {
  return {
    insert: async (row) =>
      (await insertIfAbsent(driver, "events", EVENT_COLUMNS, row)) ? "inserted" : "duplicate",
    list: async (filter, options) => {
      const { conditions, params } = filterConditions([
        ["cluster_id", filter.clusterId],
        ["tenant", filter.tenant],
      ]);
      return listPage<EventRow>(driver, {
        table: "events",
        columns: EVENT_COLUMNS,
        keys: [EVENT_COLUMNS[3]!, EVENT_COLUMNS[0]!],
        descending: true,
        conditions,
        params,
        limit: options.limit,
        cursor: options.cursor,
      });
    },
  };
}

function auditRepo(driver: SqlDriver): AuditRepo {
  return {
    insert: async (row) => {
      if (!(await insertIfAbsent(driver, "audit_log", AUDIT_COLUMNS, row))) {
        throw errors.conflict(`audit record "${row.id}" already exists`);
      }
    },
    list: async (filter, options) => {
      const { conditions, params } = filterConditions([
        ["tenant", filter.tenant],
        ["actor", filter.actor],
      ]);
      return listPage<AuditRow>(driver, {
        table: "audit_log",
        columns: AUDIT_COLUMNS,
        keys: [AUDIT_COLUMNS[1]!, AUDIT_COLUMNS[0]!],
        descending: true,
        conditions,
        params,
        limit: options.limit,
        cursor: options.cursor,
      });
    },
  };
}

function idempotencyRepo(driver: SqlDriver): IdempotencyRepo {
  return {
    get: async (scope, key) => {
      const rows = await driver.query("SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2", [
        scope,
        key,
      ]);
      return rows[0] ? decodeRow<IdempotencyRow>(rows[0], IDEMPOTENCY_COLUMNS) : null;
    },
    put: (row) => insertIfAbsent(driver, "idempotency_keys", IDEMPOTENCY_COLUMNS, row),
    expire: async (createdBefore) =>
      driver.exec("DELETE FROM idempotency_keys WHERE created_at < $1", [
        normalizeTimestamp(createdBefore, "createdBefore"),
      ]),
  };
}

function settingRepo(driver: SqlDriver): SettingRepo {
  return {
    get: async (key) => {
      const rows = await driver.query<{ value: string }>("SELECT value FROM settings WHERE key = $1", [key]);
      return rows[0] ? String(rows[0].value) : null;
    },
    put: async (key, value) => {
      await driver.exec(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
      );
    },
    putIfAbsent: async (key, value) =>
      (await driver.exec("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [
        key,
        value,
      ])) > 0,
  };
}

const BOOTSTRAP_TOKEN_COLUMNS: readonly Column[] = [
  col("tokenHash", "token_hash", "text"),
  col("clusterId", "cluster_id", "text"),
  col("createdAt", "created_at", "ts"),
  col("expiresAt", "expires_at", "ts"),
  col("usedAt", "used_at", "ts"),
];

function bootstrapTokenRepo(driver: SqlDriver): BootstrapTokenRepo {
  return {
    insert: async (row) => {
      if (!(await insertIfAbsent(driver, "bootstrap_tokens", BOOTSTRAP_TOKEN_COLUMNS, row))) {
        throw errors.conflict("bootstrap token already exists");
      }
      return row;
    },
    get: async (tokenHash) => {
      const rows = await driver.query("SELECT * FROM bootstrap_tokens WHERE token_hash = $1", [tokenHash]);
      return rows[0] ? decodeRow<BootstrapTokenRow>(rows[0], BOOTSTRAP_TOKEN_COLUMNS) : null;
    },
    consume: async (tokenHash, at) => {
      const when = normalizeTimestamp(at, "at");
      const rows = await driver.query(
        `UPDATE bootstrap_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING *`,
        [tokenHash, when],
      );
      return rows[0] ? decodeRow<BootstrapTokenRow>(rows[0], BOOTSTRAP_TOKEN_COLUMNS) : null;
    },
    deleteUnused: (clusterId) =>
      driver.exec("DELETE FROM bootstrap_tokens WHERE cluster_id = $1 AND used_at IS NULL", [clusterId]),
    deleteForCluster: (clusterId) =>
      driver.exec("DELETE FROM bootstrap_tokens WHERE cluster_id = $1", [clusterId]),
  };
}

const CERTIFICATE_COLUMNS: readonly Column[] = [
  col("serial", "serial", "text"),
  col("clusterId", "cluster_id", "text"),
  col("fingerprint", "fingerprint", "text"),
  col("notBefore", "not_before", "ts"),
  col("notAfter", "not_after", "ts"),
  col("issuedAt", "issued_at", "ts"),
  col("revokedAt", "revoked_at", "ts"),
];

function clusterCertificateRepo(driver: SqlDriver): ClusterCertificateRepo {
  return {
    insert: async (row) => {
      if (!(await insertIfAbsent(driver, "cluster_certificates", CERTIFICATE_COLUMNS, row))) {
        throw errors.conflict(`certificate serial "${row.serial}" already exists`);
      }
      return row;
    },
    get: async (serial) => {
      const rows = await driver.query("SELECT * FROM cluster_certificates WHERE serial = $1", [serial]);
      return rows[0] ? decodeRow<ClusterCertificateRow>(rows[0], CERTIFICATE_COLUMNS) : null;
    },
    listForCluster: async (clusterId) => {
      const rows = await driver.query(
        "SELECT * FROM cluster_certificates WHERE cluster_id = $1 ORDER BY issued_at, serial",
        [clusterId],
      );
      return rows.map((raw) => decodeRow<ClusterCertificateRow>(raw, CERTIFICATE_COLUMNS));
    },
    revokeForCluster: (clusterId, at) =>
      driver.exec(
        "UPDATE cluster_certificates SET revoked_at = $2 WHERE cluster_id = $1 AND revoked_at IS NULL",
        [clusterId, normalizeTimestamp(at, "at")],
      ),
  };
}

/** Every repository bound to one driver (the pool, or one transaction). */
function repositories(driver: SqlDriver): StoreTx {
  const clusters = new EntityTable<ClusterRow>(driver, CLUSTER);
  const projects = new EntityTable<ProjectRow>(driver, PROJECT);
  const apps = new EntityTable<AppRow>(driver, APP);
  return {
    clusters: {
      ...namedRepo(clusters),
      getById: (id) => clusters.getBy(CLUSTER.columns[0]!, id),
    },
    tenants: namedRepo(new EntityTable(driver, TENANT)),
    projects: {
      get: (tenant, name) => projects.get([tenant, name]),
      list: async (filter, options) => {
        const { conditions, params } = filterConditions([
          ["tenant", filter.tenant],
          ["cluster", filter.cluster],
        ]);
        return projects.list(conditions, params, options);
      },
      insert: (row) => projects.insert(row),
      update: (row, options) => projects.update(row, options),
      delete: (tenant, name, options) => projects.delete([tenant, name], options),
    },
    apps: {
      get: (tenant, project, name) => apps.get([tenant, project, name]),
      list: async (filter, options) => {
        const { conditions, params } = filterConditions([
          ["tenant", filter.tenant],
          ["project", filter.project],
          ["cluster", filter.cluster],
        ]);
        return apps.list(conditions, params, options);
      },
      insert: (row) => apps.insert(row),
      update: (row, options) => apps.update(row, options),
      delete: (tenant, project, name, options) => apps.delete([tenant, project, name], options),
    },
    appRevisions: appRevisionRepo(driver),
    plans: namedRepo(new EntityTable(driver, PLAN)),
    policySets: namedRepo(new EntityTable(driver, POLICY_SET)),
    usage: usageRepo(driver),
    usageQuarantine: usageQuarantineRepo(driver),
    changeLog: changeLogRepo(driver),
    statusMirror: statusMirrorRepo(driver),
    events: eventRepo(driver),
    audit: auditRepo(driver),
    idempotency: idempotencyRepo(driver),
    settings: settingRepo(driver),
    bootstrapTokens: bootstrapTokenRepo(driver),
    clusterCertificates: clusterCertificateRepo(driver),
  };
}

// ── Migrations ──────────────────────────────────────────────────────────────────────────────────────────────────

async function appliedVersions(driver: SqlDriver): Promise<number[]> {
  const rows = await driver.query<{ version: unknown }>(
    "SELECT version FROM schema_migrations ORDER BY version",
  );
  return rows.map((r) => Number(r.version));
}

async function hasMigrationTable(driver: SqlDriver): Promise<boolean> {
  const rows =
    driver.dialect === "sqlite"
      ? await driver.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
      : await driver.query("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1", [
          "schema_migrations",
        ]);
  return rows.length > 0;
}

function statusOf(applied: number[]): MigrationStatus {
  return { current: applied.reduce((max, v) => Math.max(max, v), 0), latest: LATEST_VERSION, applied };
}

/** One transaction under the migration lock: concurrent starters wait, then find nothing left to do. */
async function migrate(driver: SqlDriver, logger: Logger | undefined): Promise<MigrationStatus> {
  return driver.transaction(async (tx) => {
    await tx.lockForMigration();
    await tx.exec(SCHEMA_MIGRATIONS_DDL[tx.dialect]);
    const applied = new Set(await appliedVersions(tx));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      for (const statement of migration[tx.dialect]) await tx.exec(statement);
      await tx.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ]);
      logger?.info("applied database migration", { version: migration.version, name: migration.name });
    }
    return statusOf(await appliedVersions(tx));
  });
}

/** The Store over one driver; `sqlite.ts` and `postgres.ts` only build the driver. */
export function createSqlStore(driver: SqlDriver, logger?: Logger): Store {
  return {
    dialect: driver.dialect,
    versions: driver.versions,
    ...repositories(driver),
    transaction: (fn) => driver.transaction((tx) => fn(repositories(tx))),
    migrate: () => migrate(driver, logger),
    migrationStatus: async () =>
      statusOf((await hasMigrationTable(driver)) ? await appliedVersions(driver) : []),
    ping: async () => {
      await driver.query("SELECT 1 AS ok");
    },
    close: () => driver.close(),
  };
}
