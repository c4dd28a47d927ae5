/** The desired-state dispatcher against a real SQLite store, counting the store reads a heartbeat costs. */
import { afterEach, describe, expect, test } from "bun:test";
import type { Bus } from "../../manager/bus/bus.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store } from "../../manager/store/store.ts";
import { createDesiredDispatcher } from "../../manager/sync/dispatcher.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { clusterRow } from "../support/rows.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(heartbeatRecheckMs?: number) {
  const store = await openSqliteStore({ path: ":memory:" });
  await store.migrate();
  cleanups.push(() => store.close());
  const cluster = await store.clusters.insert(clusterRow("dc1"));
  const reads = { latest: 0, earliest: 0 };
  // The store as the dispatcher sees it, counting the change-log reads.
  const counted: Store = new Proxy(store, {
    get(target, property) {
      if (property !== "changeLog") return Reflect.get(target, property);
      const log = target.changeLog;
      return {
        ...log,
        append: log.append.bind(log),
        list: log.list.bind(log),
        compact: log.compact.bind(log),
        latestRevision: (id: string) => {
          reads.latest++;
          return log.latestRevision(id);
        },
        earliestRevision: (id: string) => {
          reads.earliest++;
          return log.earliestRevision(id);
        },
      };
    },
  });
  const published: Array<{ topic: string; body: { fromRevision: number; toRevision: number } }> = [];
  const bus = {
    kind: "embedded",
    publish: async (topic: string, payload: string | Uint8Array) => {
      published.push({ topic, body: JSON.parse(String(payload)).body });
    },
  } as unknown as Bus;
  const dispatcher = createDesiredDispatcher({
    store: counted,
    bus,
    logger: createMemoryLogger("error"),
    ...(heartbeatRecheckMs !== undefined ? { heartbeatRecheckMs } : {}),
  });
  const append = (key: string) =>
    store.changeLog.append(cluster.id, [{ kind: "tenant", key, op: "upsert", body: {} }]);
  return { store, cluster, reads, published, dispatcher, append };
}

describe("desired dispatcher", () => {
  test("hello: the backlog from one page read, with no separate earliest-revision query", async () => {
    const { cluster, reads, published, dispatcher, append } = await setup();
    await append("a");
    await append("b");
    await dispatcher.onHello(cluster.id, 0);
    expect(published.map((p) => p.body.toRevision)).toEqual([2]);
    expect(reads.earliest).toBe(0);
  });

  test("heartbeats in sync read the store once per recheck window; an append (notify) makes the next one read", async () => {
    const { cluster, reads, published, dispatcher, append } = await setup(60_000);
    await append("a");
    await dispatcher.onHello(cluster.id, 0);
    const afterHello = reads.latest;
    for (let i = 0; i < 10; i++) await dispatcher.onHeartbeat(cluster.id, 1);
    expect(reads.latest).toBe(afterHello); // all ten answered from what the hello read
    await append("b");
    dispatcher.notify([cluster.id]); // as the channel's store view does after the commit
    await dispatcher.idle();
    expect(published.at(-1)?.body.toRevision).toBe(2);
    const afterNotify = reads.latest;
    await dispatcher.onHeartbeat(cluster.id, 1); // the operator has not applied 2 yet: read, and behind
    expect(reads.latest).toBe(afterNotify + 1);
    await dispatcher.onHeartbeat(cluster.id, 2);
    await dispatcher.onHeartbeat(cluster.id, 2);
    expect(reads.latest).toBe(afterNotify + 1); // in sync at 2: answered from that read
  });

  test("without a recheck window (replicas: appends elsewhere) every heartbeat reads the store", async () => {
    const { cluster, reads, dispatcher, append } = await setup();
    await append("a");
    await dispatcher.onHello(cluster.id, 0);
    const afterHello = reads.latest;
    for (let i = 0; i < 5; i++) await dispatcher.onHeartbeat(cluster.id, 1);
    expect(reads.latest).toBe(afterHello + 5);
  });
});
