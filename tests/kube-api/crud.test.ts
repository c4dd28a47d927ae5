import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, rejection, startHarness } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);

async function seed(core: k8s.CoreV1Api) {
  await core.createNamespace({ body: { metadata: { name: "team" } } });
  const mk = (name: string, labels: Record<string, string>) =>
    core.createNamespacedConfigMap({
      namespace: "team",
      body: { metadata: { name, labels }, data: { n: name } },
    });
  await mk("a", { tier: "web", env: "prod" });
  await mk("b", { tier: "db", env: "prod" });
  await mk("c", { tier: "web", env: "dev" });
  await mk("d", { tier: "cache" });
}

describe("typed CRUD through @kubernetes/client-node", () => {
  test("create sets uid, creationTimestamp and resourceVersion; duplicates are AlreadyExists", async () => {
    h = await startHarness();
    const ns = await h.core.createNamespace({ body: { metadata: { name: "team" } } });
    expect(ns.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(ns.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(Number(ns.metadata?.resourceVersion)).toBeGreaterThan(0);
    expect(ns.status?.phase).toBe("Active");
    const dup = await rejection(h.core.createNamespace({ body: { metadata: { name: "team" } } }));
    expect(dup.code).toBe(409);
    expect(dup.body).toMatchObject({ reason: "AlreadyExists", message: 'namespaces "team" already exists' });
    const noNs = await rejection(
      h.core.createNamespacedConfigMap({ namespace: "nowhere", body: { metadata: { name: "x" } } }),
    );
    expect(noNs.body).toMatchObject({ reason: "NotFound", message: 'namespaces "nowhere" not found' });
    const badName = await rejection(h.core.createNamespace({ body: { metadata: { name: "Bad_Name" } } }));
    expect(badName.code).toBe(422);
    expect((badName.body.details as { causes: { field: string }[] }).causes[0]?.field).toBe("metadata.name");
  });

  test("list filters by equality and set-based label selectors and by field selectors", async () => {
    h = await startHarness();
    await seed(h.core);
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await h.core.listNamespacedConfigMap({ namespace: "team", labelSelector, fieldSelector })).items.map(
        (i) => i.metadata?.name,
      );
    expect(await names("tier=web")).toEqual(["a", "c"]);
    expect(await names("tier==web,env!=dev")).toEqual(["a"]);
    expect(await names("tier in (db,cache)")).toEqual(["b", "d"]);
    expect(await names("tier notin (web),env")).toEqual(["b"]);
    expect(await names("!env")).toEqual(["d"]);
    expect(await names(undefined, "metadata.name=c")).toEqual(["c"]);
    expect(await names(undefined, "metadata.name!=c,metadata.namespace=team")).toEqual(["a", "b", "d"]);
    const all = await h.core.listConfigMapForAllNamespaces({ fieldSelector: "metadata.namespace=team" });
    expect(all.items).toHaveLength(4);
    const bad = await rejection(
      h.core.listNamespacedConfigMap({ namespace: "team", fieldSelector: "data.n=a" }),
    );
    expect(bad.code).toBe(400);
  });

  test("limit and continue page through a list", async () => {
    h = await startHarness();
    await seed(h.core);
    const first = await h.core.listNamespacedConfigMap({ namespace: "team", limit: 3 });
    expect(first.items.map((i) => i.metadata?.name)).toEqual(["a", "b", "c"]);
    expect(first.metadata?.remainingItemCount).toBe(1);
    const second = await h.core.listNamespacedConfigMap({
      namespace: "team",
      limit: 3,
      _continue: first.metadata?._continue,
    });
    expect(second.items.map((i) => i.metadata?.name)).toEqual(["d"]);
    expect(second.metadata?._continue).toBeUndefined();
  });

  test("update with a stale resourceVersion is a 409 Conflict", async () => {
    h = await startHarness();
    await seed(h.core);
    const cm = await h.core.readNamespacedConfigMap({ name: "a", namespace: "team" });
    const updated = await h.core.replaceNamespacedConfigMap({
      name: "a",
      namespace: "team",
      body: { ...cm, data: { n: "changed" } },
    });
    expect(updated.data?.n).toBe("changed");
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(Number(cm.metadata?.resourceVersion));
    const stale = await rejection(
      h.core.replaceNamespacedConfigMap({
        name: "a",
        namespace: "team",
        body: { ...cm, data: { n: "again" } },
      }),
    );
    expect(stale.code).toBe(409);
    expect(stale.body).toMatchObject({
      reason: "Conflict",
      message:
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again',
    });
  });

  test("JSON merge patch and JSON patch; a no-op patch writes nothing", async () => {
    h = await startHarness();
    await seed(h.core);
    const merged = await h.core.patchNamespacedConfigMap(
      {
        name: "a",
        namespace: "team",
        body: { metadata: { labels: { env: null, extra: "1" } }, data: { m: "x" } },
      },
      merge,
    );
    expect(merged.metadata?.labels).toEqual({ tier: "web", extra: "1" });
    expect(merged.data).toEqual({ n: "a", m: "x" });
    const patched = await h.core.patchNamespacedConfigMap(
      {
        name: "a",
        namespace: "team",
        body: [
          { op: "test", path: "/data/m", value: "x" },
          { op: "replace", path: "/data/m", value: "y" },
          { op: "remove", path: "/data/n" },
        ],
      },
      jsonPatch,
    );
    expect(patched.data).toEqual({ m: "y" });
    const failed = await rejection(
      h.core.patchNamespacedConfigMap(
        { name: "a", namespace: "team", body: [{ op: "test", path: "/data/m", value: "nope" }] },
        jsonPatch,
      ),
    );
    expect(failed.code).toBe(422);
    const again = await h.core.patchNamespacedConfigMap(
      { name: "a", namespace: "team", body: { data: { m: "y" } } },
      merge,
    );
    expect(again.metadata?.resourceVersion).toBe(patched.metadata?.resourceVersion);
  });

  test("status subresource: main endpoint ignores status, /status changes only status", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "team" } } });
    await h.core.createNamespacedResourceQuota({
      namespace: "team",
      body: { metadata: { name: "q" }, spec: { hard: { pods: "10" } }, status: { used: { pods: "99" } } },
    });
    let rq = await h.core.readNamespacedResourceQuota({ name: "q", namespace: "team" });
    expect(rq.status?.used).toBeUndefined();
    rq = await h.core.patchNamespacedResourceQuotaStatus(
      {
        name: "q",
        namespace: "team",
        body: { status: { hard: { pods: "10" }, used: { pods: "3" } }, spec: { hard: { pods: "1" } } },
      },
      merge,
    );
    expect(rq.status?.used).toEqual({ pods: "3" });
    expect(rq.spec?.hard).toEqual({ pods: "10" });
    rq = await h.core.patchNamespacedResourceQuota(
      { name: "q", namespace: "team", body: { status: { used: { pods: "0" } } } },
      merge,
    );
    expect(rq.status?.used).toEqual({ pods: "3" });
  });

  test("generation bumps on spec changes only (Deployments, custom resources)", async () => {
    h = await startHarness();
    const apps = h.kc.makeApiClient(k8s.AppsV1Api);
    const body = {
      metadata: { name: "web" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "web", image: "nginx" }] },
        },
      },
    };
    const d = await apps.createNamespacedDeployment({ namespace: "default", body });
    expect(d.metadata?.generation).toBe(1);
    const labelled = await apps.patchNamespacedDeployment(
      { name: "web", namespace: "default", body: { metadata: { labels: { x: "y" } } } },
      merge,
    );
    expect(labelled.metadata?.generation).toBe(1);
    const scaled = await apps.patchNamespacedDeployment(
      { name: "web", namespace: "default", body: { spec: { replicas: 3 } } },
      merge,
    );
    expect(scaled.metadata?.generation).toBe(2);
    const status = await apps.patchNamespacedDeploymentStatus(
      { name: "web", namespace: "default", body: { status: { readyReplicas: 3, observedGeneration: 2 } } },
      merge,
    );
    expect(status.metadata?.generation).toBe(2);
    expect(status.status?.readyReplicas).toBe(3);
  });

  test("dryRun validates without persisting; Secrets fold stringData into data", async () => {
    h = await startHarness();
    await h.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "s" }, stringData: { password: "hunter2" } },
      dryRun: "All",
    });
    expect((await rejection(h.core.readNamespacedSecret({ name: "s", namespace: "default" }))).code).toBe(
      404,
    );
    const s = await h.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "s" }, stringData: { password: "hunter2" } },
    });
    expect(s.type).toBe("Opaque");
    expect(Buffer.from(s.data?.password ?? "", "base64").toString()).toBe("hunter2");
  });

  test("deletecollection removes what the selector matches", async () => {
    h = await startHarness();
    await seed(h.core);
    await h.core.deleteCollectionNamespacedConfigMap({ namespace: "team", labelSelector: "env=prod" });
    const left = await h.core.listNamespacedConfigMap({ namespace: "team" });
    expect(left.items.map((i) => i.metadata?.name)).toEqual(["c", "d"]);
  });

  test("requests without a valid token are 401 Unauthorized", async () => {
    h = await startHarness();
    const res = await fetch(`${h.server.url}/api/v1/namespaces`, {
      headers: { authorization: "Bearer nope" },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
  });
});
