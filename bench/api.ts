/**
 * @module bench/api — authenticated API GETs (a tenant, an app list) through the Manager's Hono app with a
 * tenant-scoped JWT, against a bare `Bun.serve` JSON handler, both at 50 concurrent keep-alive connections.
 */
import { join } from "node:path";
import { type Child, cpuWindow, fmt, printTable, smoke, spawnChild, tempDir } from "./lib.ts";

const paths = ["/api/v1/tenants/acme", "/api/v1/tenants/acme/projects/web/apps"];

async function load(server: Child, ready: { port: number; token: string }) {
  const generator = spawnChild("http-load", { url: `http://127.0.0.1:${ready.port}`, token: ready.token });
  await generator.next("ready");
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
  const appServer = spawnChild("api-server", {
    mode: "app",
    dbPath: join(dir.path, "m.db"),
    apps: smoke ? 5 : 50,
  });
  const appReady = await appServer.next<{ port: number; token: string }>("ready", 60_000);
  // The baseline answers the same paths with the very bytes the Manager sends, so the ratio is the cost of
  // the Manager's work (auth, routing, validation, store, logging), not of moving bigger bodies.
  const bodies: Record<string, string> = {};
  for (const path of paths) {
    const res = await fetch(`http://127.0.0.1:${appReady.port}${path}`, {
      headers: { authorization: `Bearer ${appReady.token}` },
    });
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    bodies[path] = await res.text();
  }
  const app = await load(appServer, appReady);
  const bareServer = spawnChild("api-server", { mode: "bare", dbPath: join(dir.path, "bare.db"), bodies });
  const bare = await load(
    bareServer,
    await bareServer.next<{ port: number; token: string }>("ready", 60_000),
  );
  await dir.remove();
  const ratio = app.perSecond / bare.perSecond;
  printTable(
    "api",
    [
      {
        measure: "authenticated GETs (tenant, app list), 50 connections",
        baseline: `${fmt.n(bare.perSecond)} req/s bare Bun.serve, same bodies`,
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
