/**
 * @module bench/channel — shared set-up for the channel benchmarks: a server process (Manager or bare Aedes or
 * bare TLS) and generator processes hosting simulated operators or raw clients.
 */
import { type Child, ranges, spawnChild, tempDir } from "./lib.ts";

export async function startServer(config: {
  mode: "manager" | "aedes" | "tls";
  pkiPath: string;
  count: number;
  port?: number;
  dbPath?: string;
  heartbeatIntervalMs?: number;
}): Promise<{ child: Child; port: number }> {
  const child = spawnChild("manager", { port: 0, ...config });
  const ready = await child.next<{ port: number }>("ready", 120_000);
  return { child, port: ready.port };
}

/** `processes` generator processes, each hosting a contiguous slice of `count` simulated operators. */
export async function startOperators(options: {
  pkiPath: string;
  count: number;
  processes: number;
  port: number;
  outboxes: "files" | "memory";
  heartbeatIntervalMs?: number;
  flushIntervalMs?: number;
}): Promise<{
  children: Child[];
  all<T>(command: Record<string, unknown>, timeoutMs?: number): Promise<T[]>;
  close(): Promise<void>;
}> {
  const dir = options.outboxes === "files" ? await tempDir("kn-bench-outbox-") : null;
  const children = ranges(options.count, options.processes).map(([from, to]) =>
    spawnChild("operators", {
      pkiPath: options.pkiPath,
      from,
      to,
      port: options.port,
      outboxDir: dir?.path ?? null,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 10_000,
      flushIntervalMs: options.flushIntervalMs ?? 250,
    }),
  );
  await Promise.all(children.map((c) => c.next("ready", 120_000)));
  return {
    children,
    all: <T>(command: Record<string, unknown>, timeoutMs?: number) =>
      Promise.all(children.map((c) => c.request<T>(command, timeoutMs))),
    async close() {
      await Promise.all(children.map((c) => c.kill()));
      await dir?.remove();
    },
  };
}

export async function startRawClients(options: {
  pkiPath: string;
  count: number;
  processes: number;
  port: number;
}): Promise<{ children: Child[]; close(): Promise<void> }> {
  const children = ranges(options.count, options.processes).map(([from, to]) =>
    spawnChild("raw-clients", { pkiPath: options.pkiPath, from, to, port: options.port }),
  );
  await Promise.all(children.map((c) => c.next("ready", 120_000)));
  return {
    children,
    async close() {
      await Promise.all(children.map((c) => c.kill()));
    },
  };
}
