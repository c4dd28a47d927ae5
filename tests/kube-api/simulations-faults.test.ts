import { afterEach, describe, expect, test } from "bun:test";
import path from "node:path";
import { type Harness, k8s, rejection, startHarness, waitFor } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  expect(h.server.backgroundErrors).toEqual([]);
  await h.server.close();
});

type Obj = Record<string, unknown>;

describe("simulated Capsule controller", () => {
  test("namespaces owned by a Tenant appear in its status; off by default", async () => {
    h = await startHarness({ simulations: { capsule: true } });
    const tenant = await h.objects.create({
      apiVersion: "capsule.clastix.io/v1beta2",
      kind: "Tenant",
      metadata: { name: "acme" },
      spec: {},
    } as k8s.KubernetesObject);
    const ref = {
      apiVersion: "capsule.clastix.io/v1beta2",
      kind: "Tenant",
      name: "acme",
      uid: tenant.metadata!.uid!,
    };
    for (const name of ["acme-owner", "acme-apps"]) {
      await h.core.createNamespace({ body: { metadata: { name, ownerReferences: [ref] } } });
    }
    const status = await waitFor(() => {
      const t = h.server.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" });
      const s = t?.status as Obj | undefined;
      return s?.size === 2 ? s : undefined;
    }, "tenant status");
    expect(status).toMatchObject({ namespaces: ["acme-apps", "acme-owner"], size: 2, state: "Active" });
  });

  test("without the simulation nobody writes Tenant status", async () => {
    h = await startHarness();
    await h.objects.create({
      apiVersion: "capsule.clastix.io/v1beta2",
      kind: "Tenant",
      metadata: { name: "acme" },
      spec: {},
    } as k8s.KubernetesObject);
    await Bun.sleep(50);
    expect(
      h.server.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" })?.status,
    ).toBeUndefined();
  });
});

describe("simulated KubeVela controller", () => {
  const appRef = {
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    namespace: "default",
    name: "shop",
  };
  const statusOf = () => (h.server.get(appRef)?.status ?? {}) as Obj;

  test("an Application moves to running with healthy services and a revision per spec change", async () => {
    h = await startHarness({ simulations: { kubevela: true } });
    const spec = { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1" } }] };
    await h.objects.create({
      ...appRef,
      metadata: { name: "shop", namespace: "default" },
      spec,
    } as unknown as k8s.KubernetesObject);
    await waitFor(() => statusOf().status === "running", "running");
    expect(statusOf()).toMatchObject({ observedGeneration: 1, services: [{ name: "web", healthy: true }] });
    await h.objects.patch(
      {
        ...appRef,
        metadata: { name: "shop", namespace: "default" },
        spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:2" } }] },
      } as unknown as k8s.KubernetesObject,
      undefined,
      undefined,
      "kubenova",
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    await waitFor(
      () => statusOf().observedGeneration === 2 && statusOf().status === "running",
      "second rollout",
    );
    const revisions = h.server.list({
      apiVersion: "core.oam.dev/v1beta1",
      kind: "ApplicationRevision",
      namespace: "default",
    });
    expect(revisions.map((r) => r.metadata.name)).toEqual(["shop-v1", "shop-v2"]);
    const app = (revisions[1]?.spec as { application: { spec: typeof spec } } | undefined)?.application;
    expect(app?.spec.components[0]?.properties.image).toBe("nginx:2");
  });

  test("status.workflow.suspend keeps the phase workflowSuspending until resumed", async () => {
    h = await startHarness({ simulations: { kubevela: true } });
    await h.objects.create({
      ...appRef,
      metadata: { name: "shop", namespace: "default" },
      spec: { components: [{ name: "web", type: "webservice" }] },
    } as unknown as k8s.KubernetesObject);
    await waitFor(() => statusOf().status === "running", "running");
    const custom = h.kc.makeApiClient(k8s.CustomObjectsApi);
    const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
    const setSuspend = (suspend: boolean) =>
      custom.patchNamespacedCustomObjectStatus(
        {
          group: "core.oam.dev",
          version: "v1beta1",
          namespace: "default",
          plural: "applications",
          name: "shop",
          body: { status: { workflow: { suspend } } },
        },
        merge,
      );
    await setSuspend(true);
    await waitFor(() => statusOf().status === "workflowSuspending", "suspending");
    await setSuspend(false);
    await waitFor(() => statusOf().status === "running", "resumed");
  });
});

describe("fault injection and request log", () => {
  test("failNext fails the next requests with 500 or 429 + Retry-After, then recovers", async () => {
    h = await startHarness();
    h.server.faults.failNext(1, 500);
    const e500 = await rejection(h.core.readNamespace({ name: "default" }));
    expect(e500.code).toBe(500);
    h.server.faults.failNext(1, 429);
    const res = await fetch(`${h.server.url}/api/v1/namespaces`, {
      headers: { authorization: `Bearer ${h.server.adminToken}` },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as Obj).reason).toBe("TooManyRequests");
    expect((await h.core.readNamespace({ name: "default" })).metadata?.name).toBe("default");
  });

  test("latency delays responses", async () => {
    h = await startHarness();
    h.server.faults.latencyMs = 150;
    const started = performance.now();
    await h.core.readNamespace({ name: "default" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  test("dropWatches ends open watch streams", async () => {
    h = await startHarness();
    let ended = false;
    await new k8s.Watch(h.kc).watch(
      "/api/v1/namespaces",
      {},
      () => {},
      () => {
        ended = true;
      },
    );
    await waitFor(() => h.server.faults.openWatches === 1, "watch open");
    h.server.faults.dropWatches();
    await waitFor(() => ended, "watch to end");
    expect(h.server.faults.openWatches).toBe(0);
  });

  test("the request log records method, path, query, user, verb and status", async () => {
    h = await startHarness();
    await h.core.listNamespacedPod({ namespace: "default", labelSelector: "a=b" });
    await rejection(h.core.readNamespace({ name: "missing" }));
    const [list, get] = h.server.requests.slice(-2);
    expect(list).toMatchObject({
      method: "GET",
      path: "/api/v1/namespaces/default/pods",
      query: "labelSelector=a%3Db",
      user: "kubernetes-admin",
      verb: "list",
      status: 200,
    });
    expect(get).toMatchObject({
      method: "GET",
      path: "/api/v1/namespaces/missing",
      verb: "get",
      status: 404,
    });
  });
});

describe("TLS and the standalone command", () => {
  test("a TLS server is reachable through a kubeconfig carrying its CA", async () => {
    h = await startHarness({ tls: true });
    expect(h.server.url.startsWith("https://127.0.0.1:")).toBe(true);
    expect(h.server.caPem).toContain("BEGIN CERTIFICATE");
    // client-node's undici dispatcher under Bun ignores the kubeconfig CA (it reports the chain unverifiable),
    // so the CA is proven with Bun's fetch, which verifies the chain against exactly that PEM.
    const res = await fetch(`${h.server.url}/api/v1/namespaces/default`, {
      headers: { authorization: `Bearer ${h.server.adminToken}` },
      tls: { ca: h.server.caPem },
    } as RequestInit);
    expect(res.status).toBe(200);
    const untrusted = await fetch(`${h.server.url}/version`).then(
      () => "accepted",
      () => "rejected",
    );
    expect(untrusted).toBe("rejected");
    expect(h.server.kubeconfig()).toContain("certificate-authority-data");
  });

  test("bun run kube-api prints a URL and an admin kubeconfig that works", async () => {
    h = await startHarness({ crdDirs: [] });
    const root = path.resolve(import.meta.dir, "../..");
    const proc = Bun.spawn(["bun", "run", "kube-api"], { cwd: root, stdout: "pipe", stderr: "inherit" });
    try {
      const reader = proc.stdout.getReader();
      let out = "";
      await waitFor(
        async () => {
          const { value } = await reader.read();
          out += new TextDecoder().decode(value);
          return out.includes("admin kubeconfig:");
        },
        "startup output",
        15000,
      );
      const kubeconfig = /admin kubeconfig: (\S+)/.exec(out)?.[1] ?? "";
      expect(out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(kubeconfig);
      const crds = await kc.makeApiClient(k8s.ApiextensionsV1Api).listCustomResourceDefinition();
      expect(crds.items.map((c) => c.metadata?.name)).toContain("tenants.capsule.clastix.io");
    } finally {
      proc.kill("SIGINT");
      await proc.exited;
    }
  });
});
