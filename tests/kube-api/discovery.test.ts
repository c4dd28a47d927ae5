import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, rejection, startHarness, waitFor } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

describe("discovery", () => {
  test("serves version, core and group resource lists with the loaded CRDs", async () => {
    h = await startHarness();
    const version = await h.kc.makeApiClient(k8s.VersionApi).getCode();
    expect(version.major).toBe("1");
    const core = await h.core.getAPIResources();
    const sa = core.resources.find((r) => r.name === "serviceaccounts");
    expect(sa).toMatchObject({ namespaced: true, kind: "ServiceAccount", singularName: "serviceaccount" });
    expect(sa?.shortNames).toEqual(["sa"]);
    expect(core.resources.find((r) => r.name === "serviceaccounts/token")?.kind).toBe("TokenRequest");
    const groups = await h.kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    const names = groups.groups.map((g) => g.name);
    expect(names).toContain("capsule.clastix.io");
    expect(names).toContain("core.oam.dev");
    expect(names).toContain("rbac.authorization.k8s.io");
    const capsule = await h.kc
      .makeApiClient(k8s.CustomObjectsApi)
      .getAPIResources({ group: "capsule.clastix.io", version: "v1beta2" });
    expect(capsule.resources.find((r) => r.name === "tenants")).toMatchObject({
      kind: "Tenant",
      namespaced: false,
      shortNames: ["tnt"],
      verbs: expect.arrayContaining(["get", "list", "watch", "create", "patch", "delete"]),
    });
  });

  test("a CRD added through the API is served and discovered; removing it removes both", async () => {
    h = await startHarness({ crdDirs: [] });
    const ext = h.kc.makeApiClient(k8s.ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", shortNames: ["wg"] },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  // client-node models JSONSchemaProps.default as `_default` and drops a plain `default` key.
                  properties: {
                    spec: { type: "object", properties: { size: { type: "integer", _default: 3 } } },
                  },
                },
              },
            },
          ],
        },
      },
    });
    const crd = await ext.readCustomResourceDefinition({ name: "widgets.example.com" });
    expect(crd.status?.conditions?.find((c) => c.type === "Established")?.status).toBe("True");
    const widget = await h.objects.create({
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w1", namespace: "default" },
      spec: {},
    } as k8s.KubernetesObject);
    expect((widget as unknown as { spec: { size: number } }).spec.size).toBe(3);
    const custom = h.kc.makeApiClient(k8s.CustomObjectsApi);
    expect((await custom.getAPIResources({ group: "example.com", version: "v1" })).resources[0]?.name).toBe(
      "widgets",
    );

    await ext.deleteCustomResourceDefinition({ name: "widgets.example.com" });
    const gone = await rejection(custom.getAPIResources({ group: "example.com", version: "v1" }));
    expect(gone.code).toBe(404);
    const groups = await h.kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).not.toContain("example.com");
    // Re-creating the CRD must not resurrect old objects.
    expect(h.server.list({ apiVersion: "v1", kind: "Namespace" }).length).toBeGreaterThan(0);
    expect(await waitFor(() => h.server.backgroundErrors.length === 0, "no background errors")).toBe(true);
  });

  test("KubernetesObjectApi creates, reads, patches and deletes generic objects through discovery", async () => {
    h = await startHarness();
    const cm = await h.objects.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cfg", namespace: "default", labels: { a: "1" } },
      data: { k: "v" },
    } as k8s.KubernetesObject);
    expect(cm.metadata?.uid).toBeDefined();
    const read = await h.objects.read({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cfg", namespace: "default" },
    });
    expect((read as unknown as { data: Record<string, string> }).data.k).toBe("v");
    const patched = await h.objects.patch(
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cfg", namespace: "default" },
        data: { k: "w" },
      } as k8s.KubernetesObject,
      undefined,
      undefined,
      undefined,
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
    expect((patched as unknown as { data: Record<string, string> }).data.k).toBe("w");
    const list = await h.objects.list("v1", "ConfigMap", "default");
    expect(list.items.map((i) => i.metadata?.name)).toEqual(["cfg"]);
    await h.objects.delete({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cfg", namespace: "default" },
    });
    const missing = await rejection(
      h.objects.read({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cfg", namespace: "default" },
      }),
    );
    expect(missing.code).toBe(404);
    expect(missing.body).toMatchObject({
      kind: "Status",
      reason: "NotFound",
      code: 404,
      message: 'configmaps "cfg" not found',
    });
  });

  test("starting a server with all CRDs takes well under a second", async () => {
    const started = performance.now();
    h = await startHarness();
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
