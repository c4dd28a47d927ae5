/**
 * @module bench/connections — Manager memory per held operator connection (simulated operators with real
 * client certificates and link code, keepalive 30 s) against bare Aedes holding as many mTLS clients.
 * Run at 3 sizes so the growth exponent of memory with clusters is fitted too.
 */
import { join } from "node:path";
import { startOperators, startRawClients, startServer } from "./channel.ts";
import { type Child, cpuWindow, fitExponent, fmt, printTable, smoke, tempDir } from "./lib.ts";
import { benchPki } from "./pki.ts";

/** The simulated operators' outbox poll interval here (production default 250 ms; see heldRss). */
const IDLE_FLUSH_MS = 5_000;

const gc = async (child: Child) => (await child.request<{ rss: number }>({ cmd: "gc" })).rss;

export async function heldRss(options: {
  mode: "manager" | "aedes";
  /** Who connects: bare mqtt.js clients (default with "aedes") or simulated operators (default with "manager"). */
  clients?: "raw" | "operators";
  pkiPath: string;
  count: number;
  processes: number;
}): Promise<{
  perConnection: number;
  rss0: number;
  rss1: number;
  connected: number;
  seconds: number;
  share: number;
  /** Server CPU per second of wall time while holding them idle (keepalives, heartbeats every 10 s). */
  idleCpuMsPerSecond: number;
}> {
  const dir = await tempDir("kn-bench-conn-");
  const server = await startServer({
    mode: options.mode,
    pkiPath: options.pkiPath,
    count: options.count,
    dbPath: join(dir.path, "m.db"),
  });
  const rss0 = await gc(server.child);
  const t0 = Date.now();
  let connected = 0;
  let share = 0;
  let close: () => Promise<void>;
  if ((options.clients ?? (options.mode === "aedes" ? "raw" : "operators")) === "raw") {
    const raw = await startRawClients({ ...options, port: server.port });
    const cpu = cpuWindow(() => raw.children.map((c) => c.pid));
    const held = await Promise.all(
      raw.children.map((c) => c.request<{ connected: number }>({ cmd: "hold" }, 300_000)),
    );
    share = cpu.finish().share;
    connected = held.reduce((a, h) => a + h.connected, 0);
    close = raw.close;
  } else {
    // No reports flow here; the link's idle outbox poll (a SQLite query per link every flushIntervalMs, 66% of
    // a generator's CPU at the 250 ms default) would only starve the Manager of the machine's two cores.
    const ops = await startOperators({
      ...options,
      port: server.port,
      outboxes: "memory",
      flushIntervalMs: IDLE_FLUSH_MS,
    });
    const cpu = cpuWindow(() => ops.children.map((c) => c.pid));
    // Bounded like the baseline's (64 handshakes in flight per generator process): 10,000 links starting in
    // the same millisecond time out together (10 s CONNACK timeout) and retry, a stampede no deployment makes
    // on first start; the reconnect benchmark measures the unpaced storm.
    await ops.all({ cmd: "start", concurrency: 64 });
    const held = await ops.all<{ connected: number }>({ cmd: "waitConnected", timeoutMs: 240_000 }, 300_000);
    share = cpu.finish().share;
    connected = held.reduce((a, h) => a + h.connected, 0);
    close = ops.close;
  }
  const seconds = (Date.now() - t0) / 1000;
  await Bun.sleep(smokeOr(200, 2000)); // let hellos, snapshots and first heartbeats settle
  const rss1 = await gc(server.child);
  // Idle cost: two heartbeat intervals of nothing but keepalives and heartbeats.
  const cpuOf = async () => {
    const { cpu } = await server.child.request<{ cpu: { user: number; system: number } }>({ cmd: "stats" });
    return (cpu.user + cpu.system) / 1000;
  };
  const idleFrom = { ms: await cpuOf(), at: performance.now() };
  await Bun.sleep(smokeOr(500, 20_000));
  const idleCpuMsPerSecond = ((await cpuOf()) - idleFrom.ms) / ((performance.now() - idleFrom.at) / 1000);
  await close();
  await server.child.kill();
  await dir.remove();
  return {
    perConnection: (rss1 - rss0) / Math.max(connected, 1),
    rss0,
    rss1,
    connected,
    seconds,
    share,
    idleCpuMsPerSecond,
  };
}

const smokeOr = (small: number, full: number) => (smoke ? small : full);

export async function run(): Promise<void> {
  const count = Number(process.env.BENCH_CONNECTIONS ?? smokeOr(40, 10_000));
  const processes = smokeOr(1, 4);
  const pkiPath = await benchPki(count);
  const baseline = await heldRss({ mode: "aedes", pkiPath, count, processes });
  const sizes = smoke ? [count / 2, count] : [count / 4, count / 2, count];
  const points: Array<{ size: number; cost: number; detail: Awaited<ReturnType<typeof heldRss>> }> = [];
  for (const size of sizes) {
    const detail = await heldRss({ mode: "manager", pkiPath, count: size, processes });
    points.push({ size, cost: detail.rss1 - detail.rss0, detail });
  }
  const full = points.at(-1)!.detail;
  const ratio = full.perConnection / baseline.perConnection;
  // Not a target: bare Aedes under the same simulated operators (persistent session, 3 subscriptions, will,
  // retained presence, QoS 1 heartbeats) splits the gap into what the MQTT contract costs in Aedes and what the
  // Manager's own code adds. BENCH_CONTRACT_BASELINE=0 skips it.
  const contract =
    process.env.BENCH_CONTRACT_BASELINE === "0"
      ? null
      : await heldRss({ mode: "aedes", clients: "operators", pkiPath, count, processes });
  const exponent = fitExponent(points);
  printTable(
    "connections",
    [
      {
        measure: `Manager memory per operator connection (${fmt.n(full.connected)} held)`,
        baseline: `${fmt.kb(baseline.perConnection)}/conn raw Aedes (${fmt.n(baseline.connected)})`,
        value: `${fmt.kb(full.perConnection)}/conn`,
        ratio: fmt.x(ratio),
        target: "≤ 1.5×",
        pass: full.connected === count && ratio <= 1.5,
        generatorCpuShare: full.share,
      },
      ...(contract
        ? [
            {
              measure: `of which the MQTT contract: bare Aedes, same operators (${fmt.n(contract.connected)} held)`,
              baseline: `${fmt.kb(baseline.perConnection)}/conn raw Aedes`,
              value: `${fmt.kb(contract.perConnection)}/conn`,
              ratio: fmt.x(contract.perConnection / baseline.perConnection),
              target: "– (diagnostic)",
              pass: null,
              generatorCpuShare: contract.share,
            },
          ]
        : []),
      {
        measure: `Manager CPU holding ${fmt.n(full.connected)} idle operators (heartbeats every 10 s)`,
        baseline: `raw Aedes ${baseline.idleCpuMsPerSecond.toFixed(1)} ms/s (keepalives only)`,
        value: `${full.idleCpuMsPerSecond.toFixed(1)} ms/s = ${fmt.n(
          (full.idleCpuMsPerSecond * 1000) / Math.max(full.connected / 10, 1),
        )} µs per heartbeat`,
        ratio: "–",
        target: "– (diagnostic)",
        pass: null,
        generatorCpuShare: null,
      },
      {
        measure: "growth of Manager memory with clusters",
        baseline: "–",
        value: points.map((p) => `${p.size}:${fmt.mb(p.cost)}`).join(" "),
        ratio: `exp ${exponent.toFixed(2)}`,
        target: "exponent ≤ 1.1",
        pass: exponent <= 1.1,
        generatorCpuShare: null,
      },
    ],
    {
      baseline,
      contract,
      manager: points.map((p) => ({ size: p.size, ...p.detail })),
      exponent,
    },
  );
}

if (import.meta.main) await run();
