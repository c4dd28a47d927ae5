/**
 * `bun run demo`: a Manager on its embedded defaults plus two operators for two datacenters, each against its
 * own SIMULATED cluster — the in-memory Kubernetes API server from the test suite, with its Capsule and KubeVela
 * controller simulations switched on (tests/kube-api/README.md says what they do and do not emulate). It prints
 * the dashboard URL and an admin token, seeds a plan, a tenant on both clusters and an app, and runs until Ctrl-C.
 */
import "reflect-metadata";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { loadTokenKeys, startManager } from "../../manager/main.ts";
import { runOperator } from "../../operator/main.ts";
import { parseManagerConfig, parseOperatorConfig } from "../../shared/config.ts";
import { createLogger } from "../../shared/logger.ts";
import { startKubeApiServer } from "../kube-api/server.ts";

const dataDir = process.env.KUBENOVA_DATA_DIR ?? join(process.cwd(), "data", "demo");
const fresh = !process.argv.includes("--keep");
if (fresh) await rm(dataDir, { recursive: true, force: true });
await mkdir(dataDir, { recursive: true });
const logger = createLogger({ level: (process.env.KUBENOVA_LOG_LEVEL as "info" | undefined) ?? "warn" });
const say = (line = "") => process.stdout.write(`${line}\n`);

const config = parseManagerConfig({
  ...process.env,
  KUBENOVA_DATA_DIR: dataDir,
  KUBENOVA_HTTP_PORT: process.env.KUBENOVA_HTTP_PORT ?? "8080",
  KUBENOVA_MQTT_PORT: process.env.KUBENOVA_MQTT_PORT ?? "0",
});
const manager = await startManager(config, logger);
const { signer } = await loadTokenKeys(config, logger);
const admin = (await signer!.sign({ subject: "demo-admin", role: "admin", ttlSeconds: 12 * 3600 })).token;
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${manager.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${admin}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
};

const clusters = [
  { name: "fra1", datacenter: "frankfurt" },
  { name: "ams1", datacenter: "amsterdam" },
];
const stops: Array<() => Promise<void>> = [];
for (const cluster of clusters) {
  const kube = await startKubeApiServer({
    namespaces: ["kubenova-system"],
    simulations: { capsule: true, kubevela: true },
  });
  const kubeconfigPath = join(dataDir, `${cluster.name}.kubeconfig`);
  kube.writeKubeconfig(kubeconfigPath);
  const registered = await api("POST", "/api/v1/clusters", {
    ...cluster,
    labels: { simulated: "true" },
    capsuleProxyUrl: kube.url, // the simulated API server stands in for capsule-proxy
  });
  const operator = await runOperator(
    parseOperatorConfig({
      NOVA_MANAGER_URL: manager.url,
      NOVA_CLUSTER_ID: registered.cluster.id,
      NOVA_CLUSTER_NAME: cluster.name,
      NOVA_BOOTSTRAP_TOKEN: registered.bootstrap.token,
      NOVA_DATA_DIR: join(dataDir, `operator-${cluster.name}`),
      KUBECONFIG: kubeconfigPath,
      NOVA_HEALTH_HOST: "127.0.0.1",
      NOVA_HEALTH_PORT: "0",
      NOVA_HEARTBEAT_INTERVAL_MS: "2000",
      KUBENOVA_LOG_LEVEL: "warn",
    }),
    logger.child({ cluster: cluster.name }),
  );
  stops.push(async () => {
    await operator.stop();
    await kube.close();
  });
  say(
    `simulated cluster ${cluster.name} (${cluster.datacenter}): ${kube.url}  kubeconfig: ${kubeconfigPath}`,
  );
}

await api("POST", "/api/v1/plans", {
  name: "default",
  displayName: "Default",
  quotas: { cpu: "8", memory: "16Gi", pods: 100, namespaces: 10 },
  allowLoadBalancers: false,
});
await api("POST", "/api/v1/tenants", {
  name: "acme",
  displayName: "ACME Corp",
  owners: ["alice"],
  clusters: ["fra1", "ams1"],
});
await api("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "fra1" });
await api("POST", "/api/v1/tenants/acme/projects/web/apps", {
  name: "site",
  spec: {
    components: [{ name: "frontend", type: "webservice", properties: { image: "nginx:1.27", port: 80 } }],
  },
});

say();
say(
  "KubeNova demo — two SIMULATED clusters (in-memory Kubernetes API servers with Capsule/KubeVela simulations)",
);
say(`  dashboard:  ${manager.url}/ui`);
say(`  API docs:   ${manager.url}/docs`);
say(`  admin token (12 h):\n${admin}`);
say();
say(
  'Try:  curl -H "Authorization: Bearer $TOKEN" ' +
    `${manager.url}/api/v1/tenants/acme/projects/web/apps/site/status`,
);
say("Ctrl-C stops everything.");

const shutdown = async () => {
  for (const stop of stops) await stop().catch(() => undefined);
  await manager.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());
