import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { openStore, sqlitePathFor } from "../../manager/store/index.ts";
import { LATEST_VERSION, MIGRATIONS, SCHEMA_MIGRATIONS_DDL } from "../../manager/store/migrations.ts";
import { READ_CACHE_ROWS_PER_TABLE } from "../../manager/store/sql-store.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store } from "../../manager/store/store.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { zeroUsage } from "../../shared/usage.ts";
import { describeStoreContract } from "./contract.ts";

const root = mkdtempSync(join(tmpdir(), "kn-store-sqlite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

describeStoreContract("sqlite", async () => {
  const path = join(root, `contract-${++counter}`, "kubenova.db");
  const store = await openSqliteStore({ path });
  await store.migrate();
  return { store, cleanup: () => store.close() };
});

describe("sqlite store", () => {
  test("a file database reopened keeps its data and its migrations", async () => {
    const path = join(root, "reopen", "kubenova.db");
    const first = await openSqliteStore({ path });
    await first.migrate();
    await first.settings.put("ca.key", "wrapped");
    await first.changeLog.append("c1", [{ kind: "tenant", key: "acme", op: "upsert", body: { a: 1 } }]);
    await first.close();

    const second = await openSqliteStore({ path });
    try {
      const status = await second.migrationStatus();
      expect(status.current).toBe(status.latest);
      expect(await second.migrate()).toEqual(status);
      expect(await second.settings.get("ca.key")).toBe("wrapped");
      expect(await second.changeLog.latestRevision("c1")).toBe(1);
    } finally {
      await second.close();
    }
  });

  test("using the store instead of the tx handle inside a transaction fails fast instead of deadlocking", async () => {
    const store = await openSqliteStore({ path: ":memory:" });
    try {
      await store.migrate();
      const inner = await store
        .transaction(async (tx) => {
          await tx.settings.put("a", "1");
          return store.settings.get("a");
        })
        .catch((error: unknown) => error);
      expect(inner).toMatchObject({ code: "KN-500" });
      expect(await store.settings.get("a")).toBeNull();
    } finally {
      await store.close();
    }
  });

  test("an unmigrated database reports version 0; migrate logs what it applied", async () => {
    const logger = createMemoryLogger();
    const store = await openSqliteStore({ path: ":memory:", logger });
    try {
      expect(await store.migrationStatus()).toMatchObject({ current: 0, applied: [] });
      const status = await store.migrate();
      expect(status.current).toBe(status.latest);
      expect(logger.records.some((r) => r.msg === "applied database migration" && r.version === 1)).toBe(
        true,
      );
    } finally {
      await store.close();
    }
  });

  // bun:sqlite is synchronous: two connections in one process would block each other's event loop, so the
  // multi-writer case (two Manager processes on one file) is tested with real processes.
  test("a version-4 database with usage migrates to the window-first index: rows kept, windows still unique", async () => {
    const path = join(root, "upgrade-v4", "kubenova.db");
    mkdirSync(dirname(path), { recursive: true });
    // The file as a release at version 4 left it, with rows in usage_records.
    const db = new Database(path, { create: true });
    db.run(SCHEMA_MIGRATIONS_DDL.sqlite);
    for (const migration of MIGRATIONS.filter((m) => m.version <= 4)) {
      for (const statement of migration.sqlite) db.run(statement);
      db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ]);
    }
    const row = (id: string, hour: number, adjustment: boolean) => ({
      id,
      clusterId: "c1",
      tenant: "acme",
      windowStart: new Date(Date.UTC(2026, 10, 1, hour)).toISOString(),
      windowEnd: new Date(Date.UTC(2026, 10, 1, hour + 1)).toISOString(),
      metrics: { ...zeroUsage(), pods: hour },
      byProject: {},
      adjustment,
      receivedAt: new Date(Date.UTC(2026, 10, 2)).toISOString(),
    });
    db.close();
    const before = await openSqliteStore({ path });
    // Migrated to 4 only: written through the store as it stands, then upgraded below.
    await before.usage.insert(row("u1", 1, false));
    await before.usage.insert(row("u2", 2, false));
    await before.usage.insert(row("a1", 1, true));
    await before.close();

    const store = await openSqliteStore({ path });
    try {
      const status = await store.migrate();
      expect(status.current).toBe(LATEST_VERSION);
      const ids = (await store.usage.list({ tenant: "acme" }, { limit: 10 })).items.map((r) => r.id);
      expect(ids).toEqual(["a1", "u1", "u2"]);
      expect(await store.usage.insert(row("u1-again", 1, false))).toBe("duplicate");
      expect(await store.usage.insert(row("a2", 1, true))).toBe("inserted");
      expect(await store.usage.insert(row("u3", 3, false))).toBe("inserted");
      const index = new Database(path, { readonly: true });
      try {
        const info = index.query<{ name: string }, []>("PRAGMA index_info(usage_records_window)").all();
        expect(info.map((c) => c.name)).toEqual(["window_start", "cluster_id", "tenant"]);
      } finally {
        index.close();
      }
    } finally {
      await store.close();
    }
  });

  test("two processes on one file migrate at once and share one revision counter", async () => {
    const path = join(root, "two-processes", "kubenova.db");
    const worker = join(import.meta.dir, "sqlite-worker.ts");
    const run = () => Bun.spawn(["bun", worker, path, "10"], { stdout: "pipe", stderr: "inherit" });
    const procs = [run(), run()];
    const outputs = await Promise.all(procs.map((p) => new Response(p.stdout).text()));
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);
    const revisions = outputs.flatMap((o) => JSON.parse(o) as number[]).sort((x, y) => x - y);
    expect(revisions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  test("openStore picks SQLite for empty, sqlite:// and file: URLs, and rejects unknown schemes", async () => {
    expect(sqlitePathFor(undefined, "/data")).toBe("/data/kubenova.db");
    expect(sqlitePathFor("", "/data")).toBe("/data/kubenova.db");
    expect(sqlitePathFor("sqlite:///var/lib/kn.db", "/data")).toBe("/var/lib/kn.db");
    expect(sqlitePathFor("file:///var/lib/kn.db", "/data")).toBe("/var/lib/kn.db");
    expect(sqlitePathFor("postgres://x@h/db", "/data")).toBeNull();
    const logger = createMemoryLogger();
    const store = await openStore({ databaseUrl: undefined, dataDir: join(root, "default"), logger });
    try {
      expect(store.dialect).toBe("sqlite");
      await store.migrate();
      expect(await Bun.file(join(root, "default", "kubenova.db")).exists()).toBe(true);
    } finally {
      await store.close();
    }
    await expect(openStore({ databaseUrl: "mysql://x", dataDir: root, logger })).rejects.toMatchObject({
      code: "KN-400",
    });
  });
});

describe("sqlite read cache", () => {
  const T0 = "2026-01-02T03:04:05.000Z";
  const tenantRow = (name: string, displayName: string | null = null) => ({
    name,
    displayName,
    owners: ["alice@example.com"],
    plan: null,
    clusters: [],
    labels: { tier: "gold" },
    policySets: [],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
  });

  async function withFileStore(fn: (store: Store, path: string) => Promise<void>) {
    const path = join(root, `cache-${++counter}`, "kubenova.db");
    const store = await openSqliteStore({ path });
    await store.migrate();
    try {
      await fn(store, path);
    } finally {
      await store.close();
    }
  }

  test("a repeated read is served from memory, as the same frozen object", () =>
    withFileStore(async (store) => {
      await store.tenants.insert(tenantRow("acme"));
      const first = await store.tenants.get("acme");
      const second = await store.tenants.get("acme");
      expect(second).toBe(first!);
      expect(Object.isFrozen(first)).toBe(true);
      expect(Object.isFrozen(first!.labels)).toBe(true);
      expect(() => {
        (first as { displayName: string | null }).displayName = "changed";
      }).toThrow(TypeError);
      const page = await store.tenants.list({ limit: 10 });
      expect(await store.tenants.list({ limit: 10 })).toBe(page);
    }));

  test("a write through the store is seen by the next get and list", () =>
    withFileStore(async (store) => {
      const row = await store.tenants.insert(tenantRow("acme"));
      await store.tenants.get("acme");
      await store.tenants.list({ limit: 10 });
      await store.tenants.update({ ...row, displayName: "Acme" });
      expect((await store.tenants.get("acme"))?.displayName).toBe("Acme");
      expect((await store.tenants.list({ limit: 10 })).items[0]?.displayName).toBe("Acme");
      await store.transaction(async (tx) => {
        await tx.tenants.insert(tenantRow("beta"));
      });
      expect((await store.tenants.list({ limit: 10 })).items.map((t) => t.name)).toEqual(["acme", "beta"]);
      await store.tenants.delete("beta");
      expect(await store.tenants.get("beta")).toBeNull();
    }));

  test("a rolled-back write leaves the committed row visible, never the rolled-back one", () =>
    withFileStore(async (store) => {
      const row = await store.tenants.insert(tenantRow("acme"));
      await store.tenants.get("acme");
      const failed = await store
        .transaction(async (tx) => {
          await tx.tenants.update({ ...row, displayName: "never" });
          expect((await tx.tenants.get("acme"))?.displayName).toBe("never");
          throw new Error("roll back");
        })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(Error);
      expect((await store.tenants.get("acme"))?.displayName).toBeNull();
    }));

  test("a write by another connection to the same file is seen from the next event-loop turn (PRAGMA data_version)", () =>
    withFileStore(async (store, path) => {
      await store.tenants.insert(tenantRow("acme"));
      expect((await store.tenants.get("acme"))?.displayName).toBeNull();
      const other = new Database(path);
      try {
        other.run("PRAGMA busy_timeout = 5000");
        other.run(
          "UPDATE tenants SET display_name = 'From elsewhere', version = version + 1 WHERE name = 'acme'",
        );
      } finally {
        other.close();
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(await store.tenants.get("acme")).toMatchObject({ displayName: "From elsewhere", version: 2 });
    }));

  test(`the cache holds at most ${READ_CACHE_ROWS_PER_TABLE} rows per table, forgetting the oldest first`, () =>
    withFileStore(async (store) => {
      await store.transaction(async (tx) => {
        for (let i = 0; i <= READ_CACHE_ROWS_PER_TABLE; i++) await tx.tenants.insert(tenantRow(`t${i}`));
      });
      const first = await store.tenants.get("t0");
      expect(await store.tenants.get("t0")).toBe(first!);
      for (let i = 1; i <= READ_CACHE_ROWS_PER_TABLE; i++) await store.tenants.get(`t${i}`);
      const again = await store.tenants.get("t0");
      expect(again).toEqual(first!);
      expect(again).not.toBe(first!);
      // A page is one entry (counted as its 500 rows).
      const page = await store.tenants.list({ limit: 500 });
      expect(await store.tenants.list({ limit: 500 })).toBe(page);
    }));

  test("a read inside a transaction is never cached", () =>
    withFileStore(async (store) => {
      const row = await store.tenants.insert(tenantRow("acme"));
      const inside = await store.transaction(async (tx) => {
        const read = await tx.tenants.get("acme");
        await tx.tenants.update({ ...row, displayName: "Acme" });
        return read;
      });
      expect(Object.isFrozen(inside)).toBe(false);
      expect((await store.tenants.get("acme"))?.displayName).toBe("Acme");
    }));
});
