/**
 * @module bench/lib — shared helpers for the benchmark scripts: arguments, child processes that talk JSON lines,
 * CPU and memory accounting, percentiles, log-log fits and the result table every measure prints.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BENCH_DIR = import.meta.dir;
export const smoke = process.argv.includes("--smoke");

export interface ResultRow {
  measure: string;
  baseline: string;
  value: string;
  ratio: string;
  target: string;
  pass: boolean | null;
  /** Share of all CPU time on the machine used by the load generator processes during the measurement. */
  generatorCpuShare: number | null;
  notes?: string;
}

/** Prints the table and a machine-readable line (`BENCH_RESULT {...}`) that run.ts and the smoke test read. */
export function printTable(name: string, rows: ResultRow[], absolute: Record<string, unknown>): void {
  const header = ["measure", "baseline", "value", "ratio", "target", "pass", "gen CPU"];
  const lines = rows.map((r) => [
    r.measure,
    r.baseline,
    r.value,
    r.ratio,
    r.target,
    r.pass === null ? "n/a" : r.pass ? "PASS" : "FAIL",
    r.generatorCpuShare === null ? "–" : `${(r.generatorCpuShare * 100).toFixed(0)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log(`\n## ${name}${smoke ? " (smoke sizes — targets meaningless)" : ""}`);
  console.log(fmt(header));
  console.log(fmt(widths.map((w) => "-".repeat(w))));
  for (const l of lines) console.log(fmt(l));
  for (const r of rows) if (r.notes) console.log(`  ${r.measure}: ${r.notes}`);
  console.log(`  absolute: ${JSON.stringify(absolute)}`);
  console.log(`BENCH_RESULT ${JSON.stringify({ name, smoke, rows, absolute })}`);
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
export function systemCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const total = fields.reduce((a, b) => a + b, 0);
  // USER_HZ is 100 on Linux: one jiffy is 10 ms.
  return { busyMs: (total - idle) * 10, totalMs: total * 10 };
}

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0);
  return kb * 1024;
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** Least-squares slope of log(cost) against log(size): the growth exponent. */
export function fitExponent(points: Array<{ size: number; cost: number }>): number {
  const xs = points.map((p) => Math.log(p.size));
  const ys = points.map((p) => Math.log(Math.max(p.cost, 1e-9)));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

export const fmt = {
  n: (v: number, digits = 0) => v.toLocaleString("en-US", { maximumFractionDigits: digits }),
  ms: (v: number) => `${v.toFixed(1)} ms`,
  kb: (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`,
  mb: (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`,
  x: (v: number) => `${v.toFixed(2)}×`,
};

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A bench child process: JSON lines out (stdout), JSON commands in (stdin). */
export interface Child {
  pid: number;
  /** Sends a command and waits for the first message of type `${type}` (or `reply`) after it. */
  request<T = any>(command: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Waits for the next message of this type. */
  next<T = any>(type: string, timeoutMs?: number): Promise<T>;
  kill(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
  exited: Promise<number>;
  stderr(): string;
}

/**
 * `BENCH_CPU_PROF=<dir>` profiles the children (`bun --cpu-prof`), one `.cpuprofile` per child in `<dir>`;
 * `BENCH_CPU_PROF_ONLY=manager,operators` limits it to those scripts. A profiled child is asked to exit (the
 * profile is written on exit) instead of being killed.
 */
const cpuProfDir = process.env.BENCH_CPU_PROF || null;
const cpuProfOnly = process.env.BENCH_CPU_PROF_ONLY?.split(",").filter(Boolean) ?? null;

/** Spawns `bun bench/proc/<script>.ts` with a JSON config in the environment. */
export function spawnChild(script: string, config: Record<string, unknown>): Child {
  const profiled = cpuProfDir !== null && (cpuProfOnly === null || cpuProfOnly.includes(script));
  const profFlags = profiled
    ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${script}-${Date.now()}.cpuprofile`]
    : [];
  // Simulated operators load mqtt.js as `kubenova operator` does (operator/mqtt-deps.ts, before anything else).
  const preload =
    script === "operators" ? ["--preload", join(BENCH_DIR, "..", "operator", "mqtt-deps.ts")] : [];
  const proc = Bun.spawn(["bun", ...profFlags, ...preload, join(BENCH_DIR, "proc", `${script}.ts`)], {
    env: { ...process.env, BENCH_CONFIG: JSON.stringify(config) },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const queue: Array<Record<string, any>> = [];
  const waiters: Array<{ type: string; resolve: (v: any) => void }> = [];
  let errText = "";
  let dead = false;
  const deliver = (message: Record<string, any>) => {
    const index = waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) waiters.splice(index, 1)[0]!.resolve(message);
    else queue.push(message);
  };
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      buffer += decoder.decode(chunk);
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith("{")) deliver(JSON.parse(line));
        nl = buffer.indexOf("\n");
      }
    }
  })();
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      errText = (errText + decoder.decode(chunk)).slice(-20_000);
    }
  })();
  const exited = proc.exited.then((code) => {
    dead = true;
    return code;
  });
  const next = <T>(type: string, timeoutMs = 60_000) =>
    new Promise<T>((resolve, reject) => {
      const index = queue.findIndex((m) => m.type === type);
      if (index >= 0) {
        resolve(queue.splice(index, 1)[0] as T);
        return;
      }
      if (dead) {
        reject(new Error(`${script} exited; stderr: ${errText.slice(-2000)}`));
        return;
      }
      const timer = setTimeout(() => {
        reject(new Error(`${script}: no '${type}' within ${timeoutMs} ms; stderr: ${errText.slice(-2000)}`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (v: T) => {
          clearTimeout(timer);
          resolve(v);
        },
      };
      waiters.push(waiter);
      void exited.then(() => {
        const i = waiters.indexOf(waiter);
        if (i < 0) return;
        waiters.splice(i, 1);
        clearTimeout(timer);
        reject(new Error(`${script} exited; stderr: ${errText.slice(-2000)}`));
      });
    });
  return {
    pid: proc.pid,
    next,
    async request(command, timeoutMs) {
      const sink = proc.stdin as import("bun").FileSink;
      sink.write(`${JSON.stringify(command)}\n`);
      await sink.flush();
      return next(`${String(command.cmd)}:done`, timeoutMs);
    },
    async kill(signal = "SIGKILL") {
      if (dead) return;
      if (profiled) {
        (proc.stdin as import("bun").FileSink).write(`${JSON.stringify({ cmd: "exit" })}\n`);
        await Promise.race([exited, Bun.sleep(10_000)]);
        if (dead) return;
      }
      proc.kill(signal);
      await exited;
    },
    exited,
    stderr: () => errText,
  };
}

/** In a child: sends one JSON message to the coordinator. */
export function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** In a child: the config the coordinator passed. */
export function childConfig<T>(): T {
  return JSON.parse(process.env.BENCH_CONFIG ?? "{}") as T;
}

/** In a child: runs `handler` for each command line on stdin; replies `${cmd}:done` with its result. */
export async function serveCommands(
  handler: (command: Record<string, any>) => Promise<Record<string, unknown> | undefined>,
): Promise<void> {
  for await (const line of console) {
    if (!line.trim()) continue;
    const command = JSON.parse(line) as Record<string, any>;
    try {
      const result = (await handler(command)) ?? {};
      send({ type: `${command.cmd}:done`, ...result });
    } catch (error) {
      send({ type: `${command.cmd}:done`, error: String((error as Error).stack ?? error) });
    }
    if (command.cmd === "exit") process.exit(0);
  }
  process.exit(0);
}

/** Measures generator CPU share over a window: generators' own CPU vs. the whole machine's busy CPU. */
export function cpuWindow(generatorPids: () => number[]) {
  const sys0 = systemCpu();
  const pids = generatorPids();
  const gen0 = new Map(pids.map((pid) => [pid, safeCpu(pid)]));
  return {
    finish() {
      const sys1 = systemCpu();
      let gen = 0;
      for (const [pid, start] of gen0) gen += safeCpu(pid) - start;
      const busy = sys1.busyMs - sys0.busyMs;
      const wall = sys1.totalMs - sys0.totalMs;
      return {
        generatorCpuMs: gen,
        systemBusyMs: busy,
        share: busy > 0 ? Math.min(1, gen / busy) : 0,
        machineUtilisation: wall > 0 ? busy / wall : 0,
      };
    },
  };
}

function safeCpu(pid: number): number {
  try {
    return cpuMsOf(pid);
  } catch {
    return 0;
  }
}

/** Splits `count` items into `parts` contiguous ranges. */
export function ranges(count: number, parts: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const size = Math.ceil(count / parts);
  for (let from = 0; from < count; from += size) out.push([from, Math.min(count, from + size)]);
  return out;
}
