/**
 * Through the REST API only, with a Manager process and a `kubenova operator` process against its own in-memory
 * API server (Capsule and KubeVela simulated): a tenant becomes a Capsule Tenant with its namespaces and accounts,
 * an app becomes a KubeVela Application that reaches `Deployed`, suspend/rollback reach the cluster, and the
 * kubeconfigs the Manager hands out work against that API server — read-only cannot write.
 */
import { afterAll, expect, test } from "bun:test";
import { createOperatorProcess, startManagerProcess, tempDir, waitUntil } from "./harness.ts";

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const SPEC = (image: string) => ({
  components: [{ name: "web", type: "webservice", properties: { image, port: 80 } }],
});

test("tenant, project, app, status, suspend, rollback and kubeconfigs end to end", async () => {
  const dir = await tempDir("kn-e2e-flow-");
  cleanups.push(dir.remove);
  const manager = await startManagerProcess(`${dir.path}/manager`);
  cleanups.push(() => manager.kill("SIGKILL"));
  const registered = await manager.api("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" });
  const operator = await createOperatorProcess({
    manager,
    clusterId: registered.body.cluster.id,
    bootstrapToken: registered.body.bootstrap.token,
    dir: `${dir.path}/op`,
    simulations: { capsule: true, kubevela: true },
  });
  cleanups.push(() => operator.close());
  await operator.start();
  // Tenants reach capsule-proxy; here the API server itself stands in for it.
  await manager.api("PATCH", "/api/v1/clusters/dc1", { capsuleProxyUrl: operator.kube.url });
  await waitUntil(
    "dc1 connected",
    async () => (await manager.api("GET", "/api/v1/clusters/dc1")).body.status === "connected",
  );
  const capabilities = (await manager.api("GET", "/api/v1/clusters/dc1")).body.capabilities;
  expect(capabilities["capsule.clastix.io"]).toContain("v1beta2");

  await manager.api("POST", "/api/v1/plans", {
    name: "gold",
    quotas: { cpu: "4", memory: "8Gi", pods: 20 },
    allowLoadBalancers: false,
  });
  expect(
    (
      await manager.api("POST", "/api/v1/tenants", {
        name: "acme",
        plan: "gold",
        clusters: ["dc1"],
        owners: ["alice"],
      })
    ).status,
  ).toBe(201);
  expect(
    (await manager.api("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" })).status,
  ).toBe(201);

  const kube = operator.kube;
  await waitUntil("the Capsule Tenant and its namespaces", () =>
    ["acme-owner", "acme-apps", "acme-web"].every((name) =>
      kube.get({ apiVersion: "v1", kind: "Namespace", name }),
    ),
  );
  const tenant = kube.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" });
  expect(tenant).toBeDefined();
  // Accounts come a step after the namespaces in the reconciler's ordered apply.
  await waitUntil(
    "the tenant's service accounts",
    () =>
      kube.get({ apiVersion: "v1", kind: "ServiceAccount", namespace: "acme-owner", name: "owner" }) !==
        undefined &&
      kube.get({ apiVersion: "v1", kind: "ServiceAccount", namespace: "acme-web", name: "dev" }) !==
        undefined,
  );

  // The app: created, deployed by the cluster, its status mirrored back to the Manager.
  const created = await manager.api("POST", "/api/v1/tenants/acme/projects/web/apps", {
    name: "site",
    spec: SPEC("nginx:1.27"),
  });
  expect(created.status).toBe(201);
  const status = () => manager.api("GET", "/api/v1/tenants/acme/projects/web/apps/site/status");
  await waitUntil("the app Deployed", async () => (await status()).body.phase === "Deployed", 30_000);
  const application = kube.get({
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    namespace: "acme-web",
    name: "site",
  });
  expect((application?.metadata as any)?.labels?.["kubenova.io/tenant"]).toBe("acme");

  // Update, then roll back to revision 1: the cluster runs the first image again under a new publishVersion.
  await manager.api("PATCH", "/api/v1/tenants/acme/projects/web/apps/site", { spec: SPEC("nginx:1.28") });
  await manager.api("POST", "/api/v1/tenants/acme/projects/web/apps/site/rollback", { revision: 1 });
  await waitUntil("the rollback in the cluster", () => {
    const app = kube.get({
      apiVersion: "core.oam.dev/v1beta1",
      kind: "Application",
      namespace: "acme-web",
      name: "site",
    });
    const image = (app?.spec as any)?.components?.[0]?.properties?.image;
    return (
      image === "nginx:1.27" && (app?.metadata as any)?.annotations?.["app.oam.dev/publishVersion"] === "r3"
    );
  });
  await manager.api("POST", "/api/v1/tenants/acme/projects/web/apps/site/suspend");
  await waitUntil("suspended in the cluster", () => {
    const app = kube.get({
      apiVersion: "core.oam.dev/v1beta1",
      kind: "Application",
      namespace: "acme-web",
      name: "site",
    });
    return (app?.status as any)?.workflow?.suspend === true;
  });

  // Kubeconfigs: the owner's can write in its namespaces; the read-only one cannot.
  const owner = await manager.api("POST", "/api/v1/tenants/acme/kubeconfig", {
    role: "tenantOwner",
    ttlSeconds: 600,
  });
  expect(owner.status).toBe(201);
  const readonly = await manager.api("POST", "/api/v1/tenants/acme/kubeconfig", {
    role: "readOnly",
    ttlSeconds: 600,
  });
  expect(readonly.status).toBe(201);
  const tokenOf = (kubeconfig: string) => kubeconfig.match(/token: (\S+)/)![1]!;
  const createConfigMap = (token: string, namespace: string) =>
    fetch(`${kube.url}/api/v1/namespaces/${namespace}/configmaps`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `probe-${Date.now()}` },
      }),
    });
  expect((await createConfigMap(tokenOf(owner.body.kubeconfig), "acme-web")).status).toBe(201);
  expect((await createConfigMap(tokenOf(readonly.body.kubeconfig), "acme-web")).status).toBe(403);
  expect(
    (
      await fetch(`${kube.url}/api/v1/namespaces/acme-web/configmaps`, {
        headers: { authorization: `Bearer ${tokenOf(readonly.body.kubeconfig)}` },
      })
    ).status,
  ).toBe(200);
  expect((await createConfigMap(tokenOf(owner.body.kubeconfig), "kube-system")).status).toBe(403);

  // The tenant's status came back too, and deleting the tenant cleans the cluster.
  await waitUntil("tenant Deployed in the mirror", async () => {
    const stats = await operator.stats();
    return stats.controllers.tenant.reconciles > 0;
  });
  const metrics = await (await fetch(`${operator.healthUrl}/metrics`)).text();
  expect(metrics).toMatch(/kubenova_reconcile_seconds_count\{controller="tenant",outcome="success"\} \d+/);
  expect(metrics).toContain("kubenova_manager_connected 1");
  expect(metrics).toMatch(/kubenova_events_total\{kind="status_report"\} \d+/);
  expect((await manager.api("DELETE", "/api/v1/tenants/acme")).status).toBe(204);
  await waitUntil(
    "the cluster cleaned up",
    () =>
      !kube.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" }) &&
      !kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme-web" }) &&
      !kube.get({
        apiVersion: "core.oam.dev/v1beta1",
        kind: "Application",
        namespace: "acme-web",
        name: "site",
      }),
  );
}, 120_000);
