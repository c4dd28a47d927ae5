/**
 * @module bench/reports — reports committed end to end (operator outbox → broker → Manager ingest → SQLite →
 * ack → outbox delete), against raw QoS1 pub/sub through bare Aedes over mTLS measured in the same run.
 * Per-unit costs (Manager and generator CPU per report) are printed too: they hold up on a shared machine.
 * `BENCH_REPORTS_ENQUEUE=single` queues each report in its own outbox transaction instead of one batch per
 * operator; `BENCH_CPU_PROF=<dir>` (bench/lib.ts) profiles the Manager and generator children.
 */
import { join } from "node:path";
import { startOperators, startRawClients, startServer } from "./channel.ts";
import { cpuMsOf, cpuWindow, fmt, printTable, smoke, tempDir } from "./lib.ts";
import { benchPki } from "./pki.ts";

export async function run(): Promise<void> {
  const baselineMessages = smoke ? 2_000 : 100_000;
  const operators = smoke ? 4 : 100;
  const perOperator = smoke ? 50 : 1_000;
  const pkiPath = await benchPki(Math.max(operators, 2));
  // "batch": each operator queues its reports with one `reportMany` (one outbox transaction, as a usage
  // collection does); "single": one `report` (one fsynced transaction) each.
  const enqueue = process.env.BENCH_REPORTS_ENQUEUE === "single" ? "single" : "batch";

  // Baseline: bare Aedes, one publisher and one subscriber, 300-byte QoS1 messages.
  const aedes = await startServer({ mode: "aedes", pkiPath, count: 2 });
  const raw = await startRawClients({ pkiPath, count: 2, processes: 1, port: aedes.port });
  const baseCpu = cpuWindow(() => raw.children.map((c) => c.pid));
  const brokerCpu0 = cpuMsOf(aedes.child.pid);
  const base = await raw.children[0]!.request<{ perSecond: number; received: number; seconds: number }>(
    { cmd: "pubsub", messages: baselineMessages, bytes: 300 },
    120_000,
  );
  const baseShare = baseCpu.finish();
  const brokerCpuMs = cpuMsOf(aedes.child.pid) - brokerCpu0;
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
    { cmd: "report", count: perOperator, batch: enqueue === "batch", timeoutMs: 240_000 },
    250_000,
  );
  const share = cpu.finish();
  const managerStats = await manager.child.request<{
    cpu: { user: number; system: number };
    ingest?: Record<string, unknown>;
  }>({ cmd: "stats" });
  const managerCpu1 = managerStats.cpu;
  await ops.close();
  await manager.child.kill();
  await dir.remove();

  const total = results.reduce((a, r) => a + r.reports, 0);
  const seconds = (Math.max(...results.map((r) => r.t1)) - Math.min(...results.map((r) => r.t0))) / 1000;
  const perSecond = total / seconds;
  const managerCpuMs = (managerCpu1.user + managerCpu1.system - managerCpu0.user - managerCpu0.system) / 1000;
  const ratio = perSecond / base.perSecond;
  const generatorCpuUsPerReport = (share.generatorCpuMs * 1000) / total;
  // Load-independent comparison: all CPU spent per message (broker + clients) against per report (Manager +
  // operators). On a machine shared with other work the rates starve, the CPU per unit much less.
  const baseCpuUsPerMessage = ((brokerCpuMs + baseShare.generatorCpuMs) * 1000) / base.received;
  const reportCpuUs = (managerCpuMs * 1000) / total + generatorCpuUsPerReport;
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
        notes: [
          `baseline generator CPU share ${(baseShare.share * 100).toFixed(0)}%`,
          `Manager CPU ${((managerCpuMs * 1000) / total).toFixed(1)} µs per report`,
          `generator (operators) CPU ${generatorCpuUsPerReport.toFixed(1)} µs per report (${enqueue} enqueue)`,
          `CPU per unit: ${baseCpuUsPerMessage.toFixed(1)} µs per raw message (broker + clients)`,
          `${reportCpuUs.toFixed(1)} µs per report (Manager + operators): ${fmt.x(baseCpuUsPerMessage / reportCpuUs)}`,
        ].join("; "),
      },
    ],
    {
      baseline: {
        messages: base.received,
        seconds: base.seconds,
        perSecond: base.perSecond,
        brokerCpuMs,
        clientCpuMs: baseShare.generatorCpuMs,
        cpuUsPerMessage: baseCpuUsPerMessage,
      },
      cpuUsPerReport: reportCpuUs,
      cpuRatio: baseCpuUsPerMessage / reportCpuUs,
      reports: {
        operators,
        perOperator,
        enqueue,
        total,
        seconds,
        perSecond,
        allAcked: results.every((r) => r.ok),
      },
      managerCpuMsPerReport: managerCpuMs / total,
      generatorCpuMsPerReport: generatorCpuUsPerReport / 1000,
      generatorCpu: share,
      // Batches, duplicates (redeliveries), ack counts: what the per-report cost is made of.
      ingest: managerStats.ingest ?? null,
    },
  );
}

if (import.meta.main) await run();
