/**
 * @module bench/reconnect — reconnect storm: the Manager is SIGKILLed under N connected operators, a change is
 * written for every cluster while it is down, and it restarts on the same port and database. Measured until
 * every operator is connected again and has applied that change (resynced), against the machine's raw
 * mutual-TLS handshake rate measured in the same run (the bound: N / handshakes per second).
 */
import { join } from "node:path";
import { openSqliteStore } from "../manager/store/sqlite.ts";
import { startOperators, startRawClients, startServer } from "./channel.ts";
import { cpuWindow, fmt, percentile, printTable, smoke, tempDir } from "./lib.ts";
import { benchPki, loadPki } from "./pki.ts";

export async function run(): Promise<void> {
  const count = Number(process.env.BENCH_CONNECTIONS ?? (smoke ? 40 : 10_000));
  const processes = smoke ? 1 : 4;
  const pkiPath = await benchPki(count);

  // Baseline: bare mutual-TLS handshakes against a bare listener, same certificates, same generator count.
  const tlsServer = await startServer({ mode: "tls", pkiPath, count });
  const raw = await startRawClients({ pkiPath, count, processes, port: tlsServer.port });
  const handshakes = smoke ? 200 : 4_000;
  const baseCpu = cpuWindow(() => raw.children.map((c) => c.pid));
  const hs = await Promise.all(
    raw.children.map((c) =>
      c.request<{ perSecond: number; count: number; seconds: number }>(
        { cmd: "handshakes", count: Math.ceil(handshakes / processes), concurrency: 16 },
        120_000,
      ),
    ),
  );
  const baseShare = baseCpu.finish().share;
  const handshakeRate = hs.reduce((a, h) => a + h.count, 0) / Math.max(...hs.map((h) => h.seconds));
  await tlsServer.child.kill();

  const dir = await tempDir("kn-bench-storm-");
  const dbPath = join(dir.path, "m.db");
  let manager = await startServer({ mode: "manager", pkiPath, count, dbPath });
  const port = manager.port;
  // The same handshakes through the Manager's broker path (handshake admission, then closed before CONNECT):
  // what admission costs against the bare listener.
  const viaBroker = await Promise.all(
    raw.children.map((c) =>
      c.request<{ perSecond: number; count: number; seconds: number }>(
        { cmd: "handshakes", count: Math.ceil(handshakes / processes), concurrency: 16, port },
        120_000,
      ),
    ),
  );
  const brokerHandshakeRate =
    viaBroker.reduce((a, h) => a + h.count, 0) / Math.max(...viaBroker.map((h) => h.seconds));
  await raw.close();
  // Reports (the status of the applied change) are flushed on enqueue; the idle outbox poll every 250 ms (66% of
  // a generator's CPU) is slowed so the generators do not starve the Manager (see connections.ts).
  const ops = await startOperators({
    pkiPath,
    count,
    processes,
    port,
    outboxes: "memory",
    flushIntervalMs: 5_000,
  });
  // The first connect is set-up, not the measure: paced like the connections benchmark.
  await ops.all({ cmd: "start", concurrency: 64 });
  const first = await ops.all<{ connected: number }>({ cmd: "waitConnected", timeoutMs: 300_000 }, 310_000);
  const connectedBefore = first.reduce((a, r) => a + r.connected, 0);
  await ops.all({ cmd: "mark" });

  await manager.child.kill("SIGKILL");
  const killedAt = Date.now();
  // While the Manager is down: one new desired change per cluster, so "resynced" is observable. One
  // transaction: 10,000 separate fsynced commits took ~40 s, long enough for every link's backoff to reach its
  // 30 s cap, which then alone decided the storm's length. A restart is seconds.
  const store = await openSqliteStore({ path: dbPath });
  const revision = await store.transaction(async (tx) => {
    let highest = 0;
    for (const identity of loadPki(pkiPath).identities.slice(0, count)) {
      const [row] = await tx.changeLog.append(identity.clusterId, [
        { kind: "tenant", key: "storm", op: "upsert", body: { name: "storm" } },
      ]);
      highest = Math.max(highest, row?.revision ?? 0);
    }
    return highest;
  });
  await store.close();
  const cpu = cpuWindow(() => ops.children.map((c) => c.pid));
  manager = await startServer({ mode: "manager", pkiPath, count, dbPath, port });
  const restartedAt = Date.now();
  const results = await ops.all<{
    ok: boolean;
    reconnectedAt: Array<number | null>;
    resyncedAt: Array<number | null>;
    connects: number;
  }>({ cmd: "waitResynced", revision, timeoutMs: smoke ? 30_000 : 240_000 }, 300_000);
  const share = cpu.finish().share;
  // What the restarted Manager saw: accepted sessions beyond one per operator, handshakes that failed and
  // sessions that ended are connection attempts the storm wasted (a link gave up on its CONNACK and retried).
  const managerStats = await manager.child.request<{
    broker?: { connections: Record<string, unknown> };
    ingest?: { batches: number; committed: number };
    clusterWriter?: { batches: number; rows: number };
    dispatcher?: Record<string, number>;
    cpu?: { user: number; system: number };
  }>({ cmd: "stats" });
  await ops.close();
  await manager.child.kill();
  await dir.remove();

  const reconnected = results.flatMap((r) => r.reconnectedAt).filter((t): t is number => t !== null);
  const resynced = results.flatMap((r) => r.resyncedAt).filter((t): t is number => t !== null);
  const allDone = resynced.length === count;
  const stormSeconds = (Math.max(...resynced) - restartedAt) / 1000;
  const boundSeconds = count / handshakeRate;
  const ratio = stormSeconds / boundSeconds;
  // Connection-rate curve: reconnects per 1-second bucket after the restart.
  const buckets: number[] = [];
  for (const t of reconnected) {
    const b = Math.max(0, Math.floor((t - restartedAt) / 1000));
    buckets[b] = (buckets[b] ?? 0) + 1;
  }
  const curve = Array.from(buckets, (v) => v ?? 0);
  const peak = Math.max(...curve);
  // No stampede: no second takes more than the machine's handshake rate would allow (plus 10%).
  const noStampede = peak <= handshakeRate * 1.1;
  printTable(
    "reconnect",
    [
      {
        measure: `reconnect storm, ${fmt.n(count)} operators until all resynced`,
        baseline: `${fmt.n(handshakeRate)} mTLS handshakes/s → bound ${boundSeconds.toFixed(1)} s`,
        value: `${stormSeconds.toFixed(1)} s`,
        ratio: fmt.x(ratio),
        target: "≤ 1.4×",
        pass: allDone && ratio <= 1.4,
        generatorCpuShare: share,
        notes: `baseline generator CPU share ${(baseShare * 100).toFixed(0)}%`,
      },
      {
        measure: "connection-rate curve (reconnects/s)",
        baseline: `${fmt.n(handshakeRate)}/s`,
        value: `peak ${fmt.n(peak)}/s`,
        ratio: fmt.x(peak / handshakeRate),
        target: "no stampede (peak ≤ 1.1× handshake rate)",
        pass: noStampede,
        generatorCpuShare: null,
        notes: `curve: ${curve.join(",")}`,
      },
    ],
    {
      count,
      connectedBefore,
      handshakeRate,
      brokerHandshakeRate,
      downMs: restartedAt - killedAt,
      reconnected: reconnected.length,
      resynced: resynced.length,
      stormSeconds,
      p50ReconnectS: (percentile(reconnected, 50) - restartedAt) / 1000,
      p99ResyncS: (percentile(resynced, 99) - restartedAt) / 1000,
      curve,
      linkConnects: results.reduce((a, r) => a + (r.connects ?? 0), 0),
      managerConnections: managerStats.broker?.connections ?? null,
      // Commits during the storm: report batches and cluster-row batches (each one fsync of the WAL).
      ingestBatches: managerStats.ingest?.batches ?? null,
      ingestCommitted: managerStats.ingest?.committed ?? null,
      clusterWriterBatches: managerStats.clusterWriter?.batches ?? null,
      clusterWriterRows: managerStats.clusterWriter?.rows ?? null,
      dispatcher: managerStats.dispatcher ?? null,
      managerCpuMsPerReconnect: managerStats.cpu
        ? (managerStats.cpu.user + managerStats.cpu.system) / 1000 / Math.max(reconnected.length, 1)
        : null,
    },
  );
}

if (import.meta.main) await run();
