/**
 * Report ingest on its own, over a recording bus and a real SQLite store: micro-batches bounded in size, acks
 * only after commit, coalesced per cluster (DESIGN.md §3 acks).
 */
import { describe, expect, test } from "bun:test";
import type { Bus, BusHandler } from "../../manager/bus/bus.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store } from "../../manager/store/store.ts";
import type { CommandClient } from "../../manager/sync/commands.ts";
import type { DesiredDispatcher } from "../../manager/sync/dispatcher.ts";
import { createIngest, type Ingest } from "../../manager/sync/ingest.ts";
import type { PresenceTracker } from "../../manager/sync/presence.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { makeEnvelope, parseEnvelope } from "../../shared/messages.ts";
import { parseTopic, topicFor } from "../../shared/topics.ts";

interface World {
  store: Store;
  ingest: Ingest;
  /** Delivers a usage report as the broker would (under `id`, to redeliver one); returns its id. */
  usage(clusterId: string, hoursAgo: number, id?: string): Promise<string>;
  /** Usage rows written per committed or attempted transaction. */
  batchSizes: number[];
  /** Acks published so far, decoded: cluster → one id list per message. */
  acks(): Map<string, string[][]>;
  close(): Promise<void>;
}

async function world(
  options: { ackIntervalMs?: number; batchMaxMessages?: number; batchBusyDelayMs?: number } = {},
): Promise<World> {
  const logger = createMemoryLogger("warn");
  const store = await openSqliteStore({ path: ":memory:", logger });
  await store.migrate();
  const batchSizes: number[] = [];
  // The store as ingest sees it, counting the usage rows each transaction writes.
  const counting = new Proxy(store, {
    get(target, property, receiver) {
      if (property !== "transaction") return Reflect.get(target, property, receiver);
      const transaction: Store["transaction"] = (fn) =>
        target.transaction(async (tx) => {
          let rows = 0;
          const usage = {
            ...tx.usage,
            insert: (row: Parameters<typeof tx.usage.insert>[0]) => {
              rows++;
              return tx.usage.insert(row);
            },
            insertMany: (list: Parameters<typeof tx.usage.insertMany>[0]) => {
              rows += list.length;
              return tx.usage.insertMany(list);
            },
          };
          try {
            return await fn(
              new Proxy(tx, { get: (t, p, r) => (p === "usage" ? usage : Reflect.get(t, p, r)) }),
            );
          } finally {
            batchSizes.push(rows);
          }
        });
      return transaction;
    },
  });
  const handlers = new Map<string, BusHandler>();
  const published: Array<{ topic: string; payload: string }> = [];
  const bus: Bus = {
    kind: "embedded",
    publish: async (topic, payload) => {
      published.push({ topic, payload: String(payload) });
    },
    subscribe: async (filter, handler) => {
      handlers.set(filter.split("/").at(-1)!, handler);
      return async () => {
        handlers.delete(filter.split("/").at(-1)!);
      };
    },
    onEvent: () => () => undefined,
    close: async () => undefined,
  };
  const ingest = createIngest({
    store: counting,
    bus,
    logger,
    presence: { seen: () => undefined, offline: () => undefined } as unknown as PresenceTracker,
    dispatcher: {} as DesiredDispatcher,
    commands: { resolve: () => undefined } as unknown as CommandClient,
    batchMaxDelayMs: 1,
    ...options,
  });
  await ingest.start();
  const hour = 3_600_000;
  return {
    store,
    ingest,
    batchSizes,
    async usage(clusterId, hoursAgo, id = uuidv7()) {
      const start = Math.floor(Date.now() / hour) * hour - hoursAgo * hour;
      const envelope = makeEnvelope({
        id,
        kind: "usage",
        clusterId,
        body: {
          tenant: "acme",
          windowStart: new Date(start).toISOString(),
          windowEnd: new Date(start + hour).toISOString(),
          metrics: {
            cpuRequestMillicores: 100,
            memoryRequestBytes: 1024,
            storageBytes: 0,
            loadBalancers: 0,
            pods: 1,
            namespaces: 1,
            applications: 0,
            quotaViolations: 0,
          },
          byProject: {},
        },
      });
      await handlers.get("usage")!(topicFor(clusterId, "usage"), Buffer.from(JSON.stringify(envelope)));
      return id;
    },
    acks() {
      const out = new Map<string, string[][]>();
      for (const { topic, payload } of published) {
        const parsed = parseTopic(topic)!;
        expect(parsed.channel).toBe("acks");
        const result = parseEnvelope(payload, {
          channel: "acks",
          clusterId: parsed.clusterId,
          maxBytes: 1 << 20,
        });
        if (!result.ok || result.envelope.kind !== "ack") throw new Error(`bad ack: ${payload}`);
        out.set(parsed.clusterId, [...(out.get(parsed.clusterId) ?? []), result.envelope.body.ids]);
      }
      return out;
    },
    async close() {
      await ingest.stop();
      await store.close();
    },
  };
}

describe("ingest", () => {
  test("acks are coalesced: the first commit at once, later ones in one message per cluster per round", async () => {
    const w = await world({ ackIntervalMs: 300 });
    try {
      const [a, b] = [uuidv7(), uuidv7()];
      const first = await w.usage(a, 1);
      await Bun.sleep(50);
      // After a quiet spell the ack goes out with the commit.
      expect(w.acks().get(a)).toEqual([[first]]);
      const later: Record<string, string[]> = { [a]: [], [b]: [] };
      for (let hours = 2; hours <= 6; hours++) {
        for (const cluster of [a, b]) later[cluster]!.push(await w.usage(cluster, hours));
        await Bun.sleep(10); // separate batches and commits
      }
      expect(w.ingest.stats().batches).toBeGreaterThanOrEqual(3);
      // Committed, but within the ack interval: not acked yet.
      expect(w.acks().get(b)).toBeUndefined();
      await Bun.sleep(400);
      expect(w.acks().get(a)).toEqual([[first], later[a]!]);
      expect(w.acks().get(b)).toEqual([later[b]!]);
      expect(w.ingest.stats()).toMatchObject({ committed: 11, acked: 11, ackMessages: 3 });
    } finally {
      await w.close();
    }
  });

  test("a batch's usage is written together: redeliveries, a window twice, adjustments, quarantine", async () => {
    const w = await world({ ackIntervalMs: 0 });
    try {
      const cluster = uuidv7();
      const fresh = await w.usage(cluster, 1);
      await w.usage(cluster, 1, fresh); // the same report again
      const sameWindow = await w.usage(cluster, 1); // the same window under a new id
      const adjustment = await w.usage(cluster, 72); // a closed period
      const tooOld = await w.usage(cluster, 24 * 40);
      await w.usage(cluster, 24 * 40, tooOld);
      await w.ingest.drained();
      expect(w.batchSizes).toEqual([4]);
      expect(w.ingest.stats()).toMatchObject({
        batches: 1,
        committed: 3,
        duplicates: 3,
        quarantined: 1,
        adjustments: 1,
        acked: 6,
      });
      // Every report is acked, duplicates too: the operator must stop resending them.
      expect(w.acks().get(cluster)).toEqual([[fresh, fresh, sameWindow, adjustment, tooOld, tooOld]]);
      const rows = (await w.store.usage.list({}, { limit: 10 })).items;
      expect(rows.map((r) => [r.id, r.adjustment])).toEqual([
        [adjustment, true],
        [fresh, false],
      ]);
      expect((await w.store.usageQuarantine.list({}, { limit: 10 })).items.map((r) => r.id)).toEqual([
        tooOld,
      ]);
    } finally {
      await w.close();
    }
  });

  test("after a large batch the next one gathers for the busy delay; after a small one, not", async () => {
    const w = await world({ batchBusyDelayMs: 400, ackIntervalMs: 0 });
    try {
      const cluster = uuidv7();
      await Promise.all(Array.from({ length: 70 }, (_, i) => w.usage(cluster, i + 1)));
      await Bun.sleep(100);
      expect(w.batchSizes).toEqual([70]);
      // Busy: three reports 50 ms apart are committed together, 400 ms after the first.
      for (let i = 0; i < 3; i++) {
        await w.usage(cluster, 100 + i);
        await Bun.sleep(50);
      }
      expect(w.batchSizes).toEqual([70]);
      await Bun.sleep(500);
      expect(w.batchSizes).toEqual([70, 3]);
      // Quiet again: each report is committed within batchMaxDelayMs (1 ms here).
      await w.usage(cluster, 200);
      await Bun.sleep(150);
      await w.usage(cluster, 201);
      await Bun.sleep(150);
      expect(w.batchSizes).toEqual([70, 3, 1, 1]);
    } finally {
      await w.close();
    }
  });

  test("drained() commits and acks everything received, without waiting for the ack round", async () => {
    const w = await world({ ackIntervalMs: 60_000 });
    try {
      const cluster = uuidv7();
      await w.usage(cluster, 1);
      await w.ingest.drained();
      const ids = [await w.usage(cluster, 2), await w.usage(cluster, 3)];
      await w.ingest.drained();
      expect(w.acks().get(cluster)?.[1]).toEqual(ids);
      expect((await w.store.usage.list({}, { limit: 10 })).items).toHaveLength(3);
    } finally {
      await w.close();
    }
  });

  test("a backlog is committed in transactions of at most batchMaxMessages, every report once", async () => {
    const w = await world({ batchMaxMessages: 40, ackIntervalMs: 0 });
    try {
      const cluster = uuidv7();
      const ids: string[] = [];
      // Delivered without yielding to timers, as a burst read from the sockets arrives.
      for (let hours = 1; hours <= 200; hours++) ids.push(await w.usage(cluster, hours));
      await w.ingest.drained();
      const stats = w.ingest.stats();
      expect(stats).toMatchObject({ committed: 200, duplicates: 0, acked: 200 });
      expect(Math.max(...w.batchSizes)).toBeLessThanOrEqual(40);
      expect(w.batchSizes.reduce((a, b) => a + b, 0)).toBe(200);
      expect(w.acks().get(cluster)?.flat()).toEqual(ids);
    } finally {
      await w.close();
    }
  });
});
