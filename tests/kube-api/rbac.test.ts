import { afterEach, describe, expect, test } from "bun:test";
import { clientFor, type Harness, k8s, rejection, startHarness } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

async function serviceAccountToken(namespace: string, name: string, expirationSeconds?: number) {
  await h.core
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
    .catch(() => undefined);
  const tr = await h.core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], ...(expirationSeconds ? { expirationSeconds } : {}) } },
  });
  return tr;
}

describe("TokenRequest and RBAC", () => {
  test("TokenRequest issues an expiring token; expirationSeconds below 600 is 422", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "acme" } } });
    const tr = await serviceAccountToken("acme", "owner");
    expect(tr.status?.token?.split(".")).toHaveLength(3);
    const lifetimeMs = new Date(tr.status?.expirationTimestamp ?? 0).getTime() - Date.now();
    expect(lifetimeMs).toBeGreaterThan(3500_000);
    expect(lifetimeMs).toBeLessThanOrEqual(3600_000);
    const short = await rejection(
      h.core.createNamespacedServiceAccountToken({
        name: "owner",
        namespace: "acme",
        body: { spec: { audiences: [], expirationSeconds: 599 } },
      }),
    );
    expect(short.code).toBe(422);
    expect(short.body.message).toBe(
      'TokenRequest.authentication.k8s.io "owner" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes',
    );
  });

  test("a ServiceAccount is forbidden until a RoleBinding grants a role; view does not allow writes", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "acme" } } });
    const token = (await serviceAccountToken("acme", "readonly")).status?.token ?? "";
    const sa = clientFor(h.server, token).makeApiClient(k8s.CoreV1Api);
    const denied = await rejection(sa.listNamespacedPod({ namespace: "acme" }));
    expect(denied.code).toBe(403);
    expect(denied.body.message).toBe(
      'pods is forbidden: User "system:serviceaccount:acme:readonly" cannot list resource "pods" in API group "" in the namespace "acme"',
    );
    const rbac = h.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace: "acme",
      body: {
        metadata: { name: "readonly-view" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
        subjects: [{ kind: "ServiceAccount", name: "readonly", namespace: "acme" }],
      },
    });
    expect((await sa.listNamespacedPod({ namespace: "acme" })).items).toEqual([]);
    const write = await rejection(
      sa.createNamespacedConfigMap({ namespace: "acme", body: { metadata: { name: "x" } } }),
    );
    expect(write.code).toBe(403);
    expect((await rejection(sa.listNamespacedPod({ namespace: "default" }))).code).toBe(403);
    const secrets = await rejection(sa.readNamespacedSecret({ name: "s", namespace: "acme" }));
    expect(secrets.body.message).toContain('secrets "s" is forbidden');
  });

  test("a Role with resourceNames and the edit ClusterRole allow exactly what they list", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "acme" } } });
    const token = (await serviceAccountToken("acme", "owner")).status?.token ?? "";
    const kc = clientFor(h.server, token);
    const rbac = h.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: "acme",
      body: {
        metadata: { name: "one-cm" },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"], resourceNames: ["allowed"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: "acme",
      body: {
        metadata: { name: "one-cm" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "one-cm" },
        subjects: [{ kind: "ServiceAccount", name: "owner", namespace: "acme" }],
      },
    });
    await h.core.createNamespacedConfigMap({ namespace: "acme", body: { metadata: { name: "allowed" } } });
    await h.core.createNamespacedConfigMap({ namespace: "acme", body: { metadata: { name: "other" } } });
    const sa = kc.makeApiClient(k8s.CoreV1Api);
    expect((await sa.readNamespacedConfigMap({ name: "allowed", namespace: "acme" })).metadata?.name).toBe(
      "allowed",
    );
    expect((await rejection(sa.readNamespacedConfigMap({ name: "other", namespace: "acme" }))).code).toBe(
      403,
    );

    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const appSpec = {
      apiVersion: "core.oam.dev/v1beta1",
      kind: "Application",
      metadata: { name: "shop", namespace: "acme" },
      spec: { components: [{ name: "web", type: "webservice" }] },
    } as k8s.KubernetesObject;
    expect((await rejection(objects.create(appSpec))).code).toBe(403);
    await rbac.createNamespacedRoleBinding({
      namespace: "acme",
      body: {
        metadata: { name: "owner-edit" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
        subjects: [{ kind: "Group", name: "system:serviceaccounts:acme" }],
      },
    });
    expect((await objects.create(appSpec)).metadata?.name).toBe("shop");
    // edit does not include RBAC objects.
    const rbacAsSa = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    expect((await rejection(rbacAsSa.listNamespacedRoleBinding({ namespace: "acme" }))).code).toBe(403);
  });

  test("tokens stop working when expired or when their ServiceAccount is deleted", async () => {
    h = await startHarness();
    const token = (await serviceAccountToken("default", "temp")).status?.token ?? "";
    const probe = () => fetch(`${h.server.url}/api`, { headers: { authorization: `Bearer ${token}` } });
    expect((await probe()).status).toBe(200);
    await h.core.deleteNamespacedServiceAccount({ name: "temp", namespace: "default" });
    const res = await probe();
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
  });
});
