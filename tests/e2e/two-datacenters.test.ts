/**
 * Issue 8's end-to-end flow through the REST API only, with the Manager and two operators as separate processes
 * over real mTLS: one cluster installed by the Manager from a stored kubeconfig, one by applying install.yaml
 * with its bootstrap token; add-ons reach Ready (helm is a recording stand-in; the add-ons' Deployments are put
 * in place as Helm would leave them); a tenant placed in both datacenters with a project in each, an app, usage
 * collected on demand and read back as billing; deleting the tenant cleans up both clusters.
 */
import { afterAll, expect, test } from "bun:test";
import { chmod, copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { toClientObject } from "../../manager/install/kube-installer.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";
import { createOperatorProcess, startManagerProcess, tempDir, waitUntil } from "./harness.ts";

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** What Helm would have left: the add-ons' Deployments, Available, and Capsule's default configuration. */
function addonsInstalled(kube: KubeApiServer): void {
  for (const [namespace, release] of [
    ["capsule-system", "capsule"],
    ["capsule-system", "capsule-proxy"],
    ["vela-system", "kubevela"],
  ] as const) {
    kube.put({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: release, namespace, labels: { "app.kubernetes.io/instance": release } },
      spec: {
        selector: { matchLabels: { app: release } },
        template: {
          metadata: { labels: { app: release } },
          spec: { containers: [{ name: release, image: release }] },
        },
      },
      status: { conditions: [{ type: "Available", status: "True" }], availableReplicas: 1 },
    });
  }
  kube.put({
    apiVersion: "capsule.clastix.io/v1beta2",
    kind: "CapsuleConfiguration",
    metadata: { name: "default" },
    spec: { users: [{ kind: "Group", name: "projectcapsule.dev" }], administrators: [] },
  });
}

test("two datacenters: kubeconfig install and install.yaml, add-ons Ready, a tenant across both, usage, cleanup", async () => {
  const dir = await tempDir("kn-e2e-2dc-");
  cleanups.push(dir.remove);
  // A recording helm on the operators' PATH.
  const bin = join(dir.path, "bin");
  await mkdir(join(dir.path, "helm-state"), { recursive: true });
  await mkdir(bin, { recursive: true });
  await copyFile(join(import.meta.dir, "..", "operator", "fixtures", "helm"), join(bin, "helm"));
  await chmod(join(bin, "helm"), 0o755);
  const helmEnv = {
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    HELM_FAKE_LOG: join(dir.path, "helm.log"),
    HELM_FAKE_STATE: join(dir.path, "helm-state"),
  };
  const manager = await startManagerProcess(`${dir.path}/manager`);
  cleanups.push(() => manager.kill("SIGKILL"));
  const servers: KubeApiServer[] = [];
  for (let i = 0; i < 2; i++) {
    const kube = await startKubeApiServer({
      namespaces: ["capsule-system", "vela-system"],
      simulations: { capsule: true, kubevela: true },
    });
    cleanups.push(() => kube.close());
    addonsInstalled(kube);
    servers.push(kube);
  }
  const [fraKube, amsKube] = servers as [KubeApiServer, KubeApiServer];

  // fra: the Manager installs the operator from the kubeconfig it was given (the one time it talks to a cluster).
  const fra = await manager.api("POST", "/api/v1/clusters", {
    name: "fra",
    datacenter: "frankfurt",
    capsuleProxyUrl: fraKube.url,
    kubeconfig: fraKube.kubeconfig(),
  });
  expect(fra.status).toBe(201);
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    namespace: "kubenova-system",
    name: "kubenova-operator",
  };
  await waitUntil("the Manager's install into fra", () => fraKube.get(deployment) !== undefined);
  // The kubelet's part: run the operator the Deployment describes, with the token from its Secret.
  const secret = fraKube.get({
    apiVersion: "v1",
    kind: "Secret",
    namespace: "kubenova-system",
    name: "kubenova-bootstrap",
  })!;
  const fraToken =
    (secret.stringData as Record<string, string> | undefined)?.token ??
    Buffer.from((secret.data as Record<string, string>).token!, "base64").toString();
  await manager.api("PATCH", "/api/v1/clusters/fra", { kubeconfig: null }); // the user deletes it afterwards

  // ams: install.yaml fetched with the bootstrap token and applied like `kubectl apply --server-side`.
  const ams = await manager.api("POST", "/api/v1/clusters", {
    name: "ams",
    datacenter: "amsterdam",
    capsuleProxyUrl: amsKube.url,
  });
  const yaml = await (
    await fetch(ams.body.bootstrap.installUrl, {
      headers: { authorization: `Bearer ${ams.body.bootstrap.token}` },
    })
  ).text();
  const kc = new k8s.KubeConfig();
  kc.loadFromString(amsKube.kubeconfig());
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const doc of parseAllDocuments(yaml)) {
    const manifest = doc.toJS() as { apiVersion: string; kind: string };
    await objects.patch(
      toClientObject(manifest),
      undefined,
      undefined,
      "kubectl",
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
  }

  for (const [cluster, kube, token] of [
    [fra.body.cluster.id, fraKube, fraToken],
    [ams.body.cluster.id, amsKube, ams.body.bootstrap.token],
  ] as const) {
    const operator = await createOperatorProcess({
      manager,
      clusterId: cluster,
      bootstrapToken: token,
      dir: join(dir.path, cluster),
      kube,
      env: helmEnv,
    });
    cleanups.push(() => operator.close());
    await operator.start();
  }
  for (const name of ["fra", "ams"]) {
    await waitUntil(
      `${name} connected`,
      async () => (await manager.api("GET", `/api/v1/clusters/${name}`)).body.status === "connected",
    );
  }
  // Bootstrap: the NovaClusterConfig from the install manifests reaches Ready in both clusters.
  for (const kube of servers) {
    await waitUntil(
      "add-ons Ready",
      () =>
        (
          kube.get({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaClusterConfig", name: "kubenova" })
            ?.status as any
        )?.phase === "Ready",
      30_000,
    );
  }

  // A tenant in both datacenters, a project in each, an app in fra.
  expect(
    (await manager.api("POST", "/api/v1/tenants", { name: "acme", clusters: ["fra", "ams"] })).status,
  ).toBe(201);
  expect(
    (await manager.api("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "fra" })).status,
  ).toBe(201);
  expect(
    (await manager.api("POST", "/api/v1/tenants/acme/projects", { name: "batch", cluster: "ams" })).status,
  ).toBe(201);
  await manager.api("POST", "/api/v1/tenants/acme/projects/web/apps", {
    name: "site",
    spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1.27" } }] },
  });
  await waitUntil(
    "the app Deployed",
    async () =>
      (await manager.api("GET", "/api/v1/tenants/acme/projects/web/apps/site/status")).body.phase ===
      "Deployed",
    30_000,
  );
  // Each datacenter reconciles on its own: wait for both projects' namespaces.
  await waitUntil(
    "the projects' namespaces in both datacenters",
    () =>
      fraKube.get({ apiVersion: "v1", kind: "Namespace", name: "acme-web" }) !== undefined &&
      amsKube.get({ apiVersion: "v1", kind: "Namespace", name: "acme-batch" }) !== undefined,
  );

  // Usage: a pod in each datacenter, collected now, billed per cluster and in total.
  for (const [kube, namespace] of [
    [fraKube, "acme-web"],
    [amsKube, "acme-batch"],
  ] as const) {
    kube.put({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "worker", namespace, labels: {} },
      spec: {
        containers: [
          { name: "c", image: "busybox", resources: { requests: { cpu: "250m", memory: "64Mi" } } },
        ],
      },
      status: { phase: "Running" },
    });
  }
  for (const name of ["fra", "ams"]) {
    const collected = await manager.api("POST", `/api/v1/clusters/${name}/collect-usage`);
    expect(collected.status).toBe(200);
  }
  const range = `from=${encodeURIComponent(new Date(Date.now() - 3 * 3_600_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`;
  await waitUntil("usage from both clusters", async () => {
    const report = (await manager.api("GET", `/api/v1/tenants/acme/usage?${range}&granularity=day`)).body;
    return report.records === 2;
  });
  const total = (await manager.api("GET", `/api/v1/tenants/acme/usage?${range}&granularity=day`)).body;
  expect(total.totals).toMatchObject({
    cpuRequestMillicores: 500,
    memoryRequestBytes: 2 * 64 * 1024 * 1024,
    pods: 2,
  });
  const fraOnly = (await manager.api("GET", `/api/v1/tenants/acme/usage?${range}&cluster=fra`)).body;
  expect(fraOnly.totals.cpuRequestMillicores).toBe(250);

  // Deleting the tenant cleans up both clusters.
  expect((await manager.api("DELETE", "/api/v1/tenants/acme")).status).toBe(204);
  await waitUntil("both clusters clean", () =>
    servers.every(
      (kube) =>
        !kube.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" }) &&
        kube
          .list({ apiVersion: "v1", kind: "Namespace" })
          .every((ns) => !(ns.metadata as any).name.startsWith("acme-")),
    ),
  );
}, 150_000);
