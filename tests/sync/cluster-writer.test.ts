/** The batched cluster-row writer behind presence and hello: one transaction per tick, order, conflicts, failures. */
import { expect, test } from "bun:test";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { createClusterWriter } from "../../manager/sync/cluster-writer.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { clusterRow } from "../support/rows.ts";

async function setup(clusters: number) {
  const logger = createMemoryLogger("warn");
  const store = await openSqliteStore({ path: ":memory:", logger });
  await store.migrate();
  const ids: string[] = [];
  for (let i = 0; i < clusters; i++) ids.push((await store.clusters.insert(clusterRow(`dc${i}`))).id);
  let transactions = 0;
  const counting = new Proxy(store, {
    get(target, property, receiver) {
      if (property === "transaction") {
        return (fn: Parameters<typeof store.transaction>[0]) => {
          transactions++;
          return target.transaction(fn);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store, counting, ids, logger, transactions: () => transactions };
}

test("patches of many clusters within one tick commit in one transaction, each cluster's in call order", async () => {
  const { store, counting, ids, logger, transactions } = await setup(50);
  const writer = createClusterWriter({ store: counting, logger, intervalMs: 20 });
  const done = ids.flatMap((id, i) => [
    writer.patch(id, () => ({ status: "connected", lastSeenAt: new Date(1000 * i).toISOString() })),
    writer.patch(id, (row) => ({ statusReason: `after ${row.status}` })),
    writer.patch(id, () => null), // nothing to change
  ]);
  await Promise.all(done);
  expect(transactions()).toBe(1);
  expect(writer.stats()).toMatchObject({ batches: 1, rows: 50, failures: 0 });
  const row = await store.clusters.getById(ids[7]!);
  expect(row).toMatchObject({ status: "connected", statusReason: "after connected", version: 2 });
  // A patch that changes nothing writes nothing.
  await writer.patch(ids[0]!, () => null);
  expect((await store.clusters.getById(ids[0]!))?.version).toBe(2);
  await writer.stop();
  await store.close();
});

test("a row changed by someone else is re-read, never overwritten; a deleted cluster is skipped", async () => {
  const { store, ids, logger } = await setup(2);
  const writer = createClusterWriter({ store, logger, intervalMs: 5 });
  let calls = 0;
  const first = writer.patch(ids[0]!, async (_row, tx) => {
    calls++;
    // The API renames the display name between our read and our write (first attempt only).
    if (calls === 1) {
      const current = (await tx.clusters.getById(ids[0]!))!;
      await tx.clusters.update({ ...current, displayName: "renamed" }, { expectedVersion: current.version });
    }
    return { status: "connected" as const };
  });
  await store.clusters.delete("dc1");
  const second = writer.patch(ids[1]!, () => ({ status: "connected" }));
  await Promise.all([first, second]);
  expect(calls).toBe(2);
  expect(await store.clusters.getById(ids[0]!)).toMatchObject({
    status: "connected",
    displayName: "renamed",
  });
  expect(await store.clusters.getById(ids[1]!)).toBeNull();
  await writer.stop();
  await store.close();
});

test("one cluster's failing patch does not lose the others' updates; it alone is rejected", async () => {
  const { store, ids, logger } = await setup(3);
  const writer = createClusterWriter({ store, logger, intervalMs: 5 });
  const results = await Promise.allSettled([
    writer.patch(ids[0]!, () => ({ status: "connected" })),
    writer.patch(ids[1]!, () => {
      throw new Error("boom");
    }),
    writer.patch(ids[2]!, () => ({ status: "offline" })),
  ]);
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  expect((await store.clusters.getById(ids[0]!))?.status).toBe("connected");
  expect((await store.clusters.getById(ids[2]!))?.status).toBe("offline");
  expect(writer.stats().failures).toBe(1);
  await writer.stop();
  await store.close();
});
