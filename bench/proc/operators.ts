/**
 * @module bench/proc/operators — a load generator hosting many simulated operators, each with the real link
 * code: `createOperatorLink` (mTLS MQTT client, hello, heartbeats, backoff), its own `openOutbox` (a SQLite file,
 * or in memory for the connection-count runs) and acks. Only the Kubernetes side is stubbed: applying a change
 * records the time and reports a `status` for it, as the operator's reconcilers do.
 * Commands: start, waitConnected, mark, waitResynced, report (`batch: true`: one `reportMany` per operator),
 * waitApplied, exit.
 */
import "reflect-metadata";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { createOperatorLink, type OperatorLink } from "../../operator/link/link.ts";
import { type Outbox, openOutbox } from "../../operator/link/outbox.ts";
import { createLogger } from "../../shared/logger.ts";
import { childConfig, send, serveCommands } from "../lib.ts";
import { loadPki } from "../pki.ts";

interface Config {
  pkiPath: string;
  from: number;
  to: number;
  port: number;
  /** null: in-memory outboxes. */
  outboxDir: string | null;
  heartbeatIntervalMs?: number;
  keepaliveSeconds?: number;
  flushIntervalMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

interface Sim {
  clusterId: string;
  link: OperatorLink;
  outbox: Outbox;
  revision: number;
  appliedAt: Map<number, number>;
  /** Connect count at the last `mark`, and when the first connect after it was seen. */
  markConnects: number;
  reconnectedAt: number | null;
  resyncedAt: number | null;
}

const config = childConfig<Config>();
const pki = loadPki(config.pkiPath);
// BENCH_OPERATOR_LOG=<dir>: the links' info log (connects, reconnect delays) to <dir>/operators-<pid>.log.
const logDir = process.env.BENCH_OPERATOR_LOG || null;
const logLines: string[] = [];
const logger = logDir
  ? createLogger({ level: "info", sink: (line) => logLines.push(line) })
  : createLogger({ level: "error", sink: (line) => process.stderr.write(`${line}\n`) });
if (logDir) {
  const path = join(logDir, `operators-${process.pid}.log`);
  setInterval(() => {
    if (logLines.length > 0) appendFileSync(path, `${logLines.splice(0).join("\n")}\n`);
  }, 1000).unref();
}
const hour = 3_600_000;
const baseHour = Math.floor(Date.now() / hour) * hour;
let reportSeq = 0;

const sims: Sim[] = pki.identities.slice(config.from, config.to).map((identity, index) => {
  const outbox = openOutbox({
    path: config.outboxDir ? join(config.outboxDir, `outbox-${config.from + index}.db`) : ":memory:",
    maxRows: 1_000_000,
  });
  const sim: Sim = {
    clusterId: identity.clusterId,
    outbox,
    revision: 0,
    appliedAt: new Map(),
    markConnects: 0,
    reconnectedAt: null,
    resyncedAt: null,
    link: null as unknown as OperatorLink,
  };
  sim.link = createOperatorLink({
    clusterId: identity.clusterId,
    brokerUrl: `mqtts://127.0.0.1:${config.port}`,
    tls: () => ({ caPem: pki.caPem, certPem: identity.certPem, keyPem: pki.clientKeyPem }),
    outbox,
    applier: {
      apply: async (change) => {
        sim.appliedAt.set(change.revision, Date.now());
        sim.link.report("status", {
          objectKind: "tenant",
          key: change.key,
          observedGeneration: change.revision,
          phase: "Deployed",
          revision: change.revision,
        });
      },
      applySnapshot: async () => undefined,
    },
    revisions: {
      get: async () => sim.revision,
      set: async (next) => {
        sim.revision = next;
      },
    },
    commands: async () => ({ ok: true }),
    hello: async () => ({ operatorVersion: "bench", kubernetesVersion: null, capabilities: {} }),
    logger,
    heartbeatIntervalMs: config.heartbeatIntervalMs ?? 10_000,
    keepaliveSeconds: config.keepaliveSeconds ?? 30,
    flushIntervalMs: config.flushIntervalMs ?? 250,
    ...(config.backoff ? { backoff: config.backoff } : {}),
  });
  return sim;
});

/**
 * Polls every sim until `done` holds for all of them or the time is up. The poll is the generator's own
 * overhead, taken from the machine the Manager runs on: `everyMs` 5 for latency measures, longer where
 * seconds are measured (a storm's 625 sims per process polled every 5 ms were ~19% of the generator's CPU).
 */
async function until(
  done: (sim: Sim, index: number) => boolean,
  timeoutMs: number,
  onTick?: () => void,
  everyMs = 5,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    onTick?.();
    if (sims.every((sim, index) => done(sim, index))) return true;
    await Bun.sleep(everyMs);
  }
  return false;
}

/**
 * The i-th usage report of a simulated operator: what a cluster with 50 tenants sends over its last hours — one
 * report per tenant per hour, recent enough to be regular rows (not adjustments of closed periods, not quarantined
 * as too old), so the Manager does the work production does (the unique window index included).
 */
function usage(i: number, index: number) {
  const start = baseHour - (1 + (Math.floor(i / 50) % 40)) * hour;
  return {
    tenant: `t${(i + index) % 50}`,
    windowStart: new Date(start).toISOString(),
    windowEnd: new Date(start + hour).toISOString(),
    metrics: {
      cpuRequestMillicores: 100 * (i % 7),
      memoryRequestBytes: 1 << 20,
      storageBytes: 0,
      loadBalancers: 0,
      pods: i % 9,
      namespaces: 2,
      applications: 1,
      quotaViolations: 0,
    },
    byProject: {},
  };
}

send({ type: "ready", pid: process.pid, count: sims.length });

await serveCommands(async (command) => {
  switch (command.cmd) {
    case "start": {
      // `concurrency`: at most this many links started but not yet connected at once (as the raw baseline's
      // bounded handshakes); without it every link starts at once and only its own backoff spreads them.
      const concurrency = Number(command.concurrency ?? 0);
      if (!(concurrency > 0)) {
        for (const sim of sims) sim.link.start();
        return {};
      }
      void (async () => {
        let started = 0;
        while (started < sims.length) {
          let connecting = 0;
          for (let i = 0; i < started; i++) if (!sims[i]!.link.stats().connected) connecting++;
          while (connecting < concurrency && started < sims.length) {
            sims[started++]!.link.start();
            connecting++;
          }
          await Bun.sleep(10);
        }
      })();
      return {};
    }
    case "waitConnected": {
      const t0 = Date.now();
      const connectedAt: number[] = new Array(sims.length).fill(0);
      const ok = await until(
        (sim) => sim.link.stats().connected,
        command.timeoutMs ?? 60_000,
        () => {
          const now = Date.now();
          sims.forEach((sim, i) => {
            if (connectedAt[i] === 0 && sim.link.stats().connected) connectedAt[i] = now;
          });
        },
        20,
      );
      return { ok, t0, connectedAt, connected: sims.filter((s) => s.link.stats().connected).length };
    }
    case "mark":
      for (const sim of sims) {
        sim.markConnects = sim.link.stats().connects;
        sim.reconnectedAt = null;
        sim.resyncedAt = null;
      }
      return {};
    case "waitResynced": {
      const revision = command.revision as number;
      // Only the sims not yet resynced are polled, every 50 ms: polling all 2,500 of a process every 20 ms was
      // ~11% of a generator's CPU during the storm (docs/benchmarks.md, eighth pass), taken from the Manager.
      let pending = sims;
      const ok = await until(
        () => pending.length === 0,
        command.timeoutMs ?? 120_000,
        () => {
          const now = Date.now();
          pending = pending.filter((sim) => {
            if (sim.reconnectedAt === null) {
              const stats = sim.link.stats();
              if (stats.connected && stats.connects > sim.markConnects) sim.reconnectedAt = now;
            }
            if (sim.resyncedAt === null && sim.reconnectedAt !== null && sim.revision >= revision)
              sim.resyncedAt = now;
            return sim.resyncedAt === null || sim.reconnectedAt === null;
          });
        },
        50,
      );
      return {
        ok,
        reconnectedAt: sims.map((s) => s.reconnectedAt),
        resyncedAt: sims.map((s) => s.resyncedAt),
        connects: sims.reduce((a, s) => a + s.link.stats().connects, 0),
      };
    }
    case "report": {
      const count = command.count as number;
      const t0 = Date.now();
      for (const [index, sim] of sims.entries()) {
        if (command.batch) {
          // One usage collection's reports in one outbox transaction, as `reportMany` offers the collector.
          const bodies = Array.from({ length: count }, (_, i) => ({ body: usage(reportSeq + i, index) }));
          sim.link.reportMany("usage", bodies);
        } else {
          for (let i = 0; i < count; i++) sim.link.report("usage", usage(reportSeq + i, index));
        }
      }
      reportSeq += count;
      const ok = await until((sim) => sim.outbox.stats().pending === 0, command.timeoutMs ?? 120_000);
      const t1 = Date.now();
      // Acked rows the outboxes delete in batches: deleted now, so their cost is inside the measured CPU.
      for (const sim of sims) sim.outbox.compact();
      return { ok, t0, t1, reports: count * sims.length };
    }
    case "waitApplied": {
      const revision = command.revision as number;
      const ackedAt: number[] = new Array(sims.length).fill(0);
      const ok = await until(
        (sim, i) => sim.appliedAt.has(revision) && ackedAt[i] !== 0,
        command.timeoutMs ?? 60_000,
        () => {
          const now = Date.now();
          sims.forEach((sim, i) => {
            if (ackedAt[i] === 0 && sim.appliedAt.has(revision) && sim.outbox.stats().pending === 0)
              ackedAt[i] = now;
          });
        },
      );
      return { ok, appliedAt: sims.map((s) => s.appliedAt.get(revision) ?? 0), ackedAt };
    }
    case "exit":
      await Promise.all(sims.map((s) => s.link.stop().catch(() => undefined)));
      return {};
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
