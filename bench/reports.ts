/**
 * @module bench/reports — reports committed end to end (operator outbox → broker → Manager ingest → SQLite →
 * ack → outbox delete), against raw QoS1 pub/sub through bare Aedes over mTLS measured in the same run.
 */
import { join } from "node:path";
import { startOperators, startRawClients, startServer } from "./channel.ts";
import { cpuWindow, fmt, printTable, smoke, tempDir } from "./lib.ts";
import { benchPki } from "./pki.ts";

export async function run(): Promise<void> {
  const baselineMessages = smoke ? 2_000 : 100_000;
  const operators = smoke ? 4 : 100;
  const perOperator = smoke ? 50 : 1_000;
  const pkiPath = await benchPki(Math.max(operators, 2));

  // Baseline: bare Aedes, one publisher and one subscriber, 300-byte QoS1 messages.
  const aedes = await startServer({ mode: "aedes", pkiPath, count: 2 });
  const raw = await startRawClients({ pkiPath, count: 2, processes: 1, port: aedes.port });
  const baseCpu = cpuWindow(() => raw.children.map((c) => c.pid));
  const base = await raw.children[0]!.request<{ perSecond: number; received: number; seconds: number }>(
    { cmd: "pubsub", messages: baselineMessages, bytes: 300 },
    120_000,
  );
  const baseShare = baseCpu.finish();
  await raw.close();
  await aedes.child.kill();

  // Measure: the Manager's channel in one process, simulated operators (real link + outbox) in two others.
  const dir = await tempDir("kn-bench-reports-");
  const manager = await startServer({
    mode: "manager",
    pkiPath,
    count: operators,
    dbPath: join(dir.path, "m.db"),
  });
  const ops = await startOperators({
    pkiPath,
    count: operators,
    processes: 2,
    port: manager.port,
    outboxes: "files",
  });
  await ops.all({ cmd: "start" });
  await ops.all({ cmd: "waitConnected", timeoutMs: 60_000 });
  const cpu = cpuWindow(() => ops.children.map((c) => c.pid));
  const managerCpu0 = (
    await manager.child.request<{ cpu: { user: number; system: number } }>({ cmd: "stats" })
  ).cpu;
  const results = await ops.all<{ ok: boolean; t0: number; t1: number; reports: number }>(
    { cmd: "report", count: perOperator, timeoutMs: 240_000 },
    250_000,
  );
  const share = cpu.finish();
  const managerCpu1 = (
    await manager.child.request<{ cpu: { user: number; system: number } }>({ cmd: "stats" })
  ).cpu;
  await ops.close();
  await manager.child.kill();
  await dir.remove();

  const total = results.reduce((a, r) => a + r.reports, 0);
  const seconds = (Math.max(...results.map((r) => r.t1)) - Math.min(...results.map((r) => r.t0))) / 1000;
  const perSecond = total / seconds;
  const managerCpuMs = (managerCpu1.user + managerCpu1.system - managerCpu0.user - managerCpu0.system) / 1000;
  const ratio = perSecond / base.perSecond;
  printTable(
    "reports",
    [
      {
        measure: "reports committed end to end",
        baseline: `${fmt.n(base.perSecond)} msg/s raw Aedes QoS1`,
        value: `${fmt.n(perSecond)} reports/s`,
        ratio: fmt.x(ratio),
        target: "≥ 0.5×",
        pass: results.every((r) => r.ok) && ratio >= 0.5,
        generatorCpuShare: share.share,
        notes: `baseline generator CPU share ${(baseShare.share * 100).toFixed(0)}%; Manager CPU ${(
          (managerCpuMs * 1000) / total
        ).toFixed(1)} µs per report`,
      },
    ],
    {
      baseline: { messages: base.received, seconds: base.seconds, perSecond: base.perSecond },
      reports: { operators, perOperator, total, seconds, perSecond, allAcked: results.every((r) => r.ok) },
      managerCpuMsPerReport: managerCpuMs / total,
      generatorCpu: share,
    },
  );
}

if (import.meta.main) await run();
