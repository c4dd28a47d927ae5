/**
 * DESIGN.md §7 "CRD mismatch in a cluster": intents a cluster's reported capabilities cannot run answer 422
 * (KN-422) naming the field and the cluster; a cluster that has not reported yet accepts intent (it waits).
 */
import { describe, expect, test } from "bun:test";
import { expectError } from "./expect-error.ts";
import { createTestManager, SAMPLE_SPEC, seedWorld, type TestManager } from "./harness.ts";

const KUBEVELA = { "core.oam.dev": ["v1beta1"] };
const CAPSULE = { "capsule.clastix.io": ["v1beta2"] };
const BASE = { apps: ["v1"], "networking.k8s.io": ["v1"] };

/** What an operator's `hello` would have stored on the cluster. */
async function report(m: TestManager, cluster: string, capabilities: Record<string, string[]>) {
  const row = (await m.store.clusters.get(cluster))!;
  await m.store.clusters.update({ ...row, capabilities });
}

describe("apps need KubeVela on the project's cluster", () => {
  test.each<{ name: string; capabilities: Record<string, string[]>; status: number }>([
    { name: "not reported yet", capabilities: {}, status: 201 },
    { name: "KubeVela served", capabilities: { ...BASE, ...CAPSULE, ...KUBEVELA }, status: 201 },
    { name: "no KubeVela", capabilities: { ...BASE, ...CAPSULE }, status: 422 },
    {
      name: "KubeVela in another version",
      capabilities: { ...CAPSULE, "core.oam.dev": ["v1alpha1"] },
      status: 422,
    },
  ])("create: $name → $status", async ({ capabilities, status }) => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      await report(m, "dc1", capabilities);
      const res = await m.call("POST", "/api/v1/tenants/acme/projects/web/apps", {
        token: admin,
        body: { name: "shop", spec: SAMPLE_SPEC },
      });
      if (status === 201) {
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        return;
      }
      const error = expectError(res, 422, "KN-422", "cluster");
      expect(error.message).toContain('cluster "dc1"');
      expect(error.message).toContain("core.oam.dev/v1beta1");
      expect(await m.store.apps.get("acme", "web", "shop")).toBeNull();
    } finally {
      await m.close();
    }
  });

  test("update with a new spec is refused once the cluster lost KubeVela; labels alone still change", async () => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      await report(m, "dc1", { ...BASE, ...CAPSULE });
      const path = "/api/v1/tenants/acme/projects/web/apps/site";
      const spec = { components: [{ ...SAMPLE_SPEC.components[0]!, properties: { image: "nginx:1.28" } }] };
      const refused = await m.call("PATCH", path, { token: admin, body: { spec } });
      expect(expectError(refused, 422, "KN-422", "cluster").message).toContain('cluster "dc1"');
      expect((await m.store.apps.get("acme", "web", "site"))!.revision).toBe(1);
      const labels = await m.call("PATCH", path, { token: admin, body: { labels: { team: "a" } } });
      expect(labels.status, JSON.stringify(labels.body)).toBe(200);

      await report(m, "dc1", { ...BASE, ...CAPSULE, ...KUBEVELA });
      const accepted = await m.call("PATCH", path, { token: admin, body: { spec } });
      expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
    } finally {
      await m.close();
    }
  });
});

describe("tenants and projects need Capsule on their clusters", () => {
  test("tenant placement and project creation answer 422 naming the cluster without Capsule", async () => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      await report(m, "dc2", { ...BASE, ...KUBEVELA });
      const tenant = await m.call("POST", "/api/v1/tenants", {
        token: admin,
        body: { name: "initech", owners: ["owner@initech"], clusters: ["dc1", "dc2"] },
      });
      expect(expectError(tenant, 422, "KN-422", "clusters.1").message).toContain('cluster "dc2"');
      expect(await m.store.tenants.get("initech")).toBeNull();

      const placed = await m.call("POST", "/api/v1/tenants", {
        token: admin,
        body: { name: "initech", owners: ["owner@initech"], clusters: ["dc1"] },
      });
      expect(placed.status, JSON.stringify(placed.body)).toBe(201);
      const moved = await m.call("PATCH", "/api/v1/tenants/initech", {
        token: admin,
        body: { clusters: ["dc1", "dc2"] },
      });
      expect(expectError(moved, 422, "KN-422", "clusters.1").message).toContain('cluster "dc2"');

      // acme was placed on dc2 before dc2 reported; a new project there is refused now.
      const project = await m.call("POST", "/api/v1/tenants/acme/projects", {
        token: admin,
        body: { name: "api", cluster: "dc2" },
      });
      expect(expectError(project, 422, "KN-422", "cluster").message).toContain('cluster "dc2"');
      const onDc1 = await m.call("POST", "/api/v1/tenants/acme/projects", {
        token: admin,
        body: { name: "api", cluster: "dc1" },
      });
      expect(onDc1.status, JSON.stringify(onDc1.body)).toBe(201);
    } finally {
      await m.close();
    }
  });
});
