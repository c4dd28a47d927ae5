/**
 * @module manager/store — the Manager's one persistence port (DESIGN.md §5). Two implementations, bun:sqlite
 * (`sqlite.ts`, the embedded default) and Postgres (`postgres.ts`), pass one contract suite
 * (`tests/store/contract.ts`). Business rules live in the services; the store keeps rows, keys and versions.
 *
 * Conventions every implementation follows:
 * - Timestamps cross this interface as RFC 3339 UTC strings with milliseconds (`toISOString()`).
 * - `version` starts at 1 and `update` bumps it by one; `update(…, { expectedVersion })` throws KN-412 when the
 *   stored version differs and KN-404 when the row is gone. `insert` throws KN-409 on a duplicate key.
 * - Lists are ordered by their key, paged with an opaque cursor; `where` is an extra predicate applied in order
 *   while filling a page, so pages stay full and cursors stay stable whatever the predicate.
 */
import type { AppSpec, ClusterStatus, UsageMetrics } from "../../shared/api/models.ts";
import type { TableVersions } from "./sql-driver.ts";

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ListOptions<T> extends PageRequest {
  where?: (row: T) => boolean;
}

export interface UpdateOptions {
  expectedVersion?: number;
}

interface Versioned {
  createdAt: string;
  updatedAt: string;
  version: number;
}

// ── Rows ────────────────────────────────────────────────────────────────────────────────────────────────────────

export interface ClusterRow extends Versioned {
  id: string;
  name: string;
  displayName: string | null;
  datacenter: string;
  labels: Record<string, string>;
  capsuleProxyUrl: string | null;
  status: ClusterStatus;
  statusReason: string | null;
  versions: Record<string, string>;
  capabilities: Record<string, string[]>;
  /** Envelope-encrypted admin kubeconfig (manager/crypto), never returned by the API. */
  kubeconfigCiphertext: string | null;
  lastSeenAt: string | null;
  /**
   * Set when the cluster was revoked (DESIGN.md §4): its certificates are refused and it may not connect until it
   * is re-enrolled with a fresh bootstrap token, which clears this.
   */
  revokedAt: string | null;
}

/** A one-time bootstrap token of a cluster; only its SHA-256 is stored. */
export interface BootstrapTokenRow {
  /** SHA-256 of the whole token text, hex. */
  tokenHash: string;
  clusterId: string;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

/** A client certificate the CA issued to a cluster's operator (CN = clusterId). */
export interface ClusterCertificateRow {
  /** Serial number, lowercase hex as parsed back from the certificate. */
  serial: string;
  clusterId: string;
  /** SHA-256 of the DER, hex. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  revokedAt: string | null;
}

export interface TenantRow extends Versioned {
  name: string;
  displayName: string | null;
  owners: string[];
  plan: string | null;
  /** Cluster names the tenant is placed on. */
  clusters: string[];
  labels: Record<string, string>;
  policySets: string[];
}

export interface ProjectRow extends Versioned {
  tenant: string;
  name: string;
  displayName: string | null;
  cluster: string;
  namespace: string;
  labels: Record<string, string>;
  policySets: string[];
}

export interface AppRow extends Versioned {
  tenant: string;
  project: string;
  name: string;
  cluster: string;
  namespace: string;
  labels: Record<string, string>;
  spec: AppSpec;
  revision: number;
  deployedRevision: number | null;
  suspended: boolean;
}

export interface AppRevisionRow {
  tenant: string;
  project: string;
  app: string;
  revision: number;
  spec: AppSpec;
  createdAt: string;
  createdBy: string;
  note: string | null;
}

export interface PlanRow extends Versioned {
  name: string;
  displayName: string | null;
  description: string | null;
  /** PlanQuotas, PlanLimitRange, traits and policies as validated by shared/api/models. */
  quotas: Record<string, unknown>;
  limitRange: Record<string, unknown> | null;
  allowLoadBalancers: boolean;
  traits: Array<{ type: string; properties?: Record<string, unknown> }>;
  policies: Array<{ name: string; type: string; properties?: Record<string, unknown> }>;
}

export interface PolicySetRow extends Versioned {
  name: string;
  description: string | null;
  traits: Array<{ type: string; properties?: Record<string, unknown> }>;
  policies: Array<{ name: string; type: string; properties?: Record<string, unknown> }>;
  allowedComponentTypes: string[] | null;
}

export interface UsageRow {
  id: string;
  clusterId: string;
  tenant: string;
  windowStart: string;
  windowEnd: string;
  metrics: UsageMetrics;
  byProject: Record<string, UsageMetrics>;
  adjustment: boolean;
  receivedAt: string;
}

/** A usage report the Manager would not bill as it came, kept with the reason (DESIGN.md §3). */
export interface UsageQuarantineRow {
  /** The report's envelope id. */
  id: string;
  clusterId: string;
  tenant: string;
  reason: string;
  windowStart: string;
  windowEnd: string;
  report: Record<string, unknown>;
  receivedAt: string;
}

export interface UsageFilter {
  tenant?: string;
  clusterId?: string;
  /** windowStart >= from */
  from?: string;
  /** windowStart < to */
  to?: string;
}

export type ChangeOp = "upsert" | "delete";

export interface ChangeInput {
  /** What kind of desired object: "tenant", "app", "clusterConfig", … */
  kind: string;
  /** The object's key within its kind on that cluster, e.g. "acme" or "acme/web/frontend". */
  key: string;
  op: ChangeOp;
  /** The full desired object (level-triggered, DESIGN.md §3); null for deletes. */
  body: Record<string, unknown> | null;
  /** W3C traceparent of the request that made the change, so its trace continues in the cluster. */
  traceparent?: string | null;
}

export interface ChangeRow extends ChangeInput {
  clusterId: string;
  revision: number;
  createdAt: string;
  traceparent: string | null;
}

export interface StatusMirrorRow {
  clusterId: string;
  kind: string;
  key: string;
  observedGeneration: number;
  body: Record<string, unknown>;
  updatedAt: string;
}

export interface EventRow {
  id: string;
  clusterId: string;
  tenant: string | null;
  at: string;
  type: string;
  reason: string;
  message: string;
  object: Record<string, unknown> | null;
}

export interface AuditRow {
  id: string;
  at: string;
  actor: string;
  role: string;
  action: string;
  resource: string;
  tenant: string | null;
  requestId: string;
  details: Record<string, unknown> | null;
}

export interface IdempotencyRow {
  /** Who and which route, e.g. "<subject>|POST /api/v1/tenants". */
  scope: string;
  key: string;
  /** SHA-256 of the request body, to refuse the same key with a different body. */
  requestHash: string;
  status: number;
  body: string;
  createdAt: string;
}

// ── Repositories ────────────────────────────────────────────────────────────────────────────────────────────────

export interface ClusterRepo {
  get(name: string): Promise<ClusterRow | null>;
  getById(id: string): Promise<ClusterRow | null>;
  list(options: ListOptions<ClusterRow>): Promise<Page<ClusterRow>>;
  insert(row: ClusterRow): Promise<ClusterRow>;
  update(row: ClusterRow, options?: UpdateOptions): Promise<ClusterRow>;
  delete(name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface TenantRepo {
  get(name: string): Promise<TenantRow | null>;
  list(options: ListOptions<TenantRow>): Promise<Page<TenantRow>>;
  insert(row: TenantRow): Promise<TenantRow>;
  update(row: TenantRow, options?: UpdateOptions): Promise<TenantRow>;
  delete(name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface ProjectRepo {
  get(tenant: string, name: string): Promise<ProjectRow | null>;
  /** Ordered by name within the tenant; `tenant` undefined lists across tenants ordered by (tenant, name). */
  list(
    filter: { tenant?: string; cluster?: string },
    options: ListOptions<ProjectRow>,
  ): Promise<Page<ProjectRow>>;
  insert(row: ProjectRow): Promise<ProjectRow>;
  update(row: ProjectRow, options?: UpdateOptions): Promise<ProjectRow>;
  delete(tenant: string, name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface AppRepo {
  get(tenant: string, project: string, name: string): Promise<AppRow | null>;
  list(
    filter: { tenant?: string; project?: string; cluster?: string },
    options: ListOptions<AppRow>,
  ): Promise<Page<AppRow>>;
  insert(row: AppRow): Promise<AppRow>;
  update(row: AppRow, options?: UpdateOptions): Promise<AppRow>;
  delete(tenant: string, project: string, name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface AppRevisionRepo {
  get(tenant: string, project: string, app: string, revision: number): Promise<AppRevisionRow | null>;
  /** Newest first. */
  list(tenant: string, project: string, app: string, options: PageRequest): Promise<Page<AppRevisionRow>>;
  /** Throws KN-409 when that revision exists. */
  insert(row: AppRevisionRow): Promise<AppRevisionRow>;
  deleteForApp(tenant: string, project: string, app: string): Promise<number>;
}

export interface PlanRepo {
  get(name: string): Promise<PlanRow | null>;
  list(options: ListOptions<PlanRow>): Promise<Page<PlanRow>>;
  insert(row: PlanRow): Promise<PlanRow>;
  update(row: PlanRow, options?: UpdateOptions): Promise<PlanRow>;
  delete(name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface PolicySetRepo {
  get(name: string): Promise<PolicySetRow | null>;
  list(options: ListOptions<PolicySetRow>): Promise<Page<PolicySetRow>>;
  insert(row: PolicySetRow): Promise<PolicySetRow>;
  update(row: PolicySetRow, options?: UpdateOptions): Promise<PolicySetRow>;
  delete(name: string, options?: UpdateOptions): Promise<boolean>;
}

export interface UsageRepo {
  /** Idempotent on (clusterId, tenant, windowStart, adjustment=false); adjustments are unique by id. */
  insert(row: UsageRow): Promise<"inserted" | "duplicate">;
  /**
   * `insert` for many rows at once (a few statements instead of one per row), answering per row in order; a row
   * repeating an earlier one of the same call is a duplicate.
   */
  insertMany(rows: readonly UsageRow[]): Promise<Array<"inserted" | "duplicate">>;
  /** Ordered by (windowStart, clusterId, tenant, id). */
  list(filter: UsageFilter, options: PageRequest): Promise<Page<UsageRow>>;
}

export interface UsageQuarantineRepo {
  /** Idempotent on id. */
  insert(row: UsageQuarantineRow): Promise<"inserted" | "duplicate">;
  /** `insert` for many rows at once, answering per row in order (as `UsageRepo.insertMany`). */
  insertMany(rows: readonly UsageQuarantineRow[]): Promise<Array<"inserted" | "duplicate">>;
  /** Newest first. */
  list(filter: { clusterId?: string }, options: PageRequest): Promise<Page<UsageQuarantineRow>>;
}

export interface ChangeLogRepo {
  /** Appends in order, allocating the cluster's next revisions; returns the rows written. */
  append(clusterId: string, changes: ChangeInput[]): Promise<ChangeRow[]>;
  /** Changes with revision > afterRevision, ascending, at most `limit`. */
  list(clusterId: string, options: { afterRevision: number; limit: number }): Promise<ChangeRow[]>;
  /** Highest revision ever allocated for the cluster (0 if none); survives compaction. */
  latestRevision(clusterId: string): Promise<number>;
  /** Lowest revision still held (null if the log is empty). */
  earliestRevision(clusterId: string): Promise<number | null>;
  /** Deletes changes with revision <= throughRevision; returns how many. */
  compact(clusterId: string, throughRevision: number): Promise<number>;
  /** Drops the cluster's log and counter (cluster deleted). */
  deleteCluster(clusterId: string): Promise<void>;
}

export interface StatusMirrorRepo {
  /** Writes unless the stored row has a higher observedGeneration; returns whether it wrote. */
  upsert(row: StatusMirrorRow): Promise<boolean>;
  get(clusterId: string, kind: string, key: string): Promise<StatusMirrorRow | null>;
  /** Rows of one kind whose key starts with keyPrefix, across clusters. */
  listByKey(kind: string, keyPrefix: string): Promise<StatusMirrorRow[]>;
}

export interface EventRepo {
  /** Idempotent on id. */
  insert(row: EventRow): Promise<"inserted" | "duplicate">;
  /** Newest first. */
  list(filter: { clusterId?: string; tenant?: string }, options: PageRequest): Promise<Page<EventRow>>;
}

export interface AuditRepo {
  insert(row: AuditRow): Promise<void>;
  /** Newest first. */
  list(filter: { tenant?: string; actor?: string }, options: PageRequest): Promise<Page<AuditRow>>;
}

export interface IdempotencyRepo {
  get(scope: string, key: string): Promise<IdempotencyRow | null>;
  /** Returns false when (scope, key) exists already. */
  put(row: IdempotencyRow): Promise<boolean>;
  /** Deletes rows created before the cutoff; returns how many. */
  expire(createdBefore: string): Promise<number>;
}

export interface BootstrapTokenRepo {
  /** Throws KN-409 when the hash exists. */
  insert(row: BootstrapTokenRow): Promise<BootstrapTokenRow>;
  get(tokenHash: string): Promise<BootstrapTokenRow | null>;
  /**
   * Burns the token: sets `usedAt = at` only if it is unused and `expiresAt > at`, in one statement, so two racing
   * enrolments cannot both win. Returns the burnt row, or null when nothing was burnt.
   */
  consume(tokenHash: string, at: string): Promise<BootstrapTokenRow | null>;
  /** Deletes the cluster's never-used tokens (a fresh one supersedes them); returns how many. */
  deleteUnused(clusterId: string): Promise<number>;
  /** Deletes all of the cluster's tokens; returns how many. */
  deleteForCluster(clusterId: string): Promise<number>;
}

export interface ClusterCertificateRepo {
  /** Throws KN-409 when the serial exists. */
  insert(row: ClusterCertificateRow): Promise<ClusterCertificateRow>;
  get(serial: string): Promise<ClusterCertificateRow | null>;
  /** Oldest first (issuedAt, serial). */
  listForCluster(clusterId: string): Promise<ClusterCertificateRow[]>;
  /** Sets `revokedAt = at` on the cluster's certificates not revoked yet; returns how many. */
  revokeForCluster(clusterId: string, at: string): Promise<number>;
}

/** Small named values the Manager keeps, e.g. the wrapped CA key. */
export interface SettingRepo {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  /** Writes only when the key is absent; returns whether it wrote (the first of racing writers wins). */
  putIfAbsent(key: string, value: string): Promise<boolean>;
}

export interface StoreTx {
  clusters: ClusterRepo;
  tenants: TenantRepo;
  projects: ProjectRepo;
  apps: AppRepo;
  appRevisions: AppRevisionRepo;
  plans: PlanRepo;
  policySets: PolicySetRepo;
  usage: UsageRepo;
  usageQuarantine: UsageQuarantineRepo;
  changeLog: ChangeLogRepo;
  statusMirror: StatusMirrorRepo;
  events: EventRepo;
  audit: AuditRepo;
  idempotency: IdempotencyRepo;
  settings: SettingRepo;
  bootstrapTokens: BootstrapTokenRepo;
  clusterCertificates: ClusterCertificateRepo;
}

export interface MigrationStatus {
  current: number;
  latest: number;
  applied: number[];
}

export interface Store extends StoreTx {
  readonly dialect: "sqlite" | "postgres";
  /**
   * Each table's write clock, where the store caches reads (SQLite; see `ReadCache` in sql-store.ts): a value
   * computed from a table's rows stays valid while its clock does not move. Absent where reads are not cached.
   */
  readonly versions?: TableVersions | undefined;
  /** Runs `fn` in one transaction: all its writes commit together or not at all. Re-throws `fn`'s error. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Applies pending versioned migrations; idempotent; safe to run from several processes (locked). */
  migrate(): Promise<MigrationStatus>;
  migrationStatus(): Promise<MigrationStatus>;
  /** Throws KN-503 when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
