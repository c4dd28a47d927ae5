/** An in-process Manager channel over the real embedded broker, and real operator links, for the sync suites. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Broker, type BrokerLimits, createBroker } from "../../broker/broker.ts";
import { createEmbeddedBus } from "../../manager/bus/embedded.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { ClusterRow, Store } from "../../manager/store/store.ts";
import { createSyncChannel, type SyncChannel } from "../../manager/sync/channel.ts";
import { createOperatorLink, type OperatorLink } from "../../operator/link/link.ts";
import { openOutbox, type Outbox } from "../../operator/link/outbox.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { DesiredChange } from "../../shared/messages.ts";
import { makePki, type Pki } from "../broker/fixtures.ts";
import { clusterRow } from "../support/rows.ts";

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface TestOperator {
  clusterId: string;
  link: OperatorLink;
  outbox: Outbox;
  applied: DesiredChange[];
  snapshots: DesiredChange[][];
  revision(): number;
  setRevision(revision: number): void;
  stop(): Promise<void>;
}

export interface SyncWorld {
  store: Store;
  broker: Broker;
  channel: SyncChannel;
  pki: Pki;
  logs: ReturnType<typeof createMemoryLogger>["records"];
  addCluster(name: string): Promise<ClusterRow>;
  operator(
    clusterId: string,
    options?: {
      heartbeatIntervalMs?: number;
      revision?: number;
      maxUnacked?: number;
      resendAfterMs?: number;
    },
  ): Promise<TestOperator>;
  close(): Promise<void>;
}

export async function createSyncWorld(
  options: {
    heartbeatIntervalMs?: number;
    restartGraceMs?: number;
    commandTimeoutMs?: number;
    /** Over the fixture's broker limits (256 KiB payloads, 50,000 publishes/s). */
    brokerLimits?: Partial<BrokerLimits>;
  } = {},
): Promise<SyncWorld> {
  const logger = createMemoryLogger("info");
  const dir = await mkdtemp(join(tmpdir(), "kn-sync-"));
  const pki = await makePki();
  const store = await openSqliteStore({ path: ":memory:", logger });
  await store.migrate();
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => (await store.clusters.getById(id)) !== null,
    limits: { maxPayloadBytes: 256 * 1024, publishRatePerSecond: 50_000, ...options.brokerLimits },
    logger,
  });
  const bus = createEmbeddedBus({ broker, logger });
  const channel = createSyncChannel({
    store,
    bus,
    logger,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 200,
    restartGraceMs: options.restartGraceMs ?? 0,
    batchMaxDelayMs: 2,
    ...(options.commandTimeoutMs ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
  });
  await channel.start();
  const operators: TestOperator[] = [];

  return {
    store,
    broker,
    channel,
    pki,
    logs: logger.records,
    addCluster: (name) => store.clusters.insert(clusterRow(name)),
    async operator(clusterId, operatorOptions = {}) {
      const identity = await pki.identity(clusterId);
      const outbox = openOutbox({ path: join(dir, `${clusterId}-${operators.length}.db`), maxRows: 100_000 });
      const applied: DesiredChange[] = [];
      const snapshots: DesiredChange[][] = [];
      let revision = operatorOptions.revision ?? 0;
      const link = createOperatorLink({
        clusterId,
        brokerUrl: `mqtts://127.0.0.1:${broker.port}`,
        tls: () => ({
          caPem: pki.ca.certificatePem,
          certPem: identity.certificatePem,
          keyPem: identity.privateKeyPem,
        }),
        outbox,
        applier: {
          apply: async (change) => {
            applied.push(change);
          },
          applySnapshot: async (changes) => {
            snapshots.push(changes);
          },
        },
        revisions: {
          get: async () => revision,
          set: async (next) => {
            revision = next;
          },
        },
        commands: async (command) => ({ ok: true, result: { name: command.name, args: command.args } }),
        hello: async () => ({
          operatorVersion: "test",
          kubernetesVersion: "v1.31.0",
          capabilities: { "core.oam.dev": ["v1beta1"], "capsule.clastix.io": ["v1beta2"] },
        }),
        logger,
        heartbeatIntervalMs: operatorOptions.heartbeatIntervalMs ?? 200,
        flushIntervalMs: 20,
        resendAfterMs: operatorOptions.resendAfterMs ?? 500,
        ...(operatorOptions.maxUnacked ? { maxUnacked: operatorOptions.maxUnacked } : {}),
        backoff: { initialMs: 20, maxMs: 200 },
      });
      const operator: TestOperator = {
        clusterId,
        link,
        outbox,
        applied,
        snapshots,
        revision: () => revision,
        setRevision: (next) => {
          revision = next;
        },
        async stop() {
          await link.stop();
          outbox.close();
        },
      };
      operators.push(operator);
      link.start();
      return operator;
    },
    async close() {
      for (const operator of operators) await operator.link.stop().catch(() => undefined);
      await channel.stop();
      await bus.close();
      await broker.close();
      await store.close();
      for (const operator of operators) {
        try {
          operator.outbox.close();
        } catch {
          // already closed by the test
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
