/**
 * Prometheus metrics of the operator (DESIGN.md §8) in the text exposition format 0.0.4, written here rather
 * than with prom-client: the operator has six metrics and a few process gauges, and prom-client's import and
 * default collectors cost ~8 MB of RSS in a process whose budget is 60 MB (docs/benchmarks.md).
 */
import { readdirSync, readFileSync } from "node:fs";
import type { ReconcileOutcome } from "./reconcilers/runtime.ts";

export interface OperatorMetrics {
  observeReconcile(controller: string, seconds: number, outcome: ReconcileOutcome): void;
  event(kind: string): void;
  adapterError(adapter: string): void;
  setSources(sources: {
    outbox?: () => { pending: number; shedEvents: number };
    connected?: () => boolean;
  }): void;
  render(): Promise<string>;
  contentType: string;
}

const PROCESS_PREFIX = "kubenova_operator_";
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Labels = Record<string, string>;

const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
};
const numberText = (value: number) =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value);
const header = (name: string, help: string, type: string) =>
  `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;

/** A counter family keyed by its label values. */
function counter(name: string, help: string) {
  const series = new Map<string, { labels: Labels; value: number }>();
  return {
    inc(labels: Labels) {
      const key = labelText(labels);
      const entry = series.get(key);
      if (entry) entry.value++;
      else series.set(key, { labels, value: 1 });
    },
    render: () =>
      header(name, help, "counter") +
      [...series.values()].map((s) => `${name}${labelText(s.labels)} ${numberText(s.value)}\n`).join(""),
  };
}

/** A histogram family with fixed buckets, keyed by its label values. */
function histogram(name: string, help: string, buckets: number[]) {
  const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  return {
    observe(labels: Labels, value: number) {
      const key = labelText(labels);
      let entry = series.get(key);
      if (!entry) {
        entry = { labels, counts: buckets.map(() => 0), sum: 0, count: 0 };
        series.set(key, entry);
      }
      for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) entry.counts[i]!++;
      entry.sum += value;
      entry.count++;
    },
    render() {
      let out = header(name, help, "histogram");
      for (const s of series.values()) {
        buckets.forEach((le, i) => {
          out += `${name}_bucket${labelText({ ...s.labels, le: numberText(le) })} ${s.counts[i]}\n`;
        });
        out += `${name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}\n`;
        out += `${name}_sum${labelText(s.labels)} ${numberText(s.sum)}\n`;
        out += `${name}_count${labelText(s.labels)} ${s.count}\n`;
      }
      return out;
    },
  };
}

const gauge = (name: string, help: string, value: number | undefined) =>
  value === undefined ? "" : `${header(name, help, "gauge")}${name} ${numberText(value)}\n`;

/** The usual process gauges (the names prom-client's default collectors use), read at scrape time. */
function processMetrics(startedAtSeconds: number): string {
  const p = PROCESS_PREFIX;
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  let virtualBytes: number | undefined;
  let openFds: number | undefined;
  let maxFds: number | undefined;
  try {
    const kb = /VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (kb) virtualBytes = Number(kb) * 1024;
    openFds = readdirSync("/proc/self/fd").length;
    const limit = /Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
    if (limit) maxFds = Number(limit);
  } catch {
    // not Linux: those gauges are left out, as prom-client does
  }
  return [
    `${header(`${p}process_cpu_user_seconds_total`, "Total user CPU time spent in seconds.", "counter")}${p}process_cpu_user_seconds_total ${cpu.user / 1e6}\n`,
    `${header(`${p}process_cpu_system_seconds_total`, "Total system CPU time spent in seconds.", "counter")}${p}process_cpu_system_seconds_total ${cpu.system / 1e6}\n`,
    `${header(`${p}process_cpu_seconds_total`, "Total user and system CPU time spent in seconds.", "counter")}${p}process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}\n`,
    gauge(
      `${p}process_start_time_seconds`,
      "Start time of the process since unix epoch in seconds.",
      startedAtSeconds,
    ),
    gauge(`${p}process_resident_memory_bytes`, "Resident memory size in bytes.", memory.rss),
    gauge(`${p}process_virtual_memory_bytes`, "Virtual memory size in bytes.", virtualBytes),
    gauge(`${p}process_heap_bytes`, "Process heap size in bytes.", memory.heapTotal),
    gauge(`${p}process_open_fds`, "Number of open file descriptors.", openFds),
    gauge(`${p}process_max_fds`, "Maximum number of open file descriptors.", maxFds),
    gauge(
      `${p}nodejs_heap_size_total_bytes`,
      "Process heap size from the runtime in bytes.",
      memory.heapTotal,
    ),
    gauge(
      `${p}nodejs_heap_size_used_bytes`,
      "Process heap size used from the runtime in bytes.",
      memory.heapUsed,
    ),
    gauge(`${p}nodejs_external_memory_bytes`, "Runtime external memory size in bytes.", memory.external),
    `${header(`${p}nodejs_version_info`, "Runtime version info.", "gauge")}${p}nodejs_version_info${labelText({ version: process.version, bun: Bun.version })} 1\n`,
  ].join("");
}

export function createOperatorMetrics(): OperatorMetrics {
  const startedAtSeconds = Math.round(Date.now() / 1000 - process.uptime());
  let sources: { outbox?: () => { pending: number; shedEvents: number }; connected?: () => boolean } = {};
  const reconcile = histogram(
    "kubenova_reconcile_seconds",
    "Reconcile duration by controller and outcome",
    RECONCILE_BUCKETS,
  );
  const events = counter(
    "kubenova_events_total",
    "Operator events by kind (reports queued, drift repaired, …)",
  );
  const adapterErrors = counter(
    "kubenova_adapter_errors_total",
    "Failures talking to a dependency, by adapter",
  );
  return {
    observeReconcile: (controller, seconds, outcome) => reconcile.observe({ controller, outcome }, seconds),
    event: (kind) => events.inc({ kind }),
    adapterError: (adapter) => adapterErrors.inc({ adapter }),
    setSources(next) {
      sources = next;
    },
    async render() {
      const outbox = sources.outbox?.();
      const connected = sources.connected?.();
      return [
        processMetrics(startedAtSeconds),
        reconcile.render(),
        events.render(),
        adapterErrors.render(),
        gauge(
          "kubenova_outbox_pending",
          "Reports waiting in the outbox for the Manager's ack",
          outbox?.pending ?? 0,
        ),
        gauge(
          "kubenova_outbox_shed_events",
          "Events shed because the outbox was full (since the outbox was created)",
          outbox?.shedEvents ?? 0,
        ),
        gauge("kubenova_manager_connected", "1 while the link to the Manager is up", connected ? 1 : 0),
      ].join("");
    },
    contentType: "text/plain; version=0.0.4; charset=utf-8",
  };
}
