/**
 * The install manifests against the in-memory Kubernetes API server (DESIGN.md §10): every document applies through
 * @kubernetes/client-node with server-side apply (the KubeNova CRDs are created by the apply itself and the
 * NovaClusterConfig is validated against them), and the Manager's kubeconfig installer does the same on its own.
 */
import { toClientObject } from "../../manager/install/kube-installer.ts";
import { describe, expect, test } from "bun:test";
import { buildInstallManifests, OPERATOR_NAMESPACE } from "../../manager/install/manifests.ts";
import { defaultCrdDirs } from "../kube-api/crds.ts";
import { startKubeApiServer } from "../kube-api/server.ts";
import { k8s, waitFor } from "../kube-api/testing.ts";
import { expectError } from "../http/expect-error.ts";
import { createTestManager } from "../http/harness.ts";
import { register } from "./helpers.ts";

/** Only the third-party CRDs are preinstalled: the KubeNova CRDs must arrive through the manifests. */
const thirdPartyOnly = () => ({ crdDirs: [defaultCrdDirs()[0]!] });

const DEPLOYMENT = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  namespace: OPERATOR_NAMESPACE,
  name: "kubenova-operator",
};
const CONFIG = { apiVersion: "kubenova.io/v1alpha1", kind: "NovaClusterConfig", name: "kubenova" };
const SECRET = {
  apiVersion: "v1",
  kind: "Secret",
  namespace: OPERATOR_NAMESPACE,
  name: "kubenova-bootstrap",
};

describe("install manifests on a Kubernetes API server", () => {
  test("every document server-side applies with client-node; the CRDs validate NovaClusterConfig and NovaTenant", async () => {
    const server = await startKubeApiServer(thirdPartyOnly());
    try {
      const kc = new k8s.KubeConfig();
      kc.loadFromString(server.kubeconfig());
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
      const manifests = buildInstallManifests({
        cluster: { id: "0190-test", name: "dc1", capsuleProxyUrl: "https://proxy.example" },
        managerUrl: "https://manager.example",
        operatorImage: "kubenova/kubenova:1.0.0",
        bootstrapToken: "knb_test",
        targetStorageClass: "fast",
      });
      for (const manifest of manifests) {
        await objects.patch(
          toClientObject(manifest),
          undefined,
          undefined,
          "kubenova",
          true,
          k8s.PatchStrategy.ServerSideApply,
        );
      }
      expect(server.get(DEPLOYMENT)).toBeDefined();
      expect(server.get(CONFIG)?.spec).toMatchObject({ installCapsule: true, kubeVelaProfile: "standard" });
      // The CRD schemas are live: a valid NovaTenant applies, an invalid one is refused.
      const tenant = {
        apiVersion: "kubenova.io/v1alpha1",
        kind: "NovaTenant",
        metadata: { name: "acme" },
        spec: {
          displayName: null,
          owners: ["alice"],
          labels: {},
          plan: { name: "gold", quotas: { cpu: "4", pods: 10 }, limitRange: null, allowLoadBalancers: false },
          projects: [{ name: "web", namespace: "acme-web", labels: {} }],
        },
      };
      await objects.create(tenant);
      await expect(
        objects.create({
          ...tenant,
          metadata: { name: "bad" },
          spec: { ...tenant.spec, owners: "alice" },
        } as never),
      ).rejects.toMatchObject({ code: 422 });
      await expect(
        objects.create({
          apiVersion: "kubenova.io/v1alpha1",
          kind: "NovaClusterConfig",
          metadata: { name: "bad" },
          spec: { installCapsule: "yes" },
        }),
      ).rejects.toMatchObject({ code: 422 });
      // Enums survive the trip through client-node (its serializer drops them from plain objects).
      await expect(
        objects.create({
          apiVersion: "kubenova.io/v1alpha1",
          kind: "NovaClusterConfig",
          metadata: { name: "huge" },
          spec: { kubeVelaProfile: "huge" },
        } as never),
      ).rejects.toMatchObject({ code: 422 });
      const crd = server.get({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        name: "novaclusterconfigs.kubenova.io",
      });
      expect(JSON.stringify(crd)).toContain('"enum"');
    } finally {
      await server.close();
    }
  });
});

describe("installing the operator from a stored kubeconfig", () => {
  test("registration with a kubeconfig installs in the background; POST install re-applies with a new token", async () => {
    const server = await startKubeApiServer(thirdPartyOnly());
    const m = await createTestManager();
    try {
      const { clusterId, token } = await register(m, "dc1", { kubeconfig: server.kubeconfig() });
      const deployment = await waitFor(() => server.get(DEPLOYMENT), "the operator Deployment", 15_000);
      const env = (deployment.spec as any).template.spec.containers[0].env as Array<{
        name: string;
        value?: string;
      }>;
      expect(env.find((e) => e.name === "NOVA_CLUSTER_ID")?.value).toBe(clusterId);
      await waitFor(
        async () => (await m.store.clusters.get("dc1"))?.status === "bootstrapping",
        "status",
        15_000,
      );
      // The token handed back at registration is the one in the cluster.
      const secret = server.get(SECRET)!;
      const stored =
        (secret.stringData as any)?.token ?? Buffer.from((secret.data as any).token, "base64").toString();
      expect(stored).toBe(token);
      expect(server.get(CONFIG)).toBeDefined();
      const managed = (deployment.metadata as any).managedFields as Array<{
        manager: string;
        operation: string;
      }>;
      expect(managed.some((f) => f.manager === "kubenova" && f.operation === "Apply")).toBe(true);

      const ops = await m.token("ops");
      const installed = await m.call("POST", "/api/v1/clusters/dc1/install", { token: ops });
      expect(installed.status).toBe(200);
      expect(installed.body.applied.map((a: { kind: string }) => a.kind)).toContain("Deployment");
      expect(installed.body.cluster.status).toBe("bootstrapping");
      // A fresh token was minted for the re-install: the registration token no longer works.
      expectError(
        await m.call("GET", "/api/v1/clusters/dc1/install.yaml", {
          headers: { authorization: `Bearer ${token}` },
        }),
        401,
        "KN-401",
      );
      const audit = await m.store.audit.list({}, { limit: 50 });
      expect(audit.items.filter((a) => a.action === "cluster.install").length).toBe(2);

      // The user deletes the kubeconfig afterwards; a later install has nothing to use.
      const cleared = await m.call("PATCH", "/api/v1/clusters/dc1", {
        token: ops,
        body: { kubeconfig: null },
      });
      expect(cleared.status).toBe(200);
      expect(cleared.body.hasKubeconfig).toBe(false);
      expect((await m.store.clusters.get("dc1"))?.kubeconfigCiphertext).toBeNull();
      expectError(
        await m.call("POST", "/api/v1/clusters/dc1/install", { token: ops }),
        422,
        "KN-422",
        "kubeconfig",
      );
    } finally {
      await m.close();
      await server.close();
    }
  });

  test("a kubeconfig pointing at a dead port → status error with a reason; POST install answers 503", async () => {
    const server = await startKubeApiServer(thirdPartyOnly());
    const dead = server.kubeconfig().replace(server.url, "http://127.0.0.1:1");
    await server.close();
    const m = await createTestManager();
    try {
      await register(m, "dc1", { kubeconfig: dead });
      const row = await waitFor(
        async () => {
          const current = await m.store.clusters.get("dc1");
          return current?.status === "error" ? current : null;
        },
        "status error",
        15_000,
      );
      expect(row.statusReason).toContain("operator install failed");
      expect(row.statusReason).toContain("discovery failed");
      const res = await m.call("POST", "/api/v1/clusters/dc1/install", { token: await m.token("admin") });
      expectError(res, 503, "KN-503");
      expect(JSON.stringify(res.body)).not.toContain("insecure-skip-tls-verify");
    } finally {
      await m.close();
    }
  });
});
