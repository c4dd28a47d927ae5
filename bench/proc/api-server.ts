/**
 * @module bench/proc/api-server — the API server side of bench/api: mode "bare" is `Bun.serve` answering a
 * fixed JSON body; mode "app" is the Manager's Hono app (auth, routes, store) over a seeded SQLite file store.
 */
import "reflect-metadata";
import { createWriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier } from "../../manager/auth/verifier.ts";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { createApp } from "../../manager/http/app.ts";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { batchedSink, createLogger } from "../../shared/logger.ts";
import { childConfig, send, serveCommands } from "../lib.ts";

const SECRET = "kubenova-bench-secret-that-is-long-enough-0123456789";
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
  const accessLog = createWriteStream(join(dirname(config.dbPath), "access.log"));
  const logger = createLogger({ level: "info", sink: batchedSink((text) => accessLog.write(text)) });
  const store = await openSqliteStore({ path: config.dbPath, logger });
  await store.migrate();
  const common = { issuer: "kubenova", audience: "kubenova-api" };
  const signer = createTokenSigner({ ...common, algorithm: "HS256", secret: SECRET });
  const verifier = createTokenVerifier({ ...common, algorithm: "HS256", secret: SECRET });
  const app = createApp({
    store,
    secrets: createEnvelope(
      createKeyring({ keys: [{ id: "k", key: new Uint8Array(32).fill(7) }], activeKeyId: "k" }),
    ),
    clock: () => new Date(),
    logger,
    verifier,
    signer,
    enrolment: {
      ca: await createCertificateAuthority({}),
      settings: {
        managerUrl: "https://manager.bench",
        brokerUrl: "mqtts://broker.bench:8883",
        bootstrapTokenTtlSeconds: 3600,
        clientCertLifetimeSeconds: 86400,
        operatorImage: "kubenova/kubenova:bench",
      },
    },
    options: { bodyLimitBytes: 64 * 1024, insecureDevAuth: false, version: "bench" },
  });
  const admin = (await signer.sign({ subject: "bench", role: "admin", ttlSeconds: 3600 })).token;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  };
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
