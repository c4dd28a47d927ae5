import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { type Harness, k8s, rejection, startHarness } from "../kube-api/testing.ts";

const CRD_DIR = "charts/operator/crds";

async function withServer(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness();
  try {
    await fn(h);
  } finally {
    await h.server.close();
  }
}

const create = (h: Harness, obj: Record<string, unknown>) =>
  h.objects.create(k8s.loadYaml<k8s.KubernetesObject>(JSON.stringify(obj)));

const tenant = (spec: Record<string, unknown>) => ({
  apiVersion: "kubenova.io/v1alpha1",
  kind: "NovaTenant",
  metadata: { name: "acme" },
  spec,
});

const VALID_TENANT = {
  displayName: "Acme",
  owners: ["alice@example.com"],
  plan: {
    name: "small",
    quotas: { cpu: "4", memory: "8Gi", pods: 50, namespaces: 3 },
    allowLoadBalancers: false,
  },
  projects: [{ name: "web", namespace: "acme-apps" }],
};

describe("the CRDs in charts/operator/crds", () => {
  test("every file is a CustomResourceDefinition the in-memory API server serves as it is written", async () => {
    const files = readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"));
    expect(files.sort()).toEqual(["novaclusterconfigs.yaml", "novatenants.yaml"]);
    await withServer(async (h) => {
      for (const file of files) {
        const crd = parse(readFileSync(path.join(CRD_DIR, file), "utf8")) as {
          kind: string;
          metadata: { name: string };
          spec: unknown;
        };
        expect(crd.kind).toBe("CustomResourceDefinition");
        // Plain fetch: client-node's typed models rename schema keys (`enum` → `_enum`) when reading.
        const response = await fetch(
          `${h.server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
          { headers: { authorization: `Bearer ${h.server.adminToken}` } },
        );
        expect(response.status).toBe(200);
        expect(((await response.json()) as { spec: unknown }).spec).toEqual(crd.spec);
      }
    });
  });

  test("a valid NovaTenant is accepted and pruned of unknown fields", async () => {
    await withServer(async (h) => {
      const created = (await create(h, tenant({ ...VALID_TENANT, surprise: 1 }))) as unknown as {
        spec: Record<string, unknown>;
      };
      expect(created.spec).toEqual(VALID_TENANT);
    });
  });

  test.each([
    ["without its plan", { ...VALID_TENANT, plan: undefined }, "spec.plan: Required value"],
    [
      "with a negative pod quota",
      { ...VALID_TENANT, plan: { ...VALID_TENANT.plan, quotas: { pods: -1 } } },
      "spec.plan.quotas.pods",
    ],
    [
      "with a project without a namespace",
      { ...VALID_TENANT, projects: [{ name: "web" }] },
      "spec.projects[0].namespace",
    ],
  ])("a NovaTenant %s is rejected naming the field", async (_what, spec, field) => {
    await withServer(async (h) => {
      const r = await rejection(create(h, tenant(spec)));
      expect(r.code).toBe(422);
      expect(JSON.stringify(r.body)).toContain(field);
    });
  });

  test("a NovaClusterConfig is defaulted by the CRD; a kubeVelaProfile outside the enum is rejected", async () => {
    await withServer(async (h) => {
      const config = (base: Record<string, unknown>) => ({
        apiVersion: "kubenova.io/v1alpha1",
        kind: "NovaClusterConfig",
        metadata: { name: "kubenova" },
        spec: base,
      });
      const r = await rejection(create(h, config({ kubeVelaProfile: "huge" })));
      expect(r.code).toBe(422);
      expect(String(r.body.message)).toContain('spec.kubeVelaProfile: Unsupported value: "huge"');
      const created = (await create(h, config({ installCapsule: false }))) as unknown as {
        spec: Record<string, unknown>;
      };
      expect(created.spec).toEqual({
        installCapsule: false,
        installCapsuleProxy: true,
        installKubeVela: true,
        kubeVelaProfile: "standard",
      });
    });
  });
});
