import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, rejection, startHarness } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

const SSA = k8s.PatchStrategy.ServerSideApply;

function apply(obj: Record<string, unknown>, manager: string, force = false) {
  return h.objects.patch(obj as k8s.KubernetesObject, undefined, undefined, manager, force, SSA);
}

function cm(data: Record<string, string>, labels?: Record<string, string>) {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "cfg", namespace: "default", ...(labels ? { labels } : {}) },
    data,
  };
}

describe("server-side apply", () => {
  test("apply creates the object and records managedFields for the manager", async () => {
    h = await startHarness();
    const created = await apply(cm({ a: "1" }, { team: "x" }), "kubenova");
    expect(created.metadata?.uid).toBeDefined();
    const entry = created.metadata?.managedFields?.[0];
    expect(entry).toMatchObject({ manager: "kubenova", operation: "Apply", fieldsType: "FieldsV1" });
    expect(entry?.fieldsV1).toEqual({
      "f:data": { "f:a": {} },
      "f:metadata": { "f:labels": { "f:team": {} } },
    });
  });

  test("re-applying the same configuration writes nothing: same resourceVersion, no watch event", async () => {
    h = await startHarness();
    const first = await apply(cm({ a: "1" }), "kubenova");
    const events: string[] = [];
    const watch = await new k8s.Watch(h.kc).watch(
      "/api/v1/namespaces/default/configmaps",
      { resourceVersion: first.metadata?.resourceVersion },
      (type) => events.push(type),
      () => {},
    );
    const second = await apply(cm({ a: "1" }), "kubenova");
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    // A later real change proves the watch was live, so the missing event for the no-op is meaningful.
    await apply(cm({ a: "2" }), "kubenova");
    const deadline = Date.now() + 5000;
    while (events.length === 0 && Date.now() < deadline) await Bun.sleep(10);
    watch.abort();
    expect(events).toEqual(["MODIFIED"]);
  });

  test("a field owned by another manager with a different value conflicts; force takes it over", async () => {
    h = await startHarness();
    await apply(cm({ a: "1", b: "1" }), "kubenova");
    const r = await rejection(apply(cm({ a: "2" }), "someone-else"));
    expect(r.code).toBe(409);
    expect(r.body).toMatchObject({
      reason: "Conflict",
      message: 'Apply failed with 1 conflict: conflict with "kubenova": .data.a',
      details: {
        causes: [{ reason: "FieldManagerConflict", field: ".data.a", message: 'conflict with "kubenova"' }],
      },
    });
    // Same value: shared ownership, no conflict.
    await apply(cm({ b: "1" }), "someone-else");
    const forced = await apply(cm({ a: "2" }), "someone-else", true);
    expect((forced as unknown as { data: Record<string, string> }).data).toEqual({ a: "2", b: "1" });
    const managers = Object.fromEntries(
      (forced.metadata?.managedFields ?? []).map((m) => [
        m.manager,
        Object.keys((m.fieldsV1 as { "f:data": object })["f:data"]),
      ]),
    );
    // someone-else no longer applies b, but b stays: kubenova still owns it.
    expect(managers).toEqual({ kubenova: ["f:b"], "someone-else": ["f:a"] });
  });

  test("an update by another client takes ownership, and a later apply of that field conflicts", async () => {
    h = await startHarness();
    await apply(cm({ a: "1" }), "kubenova");
    await h.core.patchNamespacedConfigMap(
      { name: "cfg", namespace: "default", body: { data: { a: "edited" } }, fieldManager: "kubectl-edit" },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const r = await rejection(apply(cm({ a: "1" }), "kubenova"));
    expect(r.body.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-edit": .data.a');
    const repaired = await apply(cm({ a: "1" }), "kubenova", true);
    expect((repaired as unknown as { data: Record<string, string> }).data.a).toBe("1");
  });

  test("fields a manager stops applying are removed", async () => {
    h = await startHarness();
    await apply(cm({ a: "1", b: "2" }, { keep: "1", drop: "1" }), "kubenova");
    const next = await apply(cm({ a: "1" }, { keep: "1" }), "kubenova");
    expect((next as unknown as { data: Record<string, string> }).data).toEqual({ a: "1" });
    expect(next.metadata?.labels).toEqual({ keep: "1" });
  });

  test("list-map lists merge by key across managers; atomic lists are replaced", async () => {
    h = await startHarness();
    const deploy = (containers: { name: string; image: string }[], args?: string[]) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "default" },
      spec: {
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: containers.map((c) => ({ ...c, ...(args ? { args } : {}) })) },
        },
      },
    });
    await apply(deploy([{ name: "web", image: "nginx" }], ["a", "b"]), "kubenova");
    await apply(deploy([{ name: "sidecar", image: "envoy" }]), "mesh");
    const both = (await apply(deploy([{ name: "web", image: "nginx" }], ["c"]), "kubenova")) as unknown as {
      spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } };
    };
    const containers = both.spec.template.spec.containers;
    expect(containers.map((c) => c.name).sort()).toEqual(["sidecar", "web"]);
    expect(containers.find((c) => c.name === "web")?.args).toEqual(["c"]);
  });

  test("apply to the status subresource owns status fields separately", async () => {
    h = await startHarness();
    await h.objects.create({
      apiVersion: "core.oam.dev/v1beta1",
      kind: "Application",
      metadata: { name: "shop", namespace: "default" },
      spec: { components: [{ name: "web", type: "webservice" }] },
    } as k8s.KubernetesObject);
    const res = await fetch(
      `${h.server.url}/apis/core.oam.dev/v1beta1/namespaces/default/applications/shop/status?fieldManager=vela-core`,
      {
        method: "PATCH",
        headers: {
          authorization: `Bearer ${h.server.adminToken}`,
          "content-type": "application/apply-patch+yaml",
        },
        body: "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\n  namespace: default\nstatus:\n  status: running\n",
      },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      status: { status: string };
      metadata: { generation: number; managedFields: { manager: string; subresource?: string }[] };
    };
    expect(body.status.status).toBe("running");
    expect(body.metadata.generation).toBe(1);
    expect(body.metadata.managedFields.find((m) => m.manager === "vela-core")?.subresource).toBe("status");
  });
});
