/**
 * Issue 9, exhaustion: the operator's outbox at its bound and the Manager's database gone (DESIGN.md §3 acks,
 * §7 "database down").
 *
 * 1. Outbox full: a seeded mix of usage, events and status far beyond `maxRows`. Usage is never shed (kept beyond
 *    the bound and counted as overflow), events are shed oldest-first and counted, the counters survive a reopen
 *    of the same file, and the outbox keeps taking reports after every reopen (no crash loop). Then a real link
 *    on that full outbox delivers every usage report once the Manager acks, and the outbox drains to empty.
 * 2. Database unavailable: the channel's store is closed under it mid-traffic. Reports keep arriving but none is
 *    acked (they stay in the outbox and are resent), `/readyz` of an app on that store answers 503. A working store
 *    on the same SQLite file is put back: every report arrives exactly once (rows = reports, no duplicate ids or
 *    windows), redeliveries are absorbed as duplicates, `/readyz` is 200 again.
 *
 * CI: 600 outbox reports, 300 usage reports through the outage; `KN_ADVERSARIAL=long`: 5,000 and 2,000.
 * Replay: `KN_ADVERSARIAL_SEED`.
 */
import "reflect-metadata";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBroker, type Broker } from "../../broker/broker.ts";
import { createEmbeddedBus } from "../../manager/bus/embedded.ts";
import { createApp } from "../../manager/http/app.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store, UsageRow } from "../../manager/store/store.ts";
import { createSyncChannel, type SyncChannel } from "../../manager/sync/channel.ts";
import { createOperatorLink, type OperatorLink } from "../../operator/link/link.ts";
import { openOutbox, type Outbox, type ReportClass } from "../../operator/link/outbox.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { makeEnvelope } from "../../shared/messages.ts";
import type { Channel } from "../../shared/topics.ts";
import { zeroUsage } from "../../shared/usage.ts";
import { makePki, type Pki } from "../broker/fixtures.ts";
import { createTestManager } from "../http/harness.ts";
import { waitFor } from "../sync/fixtures.ts";
import { clusterRow } from "../support/rows.ts";
import { createRng, LONG_MODE, runSeed } from "./random.ts";

const SEED = runSeed();
const OUTBOX_REPORTS = LONG_MODE ? 5_000 : 600;
const OUTBOX_MAX_ROWS = 100;
const OUTAGE_REPORTS = LONG_MODE ? 2_000 : 300;
const HOUR = 3_600_000;
/**
 * The hour every usage window counts back from, read once: an hour boundary mid-test must not give two reports of
 * different indexes one window (the second would be a duplicate of the first, never its own row).
 */
const BASE_HOUR = Math.floor(Date.now() / HOUR) * HOUR;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kn-exhaustion-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A Manager channel over the real embedded broker whose store is reached through `current()` at every call, so a
 * test can close it under the running channel and put another one back.
 */
async function startManager(
  current: () => Store,
): Promise<{ broker: Broker; channel: SyncChannel; pki: Pki }> {
  const logger = createMemoryLogger("error");
  const store = new Proxy({} as Store, {
    get(_target, property) {
      const value = Reflect.get(current(), property);
      return typeof value === "function" ? value.bind(current()) : value;
    },
  });
  const pki = await makePki();
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => (await store.clusters.getById(id)) !== null,
    limits: { maxPayloadBytes: 256 * 1024, publishRatePerSecond: 50_000 },
    logger,
  });
  const bus = createEmbeddedBus({ broker, logger });
  const channel = createSyncChannel({
    store,
    bus,
    logger,
    heartbeatIntervalMs: 200,
    restartGraceMs: 0,
    batchMaxDelayMs: 2,
  });
  await channel.start();
  cleanups.push(async () => {
    await channel.stop().catch(() => undefined);
    await bus.close();
    await broker.close();
  });
  return { broker, channel, pki };
}

async function startLink(options: {
  pki: Pki;
  broker: Broker;
  clusterId: string;
  outbox: Outbox;
  logger?: ReturnType<typeof createMemoryLogger>;
}): Promise<OperatorLink> {
  const identity = await options.pki.identity(options.clusterId);
  const link = createOperatorLink({
    clusterId: options.clusterId,
    brokerUrl: `mqtts://127.0.0.1:${options.broker.port}`,
    tls: () => ({
      caPem: options.pki.ca.certificatePem,
      certPem: identity.certificatePem,
      keyPem: identity.privateKeyPem,
    }),
    outbox: options.outbox,
    applier: { apply: async () => {}, applySnapshot: async () => {} },
    revisions: { get: async () => 0, set: async () => {} },
    commands: async () => ({ ok: true }),
    hello: async () => ({ operatorVersion: "test", kubernetesVersion: null, capabilities: {} }),
    logger: options.logger ?? createMemoryLogger("error"),
    heartbeatIntervalMs: 200,
    flushIntervalMs: 20,
    resendAfterMs: 300,
    backoff: { initialMs: 20, maxMs: 200 },
  });
  link.start();
  cleanups.push(() => link.stop());
  return link;
}

/** The usage report for hour `index` back from the current hour: distinct windows, so each is its own row. */
function usageBody(index: number, pods: number) {
  const start = BASE_HOUR - (index + 1) * HOUR;
  return {
    tenant: "acme",
    windowStart: new Date(start).toISOString(),
    windowEnd: new Date(start + HOUR).toISOString(),
    metrics: { ...zeroUsage(), pods },
    byProject: {},
  };
}

async function allUsage(store: Store, clusterId: string): Promise<UsageRow[]> {
  const rows: UsageRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.usage.list({ clusterId }, { limit: 500, ...(cursor ? { cursor } : {}) });
    rows.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return rows;
}

const CHANNEL_OF: Record<Exclude<ReportClass, "other">, Channel> = {
  usage: "usage",
  event: "events",
  status: "status",
};

describe("operator outbox at its bound", () => {
  test(`${OUTBOX_REPORTS} seeded reports into ${OUTBOX_MAX_ROWS} rows: usage kept, events shed and counted, reopen keeps going; a link delivers all usage (seed ${SEED})`, async () => {
    const dir = await tempDir();
    const path = join(dir, "outbox.db");
    const clusterId = uuidv7();
    const rng = createRng(SEED);
    let outbox = openOutbox({ path, maxRows: OUTBOX_MAX_ROWS });
    const usageIds: string[] = [];
    let eventsEnqueued = 0;
    let eventsRefused = 0;
    let statusEnqueued = 0;
    let reopens = 0;
    let handedToLink = false;
    try {
      for (let i = 0; i < OUTBOX_REPORTS; i++) {
        const roll = rng.next();
        const reportClass: Exclude<ReportClass, "other"> =
          roll < 0.3 ? "usage" : roll < 0.85 ? "event" : "status";
        const id = uuidv7();
        const envelope =
          reportClass === "usage"
            ? makeEnvelope({ id, kind: "usage", clusterId, body: usageBody(usageIds.length, 1) })
            : reportClass === "event"
              ? makeEnvelope({
                  id,
                  kind: "event",
                  clusterId,
                  body: {
                    type: "Normal",
                    reason: "Flood",
                    message: `event ${i}`,
                    at: new Date().toISOString(),
                    tenant: null,
                    object: null,
                  },
                })
              : makeEnvelope({
                  id,
                  kind: "status",
                  clusterId,
                  body: {
                    objectKind: "app",
                    key: `acme/web/app-${rng.int(5)}`,
                    observedGeneration: i,
                    phase: "Deployed",
                  },
                });
        const stored = outbox.enqueue({
          id,
          channel: CHANNEL_OF[reportClass],
          reportClass,
          coalesceKey: reportClass === "status" ? (envelope.body as { key: string }).key : null,
          payload: JSON.stringify(envelope),
        });
        if (reportClass === "usage") usageIds.push(id);
        if (reportClass === "event") {
          eventsEnqueued++;
          if (!stored) eventsRefused++;
        }
        if (reportClass === "status") statusEnqueued++;
        expect(stored || reportClass === "event").toBe(true);
        // A restart now and then (the operator crashing while full): the same file opens and keeps going.
        if (rng.chance(0.02)) {
          outbox.close();
          outbox = openOutbox({ path, maxRows: OUTBOX_MAX_ROWS });
          reopens++;
        }
        const stats = outbox.stats();
        // Over the bound only what may not be shed: usage (never) and status (one per object, coalesced).
        if (stats.pending > OUTBOX_MAX_ROWS) expect(stats.byClass.event).toBe(0);
        expect(stats.byClass.status).toBeLessThanOrEqual(5);
        expect(stats.byClass.usage).toBe(usageIds.length);
      }
      const stats = outbox.stats();
      // Usage went beyond the bound; every event that is not in the outbox was shed and counted.
      expect(usageIds.length).toBeGreaterThan(OUTBOX_MAX_ROWS);
      expect(stats.byClass.usage).toBe(usageIds.length);
      expect(stats.overflowUsage).toBeGreaterThan(0);
      expect(stats.shedEvents + stats.byClass.event).toBe(eventsEnqueued);
      expect(stats.shedEvents).toBeGreaterThanOrEqual(eventsRefused);
      expect(stats.coalescedStatus + stats.byClass.status).toBe(statusEnqueued);
      expect(stats.byClass.status).toBeLessThanOrEqual(5);
      expect(reopens).toBeGreaterThan(0);

      // The counters are in the file, not in memory.
      outbox.close();
      outbox = openOutbox({ path, maxRows: OUTBOX_MAX_ROWS });
      expect(outbox.stats()).toEqual(stats);

      // A real link on the full outbox: every usage report reaches the Manager and the outbox drains.
      const store = await openSqliteStore({ path: join(dir, "manager.db") });
      await store.migrate();
      cleanups.push(() => store.close());
      await store.clusters.insert({ ...clusterRow("full"), id: clusterId });
      const manager = await startManager(() => store);
      // From here the link owns the outbox: it is closed after the link stops (cleanups run in reverse).
      const owned = outbox;
      cleanups.push(async () => owned.close());
      handedToLink = true;
      await startLink({ pki: manager.pki, broker: manager.broker, clusterId, outbox });
      await waitFor("the full outbox drained by acks", () => outbox.stats().pending === 0, 20_000);
      const all = await allUsage(store, clusterId);
      expect(new Set(all.map((r) => r.id))).toEqual(new Set(usageIds));
      process.stdout.write(
        `outbox at bound: ${OUTBOX_REPORTS} reports (${usageIds.length} usage, ${eventsEnqueued} events, ${statusEnqueued} status) into ${OUTBOX_MAX_ROWS} rows; shed ${stats.shedEvents} events, ${stats.overflowUsage} usage over the bound, ${stats.coalescedStatus} status coalesced; ${reopens} reopens; ${all.length} usage rows delivered\n`,
      );
    } catch (error) {
      process.stderr.write(`exhaustion outbox failed; replay with KN_ADVERSARIAL_SEED=${SEED}\n`);
      throw error;
    } finally {
      if (!handedToLink) outbox.close();
    }
  }, 30_000);
});

describe("Manager database unavailable", () => {
  test(`${OUTAGE_REPORTS} usage reports through a database outage: none acked, /readyz 503, then each stored once`, async () => {
    const dir = await tempDir();
    const dbPath = join(dir, "manager.db");
    let store = await openSqliteStore({ path: dbPath });
    await store.migrate();
    cleanups.push(() => store.close());
    const cluster = await store.clusters.insert(clusterRow("dc1"));
    const manager = await startManager(() => store);
    const m = await createTestManager();
    cleanups.push(() => m.close());
    const proxied = manager.channel.store;
    const app = createApp({ ...m.services, store: proxied });
    const readyz = async () => (await app.request("/readyz")).status;
    expect(await readyz()).toBe(200);

    const outbox = openOutbox({ path: join(dir, "outbox.db"), maxRows: 100_000 });
    cleanups.push(async () => outbox.close());
    const link = await startLink({ pki: manager.pki, broker: manager.broker, clusterId: cluster.id, outbox });
    await waitFor("connected", () => link.stats().connected);
    const ids: string[] = [];
    const before = Math.floor(OUTAGE_REPORTS / 3);
    for (let i = 0; i < before; i++) ids.push(link.report("usage", usageBody(i, i + 1)));
    await waitFor("the first reports acked", () => outbox.stats().pending === 0);
    // The operator can read the last ack before the Manager's publish of it has resolved and been counted.
    await waitFor("the Manager's ack count", () => manager.channel.ingest.stats().acked >= before);
    const ackedBefore = manager.channel.ingest.stats().acked;

    // The outage: the database goes away under the running channel.
    await store.close();
    expect(await readyz()).toBe(503);
    for (let i = before; i < OUTAGE_REPORTS; i++) ids.push(link.report("usage", usageBody(i, i + 1)));
    await waitFor("commits failing", () => manager.channel.ingest.stats().commitFailures >= 2);
    // Long enough for resends (resendAfterMs 300): still nothing acked, everything still in the outbox.
    await Bun.sleep(800);
    expect(manager.channel.ingest.stats().acked).toBe(ackedBefore);
    expect(outbox.stats().pending).toBe(OUTAGE_REPORTS - before);
    expect(await readyz()).toBe(503);
    expect(link.stats().connected).toBe(true);

    // Recovery: a working store on the same file; the channel and the app pick it up through the proxy.
    store = await openSqliteStore({ path: dbPath });
    await waitFor("every report acked after recovery", () => outbox.stats().pending === 0, 20_000);
    expect(await readyz()).toBe(200);

    const rows = await allUsage(store, cluster.id);
    const windows = new Set(rows.map((r) => r.windowStart));
    expect({
      rows: rows.length,
      distinctIds: new Set(rows.map((r) => r.id)).size,
      windows: windows.size,
    }).toEqual({
      rows: OUTAGE_REPORTS,
      distinctIds: OUTAGE_REPORTS,
      windows: OUTAGE_REPORTS,
    });
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
    const pods = rows.reduce((sum, r) => sum + r.metrics.pods, 0);
    expect(pods).toBe((OUTAGE_REPORTS * (OUTAGE_REPORTS + 1)) / 2);
    const stats = manager.channel.ingest.stats();
    process.stdout.write(
      `database outage: ${OUTAGE_REPORTS} reports (${OUTAGE_REPORTS - before} during the outage), ${stats.commitFailures} failed commits, ${stats.duplicates} redeliveries absorbed, ${rows.length} rows\n`,
    );
  }, 30_000);
});

describe("operator outbox failing under a running link", () => {
  test("every outbox call throws for a while (a full or locked disk): logged, nothing thrown, all delivered after", async () => {
    const dir = await tempDir();
    const store = await openSqliteStore({ path: join(dir, "manager.db") });
    await store.migrate();
    cleanups.push(() => store.close());
    const cluster = await store.clusters.insert(clusterRow("faulty"));
    const manager = await startManager(() => store);
    const real = openOutbox({ path: join(dir, "outbox.db"), maxRows: 1_000 });
    cleanups.push(async () => real.close());
    let failing = false;
    const faulty = new Proxy(real, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (typeof value !== "function" || property === "enqueue" || property === "enqueueMany") return value;
        return (...args: unknown[]) => {
          if (failing) throw new Error("disk I/O error (injected)");
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    cleanups.push(async () => {
      process.off("uncaughtException", onUncaught);
      process.off("unhandledRejection", onUncaught);
    });
    const logger = createMemoryLogger("error");
    const link = await startLink({
      pki: manager.pki,
      broker: manager.broker,
      clusterId: cluster.id,
      outbox: faulty,
      logger,
    });
    await waitFor("connected", () => link.stats().connected);

    // Sent, then the outbox fails before the acks come back and while more reports are written.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(link.report("usage", usageBody(i, 1)));
    failing = true;
    for (let i = 20; i < 40; i++) ids.push(link.report("usage", usageBody(i, 1)));
    await waitFor("the failure logged", () =>
      logger.records.some((r) => r.msg === "outbox read failed; retrying on the next flush"),
    );
    await Bun.sleep(300);
    expect(link.stats().connected).toBe(true);

    failing = false;
    await waitFor("every report acked once the outbox works", () => real.stats().pending === 0, 20_000);
    expect(new Set((await allUsage(store, cluster.id)).map((r) => r.id))).toEqual(new Set(ids));
    expect(uncaught).toEqual([]);
  }, 30_000);
});
