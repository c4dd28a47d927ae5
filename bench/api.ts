/**
 * @module bench/api — authenticated API GETs (a tenant, an app list) through the Manager's Hono app with a
 * tenant-scoped JWT, against a bare `Bun.serve` JSON handler, both at 50 concurrent keep-alive connections.
 */
import { join } from "node:path";
import { cpuWindow, fmt, printTable, smoke, spawnChild, tempDir } from "./lib.ts";

async function load(mode: "bare" | "app", dbPath: string) {
  const server = spawnChild("api-server", { mode, dbPath, apps: smoke ? 5 : 50 });
  const ready = await server.next<{ port: number; token: string }>("ready", 60_000);
  const generator = spawnChild("http-load", { url: `http://127.0.0.1:${ready.port}`, token: ready.token });
  await generator.next("ready");
  const paths = ["/api/v1/tenants/acme", "/api/v1/tenants/acme/projects/web/apps"];
  const command = { cmd: "load", paths, connections: 50 };
  await generator.request({ ...command, durationMs: smoke ? 200 : 2000, maxRequests: 1e6 }, 60_000); // warm-up
  const cpu = cpuWindow(() => [generator.pid]);
  const result = await generator.request<{
    perSecond: number;
    p50: number;
    p99: number;
    errors: number;
    requests: number;
  }>({ ...command, durationMs: smoke ? 1000 : 10_000, maxRequests: 2_000_000 }, 60_000);
  const share = cpu.finish().share;
  await generator.kill();
  await server.kill();
  return { ...result, share };
}

export async function run(): Promise<void> {
  const dir = await tempDir("kn-bench-api-");
  const bare = await load("bare", join(dir.path, "bare.db"));
  const app = await load("app", join(dir.path, "m.db"));
  await dir.remove();
  const ratio = app.perSecond / bare.perSecond;
  printTable(
    "api",
    [
      {
        measure: "authenticated GETs (tenant, app list), 50 connections",
        baseline: `${fmt.n(bare.perSecond)} req/s bare Bun.serve`,
        value: `${fmt.n(app.perSecond)} req/s, p99 ${fmt.ms(app.p99)}`,
        ratio: fmt.x(ratio),
        target: "≥ 0.5× and p99 ≤ 5 ms",
        pass: app.errors === 0 && ratio >= 0.5 && app.p99 <= 5,
        generatorCpuShare: app.share,
        notes: `bare p99 ${fmt.ms(bare.p99)}, generator CPU share on bare ${(bare.share * 100).toFixed(0)}%`,
      },
    ],
    { bare, app },
  );
}

if (import.meta.main) await run();
