import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, sqlitePathFor } from "../../manager/store/index.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
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
