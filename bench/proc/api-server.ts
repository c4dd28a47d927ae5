/**
 * @module bench/proc/api-server — the API server side of bench/api: mode "bare" is `Bun.serve` answering the
 * given bodies per path; mode "app" is the Manager's Hono app (auth, routes, store) over a seeded SQLite file.
 */
import "reflect-metadata";
import { openSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { batchedSink, createLogger } from "../../shared/logger.ts";
import { childConfig, send, serveCommands } from "../lib.ts";
import { openBenchApp } from "./bench-app.ts";

const config = childConfig<{
  mode: "bare" | "app";
  dbPath: string;
  apps?: number;
  /** mode bare: the body to answer for each path. */
  bodies?: Record<string, string>;
}>();
let token = "";
let server: ReturnType<typeof Bun.serve>;

if (config.mode === "bare") {
  const bodies = new Map(Object.entries(config.bodies ?? {}));
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request) =>
      new Response(bodies.get(new URL(request.url).pathname) ?? "{}", {
        headers: { "content-type": "application/json" },
      }),
  });
} else {
  // As in production: an access line per request at level info (stdout there; a file here, stdout is our pipe).
  // One write(2) per event-loop turn, as the Manager's batched stdout sink does (a Node write stream here cost
  // ~10% of the server's CPU in buffers and callbacks, more than the logging itself).
  const accessLog = openSync(join(dirname(config.dbPath), "access.log"), "a");
  const logger = createLogger({ level: "info", sink: batchedSink((text) => writeSync(accessLog, text)) });
  const { app, signer, call } = await openBenchApp(config.dbPath, logger);
  await call("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" });
  await call("POST", "/api/v1/plans", { name: "gold", quotas: { cpu: "4", memory: "8Gi", pods: 50 } });
  await call("POST", "/api/v1/tenants", { name: "acme", plan: "gold", owners: ["alice"], clusters: ["dc1"] });
  await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
  for (let i = 0; i < (config.apps ?? 0); i++) {
    await call("POST", "/api/v1/tenants/acme/projects/web/apps", {
      name: `app-${i}`,
      spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1.27" } }] },
    });
  }
  // The caller is the tenant's owner: a tenant-scoped token, checked on every route (DESIGN.md §4).
  token = (await signer.sign({ subject: "alice", role: "tenantOwner", tenant: "acme", ttlSeconds: 3600 }))
    .token;
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
}

send({ type: "ready", port: server.port, token, pid: process.pid });
await serveCommands(async () => ({}));
