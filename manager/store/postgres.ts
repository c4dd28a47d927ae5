/**
 * @module manager/store/postgres — the scale-out Store on Postgres via postgres.js (DESIGN.md §2: N stateless
 * Manager replicas on one database). The only file that imports `postgres` (STYLE.md: one adapter per client).
 */
import postgres from "postgres";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { SqlDriver, SqlParam } from "./sql-driver.ts";
import { createSqlStore } from "./sql-store.ts";
import type { Store } from "./store.ts";

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  url: string;
  /** Pool size; default 10. */
  max?: number;
  /** Seconds to wait for a connection before a query fails with KN-503; default 10. */
  connectTimeoutSeconds?: number;
  logger?: Logger;
}

/** Errors after which the same statement may succeed later: the server or network, not the statement. */
const UNAVAILABLE_ERRNO = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
]);

/** SQLSTATEs: connection exceptions, shutdown, too many connections, serialization failure, deadlock. */
function isUnavailableSqlState(code: string): boolean {
  return (
    code.startsWith("08") ||
    code === "57P01" ||
    code === "57P02" ||
    code === "57P03" ||
    code === "53300" ||
    code === "40001" ||
    code === "40P01"
  );
}

/**
 * "database … is not currently accepting connections" (ALLOW_CONNECTIONS false, as during maintenance or a
 * restore) is SQLSTATE 55000, a code also used for unrelated statement errors: unavailable only when the server
 * raised it while starting the session.
 */
function isRefusedAtStartup(error: unknown, code: string): boolean {
  return code === "55000" && (error as { routine?: unknown }).routine === "CheckMyDatabase";
}

function translate(error: unknown): unknown {
  if (error instanceof KubeNovaError) return error;
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === "string" &&
    (UNAVAILABLE_ERRNO.has(code) || isUnavailableSqlState(code) || isRefusedAtStartup(error, code))
  ) {
    return new KubeNovaError("KN-503", `database unavailable (${code})`, {
      retryable: true,
      cause: error,
      context: { adapter: "postgres", code },
    });
  }
  // Bun surfaces some socket failures without a code; an AggregateError from connect is one of them.
  if (error instanceof AggregateError) {
    return new KubeNovaError("KN-503", "database unreachable", {
      retryable: true,
      cause: error,
      context: { adapter: "postgres" },
    });
  }
  return error;
}

type Parameters = postgres.ParameterOrJSON<never>[];

/** Fixed key of the advisory lock that serializes `migrate()` across processes ("KNMI"). */
const MIGRATION_LOCK_KEY = 0x4b4e4d49;

class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;

  constructor(
    private readonly sql: postgres.Sql | postgres.TransactionSql,
    private readonly inTransaction: boolean,
  ) {}

  async query<T = Record<string, unknown>>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    try {
      return (await this.sql.unsafe(sql, params as Parameters)) as unknown as T[];
    } catch (error) {
      throw translate(error);
    }
  }

  async exec(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    try {
      return (await this.sql.unsafe(sql, params as Parameters)).count;
    } catch (error) {
      throw translate(error);
    }
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    try {
      // `sql.begin` pins one pooled connection, and commits or rolls back (re-throwing fn's error).
      const result = await (this.sql as postgres.Sql).begin((tx) => fn(new PostgresDriver(tx, true)));
      return result as T;
    } catch (error) {
      throw translate(error);
    }
  }

  async lockForMigration(): Promise<void> {
    // Released at commit/rollback; a second Manager replica starting at the same moment waits here.
    await this.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
  }

  async close(): Promise<void> {
    if (this.inTransaction) throw new Error("close the store, not a transaction");
    await (this.sql as postgres.Sql).end({ timeout: 5 });
  }
}

/**
 * Seconds before a pooled connection reconnects after `retries` failed connections. The library's default grows
 * as 3^retries / 100 up to 20 s, and its count is shared by the whole pool, so after an outage of a few seconds a
 * connection could wait seconds more than the server did — and with it the report ingest, which commits in order
 * (measured: 1–2 s after the server was back, 20 ms with this). A Manager holds a handful of connections, so
 * retrying within a second is no stampede.
 */
export function reconnectDelaySeconds(retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(0.05 * 2 ** retries, 1);
}

/**
 * Connects lazily: opening never fails because the server is down (DESIGN.md §7: the Manager starts, `/readyz`
 * fails, and it recovers by itself); the first query or `ping()` reports KN-503.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const logger = options.logger?.child({ adapter: "postgres" });
  const sql = postgres(options.url, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 60,
    backoff: reconnectDelaySeconds,
    // Only our own parsing: JSON is TEXT, BIGINT strings are converted by the store.
    onnotice: (notice) => logger?.debug("postgres notice", { notice: notice.message }),
  });
  return createSqlStore(new PostgresDriver(sql, false), logger);
}

/**
 * Runs administrative statements (CREATE/DROP DATABASE, CREATE SCHEMA …) outside any transaction on one
 * short-lived connection — for provisioning and tests, which must not import `postgres` themselves.
 * Unreachable servers fail with KN-503.
 */
export async function executePostgresAdmin(options: {
  url: string;
  statements: string[];
  connectTimeoutSeconds?: number;
}): Promise<void> {
  const sql = postgres(options.url, {
    max: 1,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    onnotice: () => {},
  });
  try {
    for (const statement of options.statements) await sql.unsafe(statement);
  } catch (error) {
    throw translate(error);
  } finally {
    await sql.end({ timeout: 1 });
  }
}
