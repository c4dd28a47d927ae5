/**
 * @module bench/fanout — one plan change fanned out to N clusters: the Manager commits a change for each
 * cluster's change log (what a plan edit does for every tenant placement), the dispatcher publishes, each
 * simulated operator applies it, reports its status, and the Manager commits and acks that report.
 * Latency per cluster: commit of the change → status report acknowledged (outbox empty).
 */
import { join } from "node:path";
import { startOperators, startServer } from "./channel.ts";
import { cpuWindow, fmt, percentile, printTable, smoke, tempDir } from "./lib.ts";
import { benchPki } from "./pki.ts";

export async function fanout(count: number, processes: number) {
  const pkiPath = await benchPki(count);
  const dir = await tempDir("kn-bench-fanout-");
  const manager = await startServer({ mode: "manager", pkiPath, count, dbPath: join(dir.path, "m.db") });
  const ops = await startOperators({ pkiPath, count, processes, port: manager.port, outboxes: "files" });
  await ops.all({ cmd: "start" });
  await ops.all({ cmd: "waitConnected", timeoutMs: 120_000 }, 130_000);
  await Bun.sleep(smoke ? 200 : 1000); // hellos answered, nothing in flight
  const cpu = cpuWindow(() => ops.children.map((c) => c.pid));
  const waits = ops.all<{ ok: boolean; appliedAt: number[]; ackedAt: number[] }>(
    { cmd: "waitApplied", revision: 1, timeoutMs: 60_000 },
    70_000,
  );
  const appended = await manager.child.request<{ t0: number; t1: number }>({ cmd: "append" }, 60_000);
  const results = await waits;
  const share = cpu.finish().share;
  await ops.close();
  await manager.child.kill();
  await dir.remove();
  const applied = results
    .flatMap((r) => r.appliedAt)
    .filter((t) => t > 0)
    .map((t) => t - appended.t0);
  const acked = results
    .flatMap((r) => r.ackedAt)
    .filter((t) => t > 0)
    .map((t) => t - appended.t0);
  return {
    count,
    ok: results.every((r) => r.ok) && acked.length === count,
    commitMs: appended.t1 - appended.t0,
    appliedP50: percentile(applied, 50),
    appliedP99: percentile(applied, 99),
    ackedP50: percentile(acked, 50),
    ackedP99: percentile(acked, 99),
    ackedMax: Math.max(...acked),
    share,
  };
}

export async function run(): Promise<void> {
  const count = smoke ? 20 : 1_000;
  const r = await fanout(count, smoke ? 1 : 2);
  printTable(
    "fanout",
    [
      {
        measure: `one plan change to ${fmt.n(count)} clusters, applied and acknowledged`,
        baseline: "–",
        value: `p99 ${fmt.ms(r.ackedP99)} (p50 ${fmt.ms(r.ackedP50)})`,
        ratio: "–",
        target: "p99 ≤ 2 s",
        pass: r.ok && r.ackedP99 <= 2000,
        generatorCpuShare: r.share,
      },
    ],
    r,
  );
}

if (import.meta.main) await run();
