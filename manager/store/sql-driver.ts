/**
 * @module manager/store/sql-driver — the narrow SQL seam between the shared store (`sql-store.ts`) and the two
 * database adapters (`sqlite.ts`, `postgres.ts`). SQL is written once with `$1`-style placeholders; each driver
 * translates what it must and maps "database unreachable" to KN-503 so the shared code never sees driver errors.
 */

export type Dialect = "sqlite" | "postgres";

/** A bound parameter. Booleans are stored as 0/1 by the SQLite driver, as BOOLEAN by Postgres. */
export type SqlParam = string | number | boolean | null;

/**
 * What a read cache needs from a driver: a number per table that changes whenever the table may have changed,
 * whether this process wrote it or another one sharing the database did. Only a driver that can know this offers
 * it (SQLite: every write of this process goes through it, `PRAGMA data_version` reveals everyone else's);
 * transaction handles never do, so nothing read inside a transaction is ever cached.
 */
export interface TableVersions {
  version(table: string): number;
}

export interface SqlDriver {
  readonly dialect: Dialect;
  readonly versions?: TableVersions | undefined;
  /** Runs one statement and returns its rows (plain objects keyed by column name). */
  query<T = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** Runs one statement and returns the number of rows it changed. */
  exec(sql: string, params?: readonly SqlParam[]): Promise<number>;
  /**
   * Runs `fn` in one transaction on one connection: commit when it resolves, roll back when it throws (and
   * re-throw). Called on a driver that is already inside a transaction, `fn` joins that transaction.
   */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction: blocks other processes from migrating until it ends. Postgres takes a transaction-level
   * advisory lock; SQLite already holds the write lock since `BEGIN IMMEDIATE`.
   */
  lockForMigration(): Promise<void>;
  close(): Promise<void>;
}
