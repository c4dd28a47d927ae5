/**
 * @module bench/proc/manager — the server side of the channel benchmarks, in its own process.
 * mode "manager": the Manager's channel as main.ts wires it (SQLite file store, embedded broker with the ACL and
 * revocation checks, bus, presence, dispatcher, ingest). mode "aedes": bare Aedes over mutual TLS, the baseline;
 * mode "tls": a bare mutual-TLS listener that closes each connection after the handshake (the handshake bound).
 * Commands (stdin): stats, gc, heap (object counts by type), append (one desired change for every cluster), exit.
 */
import "reflect-metadata";
import { heapStats } from "bun:jsc";
import tls from "node:tls";
import { Aedes } from "aedes";
import { createBroker } from "../../broker/broker.ts";
import { createEmbeddedBus } from "../../manager/bus/embedded.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { createSyncChannel } from "../../manager/sync/channel.ts";
import { createLogger } from "../../shared/logger.ts";
import { childConfig, send, serveCommands } from "../lib.ts";
import { loadPki } from "../pki.ts";

interface Config {
  mode: "manager" | "aedes" | "tls";
  port: number;
  pkiPath: string;
  count: number;
  dbPath?: string;
  heartbeatIntervalMs?: number;
}

const config = childConfig<Config>();
const pki = loadPki(config.pkiPath);
const identities = pki.identities.slice(0, config.count);
const logger = createLogger({ level: "error", sink: (line) => process.stderr.write(`${line}\n`) });
let port = config.port;
let append: (() => Promise<{ revision: number }>) | null = null;
let channelStats: () => Record<string, unknown> = () => ({});

if (config.mode === "tls") {
  const server = tls.createServer(
    {
      ca: pki.caPem,
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      socket.on("error", () => undefined);
      socket.end();
    },
  );
  server.on("tlsClientError", (_error, socket) => socket?.destroy());
  await new Promise<void>((resolve) => server.listen(config.port, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
} else if (config.mode === "aedes") {
  const aedes = await Aedes.createBroker({});
  const server = tls.createServer(
    {
      ca: pki.caPem,
      cert: pki.server.certPem,
      key: pki.server.keyPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      socket.on("error", () => undefined);
      aedes.handle(socket);
    },
  );
  server.on("tlsClientError", (_error, socket) => socket?.destroy());
  await new Promise<void>((resolve) => server.listen(config.port, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
} else {
  const store = await openSqliteStore({ path: config.dbPath!, logger });
  await store.migrate();
  const now = new Date().toISOString();
  if ((await store.clusters.getById(identities[0]!.clusterId)) === null) {
    for (const [i, identity] of identities.entries()) {
      await store.clusters.insert({
        id: identity.clusterId,
        name: `bench-${i}`,
        displayName: null,
        datacenter: "bench",
        labels: {},
        capsuleProxyUrl: null,
        status: "offline",
        statusReason: null,
        versions: {},
        capabilities: {},
        kubeconfigCiphertext: null,
        lastSeenAt: null,
        revokedAt: null,
        createdAt: now,
        updatedAt: now,
        version: 1,
      });
    }
  }
  const broker = await createBroker({
    host: "127.0.0.1",
    port: config.port,
    caPem: pki.caPem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => (await store.clusters.getById(id)) !== null,
    // 500/s per connection: the KUBENOVA_MQTT_PUBLISH_RATE default.
    // Handshake admission as KUBENOVA_MQTT_MAX_HANDSHAKES defaults (64); BENCH_HANDSHAKE_CAP=<n> overrides, 0 = off.
    limits: {
      maxPayloadBytes: 256 * 1024,
      publishRatePerSecond: 500,
      maxHandshakesInFlight: Number(process.env.BENCH_HANDSHAKE_CAP ?? 64),
    },
    logger,
  });
  port = broker.port;
  const bus = createEmbeddedBus({ broker, logger });
  const channel = createSyncChannel({
    store,
    bus,
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs ?? 10_000,
  });
  await channel.start();
  let generation = 0;
  append = async () => {
    generation++;
    let revision = 0;
    for (const identity of identities) {
      const [row] = await channel.store.changeLog.append(identity.clusterId, [
        {
          kind: "tenant",
          key: "bench",
          op: "upsert",
          body: { name: "bench", plan: { name: "gold", generation, quotas: { cpu: "4", pods: 20 } } },
        },
      ]);
      revision = row?.revision ?? revision;
    }
    return { revision };
  };
  channelStats = () => ({
    dispatcher: channel.dispatcher.stats(),
    ingest: channel.ingest.stats(),
    clusterWriter: channel.clusterWriter.stats(),
    presence: channel.presence.counts(),
    broker: broker.metrics,
  });
}

send({ type: "ready", port, pid: process.pid });

await serveCommands(async (command) => {
  switch (command.cmd) {
    case "gc":
      Bun.gc(true);
      await Bun.sleep(100);
      Bun.gc(true);
      return { rss: process.memoryUsage().rss };
    case "heap": {
      // Live JS objects by type, largest counts first: what the process holds per connection.
      Bun.gc(true);
      const stats = heapStats();
      const top = Object.entries(stats.objectTypeCounts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, command.top ?? 40);
      return {
        heapSize: stats.heapSize,
        heapCapacity: stats.heapCapacity,
        extraMemorySize: stats.extraMemorySize,
        // Native allocations (sockets, TLS, Bun internals) outside the JS heap.
        mallocBytes: (stats as { mimalloc?: { malloc_normal?: { current?: number } } }).mimalloc
          ?.malloc_normal?.current,
        objectCount: stats.objectCount,
        top,
        rss: process.memoryUsage().rss,
      };
    }
    case "stats":
      return { rss: process.memoryUsage().rss, cpu: process.cpuUsage(), ...channelStats() };
    case "append": {
      if (!append) throw new Error("append needs mode manager");
      const t0 = Date.now();
      const { revision } = await append();
      return { t0, t1: Date.now(), revision };
    }
    case "exit":
      return {};
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
