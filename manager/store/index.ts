/**
 * @module manager/store — picks the Store implementation from configuration: SQLite by default (a file under the
 * data directory), Postgres when the database URL says so (DESIGN.md §2).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { errors } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { openPostgresStore } from "./postgres.ts";
import { openSqliteStore } from "./sqlite.ts";
import type { Store } from "./store.ts";

export type { Store, StoreTx } from "./store.ts";

export interface OpenStoreOptions {
  /** Empty/undefined → `<dataDir>/kubenova.db`; `sqlite:///abs/path`, `sqlite://rel/path`, `file:` URL or
   *  `:memory:` → SQLite; `postgres://` / `postgresql://` → Postgres. */
  databaseUrl?: string | undefined;
  dataDir: string;
  logger: Logger;
}

/** Where the SQLite file lives for a database URL, or null when the URL is not SQLite. */
export function sqlitePathFor(databaseUrl: string | undefined, dataDir: string): string | null {
  if (!databaseUrl) return join(dataDir, "kubenova.db");
  if (databaseUrl === ":memory:" || databaseUrl === "sqlite::memory:") return ":memory:";
  if (databaseUrl.startsWith("file:")) return fileURLToPath(databaseUrl);
  if (databaseUrl.startsWith("sqlite://")) {
    const path = decodeURIComponent(databaseUrl.slice("sqlite://".length));
    if (!path) throw errors.badRequest("database URL sqlite:// needs a path");
    return path;
  }
  return null;
}

/** Opens the configured Store (not yet migrated). */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const url = options.databaseUrl?.trim();
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    return openPostgresStore({ url, logger: options.logger });
  }
  const path = sqlitePathFor(url, options.dataDir);
  if (path === null) {
    throw errors.badRequest(
      "database URL must start with postgres://, postgresql://, sqlite:// or file:, or be empty for SQLite",
      [{ path: "databaseUrl", message: "unsupported scheme" }],
    );
  }
  return openSqliteStore({ path, logger: options.logger });
}
