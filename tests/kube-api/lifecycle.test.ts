import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, rejection, startHarness, waitFor } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  expect(h.server.backgroundErrors).toEqual([]);
  await h.server.close();
});

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

describe("deletion, finalizers and garbage collection", () => {
  test("finalizers hold an object with deletionTimestamp until they are removed", async () => {
    h = await startHarness();
    await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "held", finalizers: ["kubenova.io/cleanup"] } },
    });
    await h.core.deleteNamespacedConfigMap({ name: "held", namespace: "default" });
    const pending = await h.core.readNamespacedConfigMap({ name: "held", namespace: "default" });
    expect(pending.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    await h.core.patchNamespacedConfigMap(
      { name: "held", namespace: "default", body: { metadata: { finalizers: null } } },
      merge,
    );
    expect(
      (await rejection(h.core.readNamespacedConfigMap({ name: "held", namespace: "default" }))).code,
    ).toBe(404);
  });

  test("deleting a namespace makes it Terminating, removes its contents, then the namespace", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "team" } } });
    await h.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "c" } } });
    await h.core.createNamespacedServiceAccount({
      namespace: "team",
      body: { metadata: { name: "sa", finalizers: ["x/y"] } },
    });
    await h.core.deleteNamespace({ name: "team" });
    const ns = await h.core.readNamespace({ name: "team" });
    expect(ns.status?.phase).toBe("Terminating");
    await waitFor(
      async () => (await h.core.listNamespacedConfigMap({ namespace: "team" })).items.length === 0,
      "contents gone",
    );
    const blocked = await rejection(
      h.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "late" } } }),
    );
    expect(blocked.code).toBe(403);
    // The ServiceAccount's finalizer keeps the namespace until it is released.
    expect((await h.core.readNamespace({ name: "team" })).metadata?.name).toBe("team");
    await h.core.patchNamespacedServiceAccount(
      { name: "sa", namespace: "team", body: { metadata: { finalizers: null } } },
      merge,
    );
    await waitFor(
      async () => (await rejection(h.core.readNamespace({ name: "team" }))).code === 404,
      "namespace gone",
    );
  });

  test("dependents are garbage-collected with their owner; Orphan keeps them", async () => {
    h = await startHarness();
    const owner = await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "owner" } },
    });
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! };
    await h.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "dep", ownerReferences: [ref] } },
    });
    await h.core.deleteNamespacedConfigMap({ name: "owner", namespace: "default" });
    await waitFor(
      async () =>
        (await rejection(h.core.readNamespacedSecret({ name: "dep", namespace: "default" }))).code === 404,
      "GC",
    );

    const owner2 = await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "owner2" } },
    });
    const ref2 = { apiVersion: "v1", kind: "ConfigMap", name: "owner2", uid: owner2.metadata!.uid! };
    await h.core.createNamespacedSecret({
      namespace: "default",
      body: { metadata: { name: "kept", ownerReferences: [ref2] } },
    });
    await h.core.deleteNamespacedConfigMap({
      name: "owner2",
      namespace: "default",
      propagationPolicy: "Orphan",
    });
    const kept = await h.core.readNamespacedSecret({ name: "kept", namespace: "default" });
    expect(kept.metadata?.ownerReferences).toBeUndefined();
  });

  test("namespaces owned by a Tenant are collected when the Tenant goes", async () => {
    h = await startHarness();
    const objects = h.objects;
    const tenant = await objects.create({
      apiVersion: "capsule.clastix.io/v1beta2",
      kind: "Tenant",
      metadata: { name: "acme" },
      spec: {},
    } as k8s.KubernetesObject);
    await h.core.createNamespace({
      body: {
        metadata: {
          name: "acme-apps",
          ownerReferences: [
            {
              apiVersion: "capsule.clastix.io/v1beta2",
              kind: "Tenant",
              name: "acme",
              uid: tenant.metadata!.uid!,
            },
          ],
        },
      },
    });
    await objects.delete(tenant);
    await waitFor(
      async () => (await rejection(h.core.readNamespace({ name: "acme-apps" }))).code === 404,
      "namespace GC",
    );
  });

  test("preconditions on delete are checked", async () => {
    h = await startHarness();
    await h.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "p" } } });
    const r = await rejection(
      h.core.deleteNamespacedConfigMap({
        name: "p",
        namespace: "default",
        body: { preconditions: { uid: "not-it" } },
      }),
    );
    expect(r.code).toBe(409);
  });
});
