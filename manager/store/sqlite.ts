/**
 * @module manager/store/sqlite — the embedded default Store on bun:sqlite (DESIGN.md §2: one process, one file).
 *
 * Durability: WAL with `synchronous = FULL`. The Manager acks operator reports only after a durable commit
 * (DESIGN.md §3 acks) and the operator then deletes its outbox row, so a commit must survive power loss; in WAL
 * mode NORMAL may lose the last commits on power failure. FULL costs one fsync of the WAL per commit.
 */
import { Database } from "bun:sqlite";
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { SqlDriver, SqlParam, TableVersions } from "./sql-driver.ts";
import { createSqlStore } from "./sql-store.ts";
import type { Store } from "./store.ts";

export interface SqliteStoreOptions {
  /** File path, or ":memory:". */
  path: string;
  /** How long a statement waits for another process's write lock before failing with KN-503. */
  busyTimeoutMs?: number;
  logger?: Logger;
}

/** A FIFO async lock: bun:sqlite has one connection, and a transaction spans awaits. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }
}

/** SQLite result codes that mean "cannot reach the data right now" rather than "bad statement". */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|NOTADB|CORRUPT|READONLY)/;

function translate(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && UNAVAILABLE_CODES.test(code)) {
    return new KubeNovaError("KN-503", `database unavailable (${code})`, {
      retryable: true,
      cause: error,
      context: { adapter: "sqlite", code },
    });
  }
  return error;
}

/** Translated statement texts: the same few hundred statements run over and over (bounded all the same). */
const translated = new Map<string, string>();

/** `$1` → `?1`: bun:sqlite binds numbered parameters positionally. */
function toSqlite(sql: string): string {
  let out = translated.get(sql);
  if (out === undefined) {
    out = sql.replace(/\$(\d+)/g, "?$1");
    if (translated.size < 4096) translated.set(sql, out);
  }
  return out;
}

function bind(params: readonly SqlParam[]): Array<string | number | null> {
  return params.map((p) => (typeof p === "boolean" ? (p ? 1 : 0) : p));
}

/** Statements that never change data. */
const READ_ONLY = /^\s*(SELECT|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i;
/** Single-table writes (the schema has no triggers or cascading foreign keys, so nothing else changes). */
const SINGLE_TABLE_WRITE =
  /^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+"?(\w+)"?/i;

/** The table a statement writes, `"*"` when it may write anything (DDL, unknown shapes), `null` for reads. */
function writeTarget(sql: string): string | null {
  if (READ_ONLY.test(sql)) return null;
  return SINGLE_TABLE_WRITE.exec(sql)?.[1]?.toLowerCase() ?? "*";
}

/**
 * Per-table write clocks for the read cache (`TableVersions`). Every statement this process runs is classified
 * once (by its SQL text) and bumps its table's clock — at statement time, even inside a transaction that may
 * still roll back, which only ever makes a cache entry look older than it is. Another connection's commit
 * (`PRAGMA data_version` moved: `kubenova migrate`, `rotate-keys`, a second process on the file) bumps all.
 */
class WriteClocks {
  private clock = 0;
  private floor = 0;
  private readonly tables = new Map<string, number>();
  private readonly targets = new Map<string, string | null>();
  private seenDataVersion: number | null = null;
  private checkedThisTurn = false;

  constructor(private readonly dataVersion: () => number) {}

  noteStatement(sql: string): void {
    let target = this.targets.get(sql);
    if (target === undefined) {
      target = writeTarget(sql);
      if (this.targets.size < 4096) this.targets.set(sql, target);
    }
    if (target === null) return;
    this.clock++;
    if (target === "*") this.floor = this.clock;
    else this.tables.set(target, this.clock);
  }

  version(table: string): number {
    // Once per event-loop turn: reads within one turn are concurrent with another process's commit anyway.
    if (!this.checkedThisTurn) {
      this.checkedThisTurn = true;
      setImmediate(() => {
        this.checkedThisTurn = false;
      });
      const current = this.dataVersion();
      if (current !== this.seenDataVersion) {
        this.seenDataVersion = current;
        this.floor = ++this.clock;
      }
    }
    return Math.max(this.floor, this.tables.get(table) ?? 0);
  }
}

class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  private readonly mutex = new Mutex();
  private readonly clocks: WriteClocks;
  readonly versions: TableVersions;
  /** The open transaction of the current async context, to fail fast instead of deadlocking on the mutex. */
  private readonly current = new AsyncLocalStorage<SqliteTransaction>();
  private closed = false;

  constructor(private readonly db: Database) {
    const dataVersion = db.query<{ data_version: number }, []>("PRAGMA data_version");
    this.clocks = new WriteClocks(() => (this.closed ? -1 : (dataVersion.get()?.data_version ?? -1)));
    this.versions = { version: (table) => this.clocks.version(table) };
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new KubeNovaError("KN-503", "database is closed", {
        retryable: true,
        context: { adapter: "sqlite" },
      });
    }
  }

  /** Runs synchronously on the connection; callers hold the mutex (or are the transaction holding it). */
  runQuery<T>(sql: string, params: readonly SqlParam[]): T[] {
    this.checkOpen();
    this.clocks.noteStatement(sql);
    try {
      return this.db.query(toSqlite(sql)).all(...bind(params)) as T[];
    } catch (error) {
      throw translate(error);
    }
  }

  runExec(sql: string, params: readonly SqlParam[]): number {
    this.checkOpen();
    this.clocks.noteStatement(sql);
    try {
      return this.db.query(toSqlite(sql)).run(...bind(params)).changes;
    } catch (error) {
      throw translate(error);
    }
  }

  /** Using the store (not the `tx` handle) inside its own transaction would wait for itself forever. */
  private checkNotInsideTransaction(): void {
    const tx = this.current.getStore();
    if (tx && !tx.finished) {
      throw new KubeNovaError("KN-500", "store used inside a transaction: use the transaction's handle", {
        context: { adapter: "sqlite" },
      });
    }
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.checkNotInsideTransaction();
    const release = await this.mutex.lock();
    try {
      return this.runQuery<T>(sql, params);
    } finally {
      release();
    }
  }

  async exec(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    this.checkNotInsideTransaction();
    const release = await this.mutex.lock();
    try {
      return this.runExec(sql, params);
    } finally {
      release();
    }
  }

  /**
   * BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way on lock upgrade and
   * other processes on the same file wait (busy_timeout) instead of interleaving. The mutex keeps every other
   * statement of this process off the connection until COMMIT/ROLLBACK.
   */
  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    this.checkNotInsideTransaction();
    const release = await this.mutex.lock();
    const tx = new SqliteTransaction(this);
    try {
      this.runExec("BEGIN IMMEDIATE", []);
      try {
        const result = await this.current.run(tx, () => fn(tx));
        this.runExec("COMMIT", []);
        return result;
      } catch (error) {
        if (!this.closed && this.db.inTransaction) this.db.run("ROLLBACK");
        throw error;
      }
    } finally {
      tx.finished = true;
      release();
    }
  }

  async lockForMigration(): Promise<void> {
    // Only meaningful inside a transaction, where BEGIN IMMEDIATE already holds the database write lock.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const release = await this.mutex.lock();
    try {
      this.closed = true;
      this.db.close();
    } finally {
      release();
    }
  }
}

/** The driver a transaction's callback sees: same connection, no mutex (it already holds it). */
class SqliteTransaction implements SqlDriver {
  readonly dialect = "sqlite" as const;
  finished = false;

  constructor(private readonly root: SqliteDriver) {}

  private check(): void {
    if (this.finished) throw new Error("transaction handle used after the transaction ended");
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.check();
    return this.root.runQuery<T>(sql, params);
  }

  async exec(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    this.check();
    return this.root.runExec(sql, params);
  }

  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    this.check();
    return fn(this);
  }

  async lockForMigration(): Promise<void> {}

  async close(): Promise<void> {
    throw new Error("close the store, not a transaction");
  }
}

/**
 * Switches to WAL, retrying while another process holds the file: the switch needs an exclusive lock, and SQLite
 * answers SQLITE_BUSY at once (without the busy handler) when a second process opens a new file at the same moment.
 */
async function enableWal(db: Database, busyTimeoutMs: number): Promise<void> {
  const deadline = performance.now() + busyTimeoutMs;
  for (;;) {
    try {
      db.run("PRAGMA journal_mode = WAL");
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "SQLITE_BUSY" || performance.now() >= deadline) {
        db.close();
        throw translate(error);
      }
      await Bun.sleep(5 + Math.random() * 20);
    }
  }
}

/** Opens (creating if needed) the SQLite database at `path`. Call `migrate()` before use. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true });
  let db: Database;
  try {
    db = new Database(options.path, { create: true, readwrite: true });
  } catch (error) {
    throw new KubeNovaError("KN-503", `cannot open SQLite database at ${options.path}`, {
      retryable: true,
      cause: error,
      context: { adapter: "sqlite", path: options.path },
    });
  }
  const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
  db.run(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  await enableWal(db, busyTimeoutMs);
  db.run("PRAGMA synchronous = FULL");
  db.run("PRAGMA foreign_keys = ON");
  options.logger?.debug("opened SQLite store", { adapter: "sqlite", path: options.path });
  return createSqlStore(new SqliteDriver(db), options.logger);
}
