/**
 * The Manager's REST API as a user relies on it, driven only through HTTP (plus a look at the store where the
 * promise is about what is stored): clusters, catalog, tenants, projects, apps, conventions, audit, identity,
 * authentication, health and docs.
 */
import { describe, expect, test } from "bun:test";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { kubeconfigAad } from "../../manager/services/clusters.ts";
import { errorPaths, expectError } from "./expect-error.ts";
import { createTestManager, SAMPLE_SPEC, seedWorld, type TestManager } from "./harness.ts";

const APPS = "/api/v1/tenants/acme/projects/web/apps";

/** A seeded manager and an admin token (see `seedWorld`). */
async function world(options: Parameters<typeof createTestManager>[0] = {}) {
  const m = await createTestManager(options);
  const { admin } = await seedWorld(m);
  return { m, admin };
}

/** Calls that must succeed; the failure message shows the response. */
function ok(m: TestManager, token: string) {
  return async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await m.call(method, path, { token, body, ...(headers ? { headers } : {}) });
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  };
}

const names = (res: { body: { items: Array<{ name: string }> } }) => res.body.items.map((i) => i.name);

describe("clusters", () => {
  test("a kubeconfig is stored envelope-encrypted, bound to its row, and never returned", async () => {
    const m = await createTestManager();
    const admin = await m.token("admin");
    const kubeconfig =
      "apiVersion: v1\nkind: Config\nusers: [{name: root, user: {token: sup3r-s3cret-t0ken}}]\n";
    const created = await m.call("POST", "/api/v1/clusters", {
      token: admin,
      body: { name: "dc1", datacenter: "fra", kubeconfig },
    });
    expect(created.status).toBe(201);
    expect(created.body.cluster).toMatchObject({ name: "dc1", hasKubeconfig: true });
    expect(created.body.cluster).not.toHaveProperty("kubeconfig");
    expect(created.body.cluster).not.toHaveProperty("kubeconfigCiphertext");
    expect(JSON.stringify(created.body)).not.toContain("sup3r-s3cret-t0ken");

    for (const path of ["/api/v1/clusters/dc1", "/api/v1/clusters"]) {
      const res = await m.call("GET", path, { token: admin });
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain("sup3r-s3cret-t0ken");
      expect(JSON.stringify(res.body)).not.toContain("kubeconfigCiphertext");
    }

    const row = (await m.store.clusters.get("dc1"))!;
    expect(row.id).toBe(created.body.cluster.id);
    const ciphertext = row.kubeconfigCiphertext!;
    expect(ciphertext).not.toContain("sup3r-s3cret-t0ken");
    expect(ciphertext).not.toContain(Buffer.from(kubeconfig).toString("base64url").slice(0, 16));
    const envelope = createEnvelope(
      createKeyring({ keys: [{ id: "test", key: new Uint8Array(32).fill(7) }], activeKeyId: "test" }),
    );
    expect(await envelope.decryptString(ciphertext, kubeconfigAad(row.id))).toBe(kubeconfig);
    // The AAD binds the ciphertext to this cluster: copied to another row it does not open.
    await expect(envelope.decryptString(ciphertext, kubeconfigAad("another-cluster"))).rejects.toThrow();

    const cleared = await m.call("PATCH", "/api/v1/clusters/dc1", {
      token: admin,
      body: { kubeconfig: null },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.hasKubeconfig).toBe(false);
    expect((await m.store.clusters.get("dc1"))!.kubeconfigCiphertext).toBeNull();

    const plain = await m.call("POST", "/api/v1/clusters", {
      token: admin,
      body: { name: "dc2", datacenter: "ams" },
    });
    expect(plain.body.cluster.hasKubeconfig).toBe(false);
    await m.close();
  });

  test("list filters: label selectors (equality, set-based, existence), datacenter and status", async () => {
    const m = await createTestManager();
    const admin = await m.token("admin");
    const call = ok(m, admin);
    await call("POST", "/api/v1/clusters", {
      name: "c1",
      datacenter: "fra",
      labels: { region: "eu", tier: "gold" },
    });
    await call("POST", "/api/v1/clusters", { name: "c2", datacenter: "ams", labels: { region: "us" } });
    await call("POST", "/api/v1/clusters", {
      name: "c3",
      datacenter: "fra",
      labels: { region: "eu", legacy: "true" },
    });
    const c3 = (await m.store.clusters.get("c3"))!;
    await m.store.clusters.update({ ...c3, status: "connected" });

    const cases: Array<[string, string[]]> = [
      ["", ["c1", "c2", "c3"]],
      ["labelSelector=region%3Deu", ["c1", "c3"]],
      ["labelSelector=region%3D%3Deu", ["c1", "c3"]],
      ["labelSelector=region!%3Deu", ["c2"]],
      ["labelSelector=" + encodeURIComponent("region in (us,ap)"), ["c2"]],
      ["labelSelector=" + encodeURIComponent("region notin (us)"), ["c1", "c3"]],
      ["labelSelector=legacy", ["c3"]],
      ["labelSelector=" + encodeURIComponent("!legacy"), ["c1", "c2"]],
      ["labelSelector=" + encodeURIComponent("region=eu,!legacy"), ["c1"]],
      ["labelSelector=" + encodeURIComponent("tier in (gold),region=eu"), ["c1"]],
      ["datacenter=fra", ["c1", "c3"]],
      ["datacenter=ams", ["c2"]],
      ["status=connected", ["c3"]],
      ["status=pending_bootstrap", ["c1", "c2"]],
      ["datacenter=fra&status=pending_bootstrap", ["c1"]],
    ];
    for (const [query, expected] of cases) {
      const res = await m.call("GET", `/api/v1/clusters?${query}`, { token: admin });
      expect(res.status, query).toBe(200);
      expect(names(res), query).toEqual(expected);
    }
    expectError(
      await m.call("GET", "/api/v1/clusters?status=sleeping", { token: admin }),
      400,
      "KN-400",
      "query.status",
    );
    await m.close();
  });

  test("get, patch and delete; a cluster that hosts tenants cannot be deleted", async () => {
    const { m, admin } = await world();
    const got = await m.call("GET", "/api/v1/clusters/dc1", { token: admin });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ name: "dc1", datacenter: "fra", labels: { region: "eu" }, version: 1 });
    expect(got.headers.get("etag")).toBe('"1"');

    const patched = await m.call("PATCH", "/api/v1/clusters/dc1", {
      token: admin,
      body: {
        displayName: "Frankfurt 1",
        labels: { region: "eu", zone: "a" },
        capsuleProxyUrl: "https://proxy.fra",
      },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      displayName: "Frankfurt 1",
      labels: { region: "eu", zone: "a" },
      capsuleProxyUrl: "https://proxy.fra",
      version: 2,
    });
    expect(patched.headers.get("etag")).toBe('"2"');

    const refused = expectError(
      await m.call("DELETE", "/api/v1/clusters/dc1", { token: admin }),
      409,
      "KN-409",
    );
    expect(refused.message).toContain("acme");
    expect(await m.store.clusters.get("dc1")).not.toBeNull();

    expect((await m.call("DELETE", "/api/v1/tenants/acme", { token: admin })).status).toBe(204);
    expect((await m.call("DELETE", "/api/v1/tenants/globex", { token: admin })).status).toBe(204);
    expect((await m.call("DELETE", "/api/v1/clusters/dc1", { token: admin })).status).toBe(204);
    expectError(await m.call("GET", "/api/v1/clusters/dc1", { token: admin }), 404, "KN-404");
    expectError(await m.call("DELETE", "/api/v1/clusters/dc1", { token: admin }), 404, "KN-404");
    expectError(await m.call("PATCH", "/api/v1/clusters/dc1", { token: admin, body: {} }), 404, "KN-404");
    await m.close();
  });
});

describe("plans and policy sets", () => {
  test("plan CRUD with defaults; a plan in use cannot be deleted", async () => {
    const { m, admin } = await world();
    const created = await m.call("POST", "/api/v1/plans", {
      token: admin,
      body: { name: "gold", quotas: { cpu: "16", memory: "64Gi" }, allowLoadBalancers: true },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "gold",
      displayName: null,
      quotas: { cpu: "16", memory: "64Gi" },
      limitRange: null,
      allowLoadBalancers: true,
      traits: [],
      policies: [],
      version: 1,
    });
    expect(created.headers.get("etag")).toBe('"1"');

    expect(names(await m.call("GET", "/api/v1/plans", { token: admin }))).toEqual(["default", "gold"]);
    // Plans are readable by tenant-scoped callers too.
    const owner = await m.token("tenantOwner", { tenant: "acme" });
    expect((await m.call("GET", "/api/v1/plans/gold", { token: owner })).body.name).toBe("gold");

    const patched = await m.call("PATCH", "/api/v1/plans/gold", {
      token: admin,
      body: { quotas: { cpu: "32" }, traits: [{ type: "scaler", properties: { replicas: 3 } }] },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ quotas: { cpu: "32" }, version: 2, allowLoadBalancers: true });
    expect(patched.body.traits).toEqual([{ type: "scaler", properties: { replicas: 3 } }]);

    // A PATCH changes only the fields it names (regression: schema defaults used to reset the others).
    const renamed = await m.call("PATCH", "/api/v1/plans/gold", {
      token: admin,
      body: { displayName: "Gold" },
    });
    expect(renamed.body).toMatchObject({
      displayName: "Gold",
      quotas: { cpu: "32" },
      allowLoadBalancers: true,
      traits: [{ type: "scaler", properties: { replicas: 3 } }],
      version: 3,
    });

    expectError(
      await m.call("POST", "/api/v1/plans", { token: admin, body: { name: "gold" } }),
      409,
      "KN-409",
    );

    const inUse = expectError(
      await m.call("DELETE", "/api/v1/plans/default", { token: admin }),
      409,
      "KN-409",
    );
    expect(inUse.message).toContain("acme");
    expect((await m.call("GET", "/api/v1/plans/default", { token: admin })).status).toBe(200);

    expect((await m.call("DELETE", "/api/v1/plans/gold", { token: admin })).status).toBe(204);
    expectError(await m.call("GET", "/api/v1/plans/gold", { token: admin }), 404, "KN-404");
    await m.close();
  });

  test("policy set CRUD; an attached policy set cannot be deleted", async () => {
    const { m, admin } = await world();
    const created = await m.call("POST", "/api/v1/policysets", {
      token: admin,
      body: { name: "strict", allowedComponentTypes: ["webservice"], description: "only web" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "strict",
      description: "only web",
      traits: [],
      policies: [],
      allowedComponentTypes: ["webservice"],
      version: 1,
    });
    expect((await m.call("GET", "/api/v1/policysets/baseline", { token: admin })).body.traits).toEqual([
      { type: "scaler", properties: { replicas: 1 } },
    ]);
    expect(names(await m.call("GET", "/api/v1/policysets", { token: admin }))).toEqual([
      "baseline",
      "strict",
    ]);
    const patched = await m.call("PATCH", "/api/v1/policysets/strict", {
      token: admin,
      body: { allowedComponentTypes: ["webservice", "worker"] },
    });
    expect(patched.body).toMatchObject({ allowedComponentTypes: ["webservice", "worker"], version: 2 });
    const described = await m.call("PATCH", "/api/v1/policysets/baseline", {
      token: admin,
      body: { description: "scaled" },
    });
    expect(described.body).toMatchObject({
      description: "scaled",
      traits: [{ type: "scaler", properties: { replicas: 1 } }],
    });

    await ok(m, admin)("PATCH", "/api/v1/tenants/acme", { policySets: ["strict"] });
    expectError(await m.call("DELETE", "/api/v1/policysets/strict", { token: admin }), 409, "KN-409");
    await ok(m, admin)("PATCH", "/api/v1/tenants/acme", { policySets: [] });
    expect((await m.call("DELETE", "/api/v1/policysets/strict", { token: admin })).status).toBe(204);
    expectError(await m.call("GET", "/api/v1/policysets/strict", { token: admin }), 404, "KN-404");
    await m.close();
  });
});

describe("tenants", () => {
  test("create with placement and the default plan; read, list by owner, label and cluster", async () => {
    const { m, admin } = await world();
    const created = await m.call("POST", "/api/v1/tenants", {
      token: admin,
      body: {
        name: "initech",
        displayName: "Initech",
        owners: ["bill@initech"],
        clusters: ["dc2"],
        labels: { tier: "gold", env: "prod" },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "initech",
      displayName: "Initech",
      owners: ["bill@initech"],
      plan: "default",
      clusters: ["dc2"],
      labels: { tier: "gold", env: "prod" },
      policySets: [],
      version: 1,
    });
    expect(created.headers.get("etag")).toBe('"1"');
    const got = await m.call("GET", "/api/v1/tenants/initech", { token: admin });
    expect(got.body).toEqual(created.body);

    const list = async (query: string) =>
      names(await m.call("GET", `/api/v1/tenants?${query}`, { token: admin }));
    expect(await list("")).toEqual(["acme", "globex", "initech"]);
    expect(await list("owner=bill%40initech")).toEqual(["initech"]);
    expect(await list("owner=owner%40acme")).toEqual(["acme"]);
    expect(await list("owner=nobody")).toEqual([]);
    expect(await list("labelSelector=tier%3Dgold")).toEqual(["initech"]);
    expect(await list(`labelSelector=${encodeURIComponent("!tier")}`)).toEqual(["acme", "globex"]);
    expect(await list(`labelSelector=${encodeURIComponent("env in (prod,dev),tier")}`)).toEqual(["initech"]);
    expect(await list("cluster=dc1")).toEqual(["acme", "globex"]);
    expect(await list("cluster=dc2")).toEqual(["acme", "globex", "initech"]);

    // A tenant-scoped caller lists only its own tenant.
    const owner = await m.token("tenantOwner", { tenant: "acme" });
    expect(names(await m.call("GET", "/api/v1/tenants", { token: owner }))).toEqual(["acme"]);
    expectError(await m.call("GET", "/api/v1/tenants/globex", { token: owner }), 404, "KN-404");
    await m.close();
  });

  test("unknown clusters, plans and policy sets are 422s naming each reference; nothing is created", async () => {
    const { m, admin } = await world();
    const res = await m.call("POST", "/api/v1/tenants", {
      token: admin,
      body: { name: "t1", clusters: ["dc1", "dc9"], plan: "platinum", policySets: ["baseline", "nope"] },
    });
    const error = expectError(res, 422, "KN-422", "clusters.1");
    expect(errorPaths(res).sort()).toEqual(["clusters.1", "plan", "policySets.1"]);
    expect(error.message).toContain("dc9");
    expect(await m.store.tenants.get("t1")).toBeNull();

    expectError(
      await m.call("PATCH", "/api/v1/tenants/acme", { token: admin, body: { clusters: ["dc1", "dc7"] } }),
      422,
      "KN-422",
      "clusters.1",
    );
    expectError(
      await m.call("PUT", "/api/v1/tenants/acme/plan", { token: admin, body: { plan: "platinum" } }),
      422,
      "KN-422",
      "plan",
    );
    expect((await m.store.tenants.get("acme"))!.version).toBe(1);
    await m.close();
  });

  test("a tenant owner edits names, owners and labels but not placement or policy", async () => {
    const { m } = await world();
    const owner = await m.token("tenantOwner", { tenant: "acme" });
    const edited = await m.call("PATCH", "/api/v1/tenants/acme", {
      token: owner,
      body: {
        displayName: "ACME Corp",
        owners: ["owner@acme", "second@acme"],
        labels: { team: "road-runner" },
      },
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({
      displayName: "ACME Corp",
      owners: ["owner@acme", "second@acme"],
      labels: { team: "road-runner" },
      clusters: ["dc1", "dc2"],
      version: 2,
    });

    const moved = expectError(
      await m.call("PATCH", "/api/v1/tenants/acme", { token: owner, body: { clusters: ["dc1"] } }),
      403,
      "KN-403",
    );
    expect(moved.message).toContain("clusters");
    const policy = expectError(
      await m.call("PATCH", "/api/v1/tenants/acme", { token: owner, body: { policySets: [] } }),
      403,
      "KN-403",
    );
    expect(policy.message).toContain("policySets");
    expectError(
      await m.call("PUT", "/api/v1/tenants/acme/plan", { token: owner, body: { plan: "default" } }),
      403,
      "KN-403",
    );
    // Another tenant's owner does not even learn that acme exists.
    const stranger = await m.token("tenantOwner", { tenant: "globex" });
    expectError(
      await m.call("PATCH", "/api/v1/tenants/acme", { token: stranger, body: { displayName: "x" } }),
      404,
      "KN-404",
    );
    expect((await m.store.tenants.get("acme"))!.clusters).toEqual(["dc1", "dc2"]);
    await m.close();
  });

  test("placement: a cluster hosting a project cannot be removed; an empty one can; PUT plan", async () => {
    const { m, admin } = await world();
    const blocked = await m.call("PATCH", "/api/v1/tenants/acme", {
      token: admin,
      body: { clusters: ["dc2"] },
    });
    const error = expectError(blocked, 409, "KN-409", "clusters");
    expect(error.message).toContain("dc1");
    expect((await m.store.tenants.get("acme"))!.clusters).toEqual(["dc1", "dc2"]);

    const shrunk = await m.call("PATCH", "/api/v1/tenants/acme", {
      token: admin,
      body: { clusters: ["dc1"] },
    });
    expect(shrunk.status).toBe(200);
    expect(shrunk.body.clusters).toEqual(["dc1"]);

    await ok(m, admin)("POST", "/api/v1/plans", { name: "gold", quotas: { cpu: "32" } });
    const planned = await m.call("PUT", "/api/v1/tenants/acme/plan", {
      token: admin,
      body: { plan: "gold" },
    });
    expect(planned.status).toBe(200);
    expect(planned.body.plan).toBe("gold");
    expect(planned.headers.get("etag")).toBe(`"${planned.body.version}"`);
    expect((await m.call("GET", "/api/v1/tenants/acme", { token: admin })).body.plan).toBe("gold");
    // Now gold is in use and default is still used by globex.
    expectError(await m.call("DELETE", "/api/v1/plans/gold", { token: admin }), 409, "KN-409");
    await m.close();
  });

  test("deleting a tenant removes its projects and apps", async () => {
    const { m, admin } = await world();
    expect((await m.call("DELETE", "/api/v1/tenants/acme", { token: admin })).status).toBe(204);
    for (const path of [
      "/api/v1/tenants/acme",
      "/api/v1/tenants/acme/projects",
      "/api/v1/tenants/acme/projects/web",
      `${APPS}/site`,
      `${APPS}/site/revisions`,
    ]) {
      expectError(await m.call("GET", path, { token: admin }), 404, "KN-404");
    }
    expect(await m.store.projects.get("acme", "web")).toBeNull();
    expect(await m.store.appRevisions.get("acme", "web", "site", 1)).toBeNull();
    // globex is untouched.
    expect(
      (await m.call("GET", "/api/v1/tenants/globex/projects/web/apps/site", { token: admin })).status,
    ).toBe(200);
    // The name is free again.
    expect(
      (await m.call("POST", "/api/v1/tenants", { token: admin, body: { name: "acme", clusters: ["dc1"] } }))
        .status,
    ).toBe(201);
    expectError(await m.call("DELETE", "/api/v1/tenants/nope", { token: admin }), 404, "KN-404");
    await m.close();
  });
});

describe("projects", () => {
  test("CRUD; the cluster must be one of the tenant's; reserved names; duplicates", async () => {
    const { m, admin } = await world();
    await ok(m, admin)("POST", "/api/v1/clusters", { name: "dc3", datacenter: "par" });
    const owner = await m.token("tenantOwner", { tenant: "acme" });

    const created = await m.call("POST", "/api/v1/tenants/acme/projects", {
      token: owner,
      body: { name: "api", cluster: "dc2", labels: { team: "core" }, displayName: "API" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      tenant: "acme",
      name: "api",
      cluster: "dc2",
      namespace: "acme-api",
      labels: { team: "core" },
      displayName: "API",
      version: 1,
    });
    expect(created.headers.get("etag")).toBe('"1"');

    const foreign = await m.call("POST", "/api/v1/tenants/acme/projects", {
      token: admin,
      body: { name: "far", cluster: "dc3" },
    });
    expectError(foreign, 422, "KN-422", "cluster");
    expect(await m.store.projects.get("acme", "far")).toBeNull();

    for (const reserved of ["owner", "apps"]) {
      expectError(
        await m.call("POST", "/api/v1/tenants/acme/projects", {
          token: admin,
          body: { name: reserved, cluster: "dc1" },
        }),
        400,
        "KN-400",
        "name",
      );
    }
    expectError(
      await m.call("POST", "/api/v1/tenants/acme/projects", {
        token: admin,
        body: { name: "api", cluster: "dc1" },
      }),
      409,
      "KN-409",
    );
    expectError(
      await m.call("POST", "/api/v1/tenants/nope/projects", {
        token: admin,
        body: { name: "x", cluster: "dc1" },
      }),
      404,
      "KN-404",
    );

    const list = await m.call("GET", "/api/v1/tenants/acme/projects", { token: owner });
    expect(names(list)).toEqual(["api", "web"]);
    expect(names(await m.call("GET", "/api/v1/tenants/acme/projects?cluster=dc2", { token: owner }))).toEqual(
      ["api"],
    );
    expect(
      names(await m.call("GET", "/api/v1/tenants/acme/projects?labelSelector=team%3Dcore", { token: owner })),
    ).toEqual(["api"]);

    const patched = await m.call("PATCH", "/api/v1/tenants/acme/projects/api", {
      token: owner,
      body: { displayName: "Public API", labels: { team: "edge" } },
    });
    expect(patched.body).toMatchObject({ displayName: "Public API", labels: { team: "edge" }, version: 2 });
    expect(patched.headers.get("etag")).toBe('"2"');

    expect((await m.call("DELETE", "/api/v1/tenants/acme/projects/api", { token: owner })).status).toBe(204);
    expectError(await m.call("GET", "/api/v1/tenants/acme/projects/api", { token: owner }), 404, "KN-404");
    await m.close();
  });
});

describe("apps", () => {
  const specWithImage = (image: string) => ({
    components: [{ ...SAMPLE_SPEC.components[0]!, properties: { image, port: 80 } }],
  });

  test("create deploys revision 1; deploy:false leaves it undeployed", async () => {
    const { m, admin } = await world();
    const created = await m.call("POST", APPS, { token: admin, body: { name: "api", spec: SAMPLE_SPEC } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      tenant: "acme",
      project: "web",
      name: "api",
      cluster: "dc1",
      namespace: "acme-web",
      spec: SAMPLE_SPEC,
      revision: 1,
      deployedRevision: 1,
      suspended: false,
      version: 1,
    });
    expect(created.headers.get("etag")).toBe('"1"');

    const draft = await m.call("POST", APPS, {
      token: admin,
      body: { name: "draft", spec: SAMPLE_SPEC, deploy: false },
    });
    expect(draft.status).toBe(201);
    expect(draft.body).toMatchObject({ revision: 1, deployedRevision: null });
    expectError(await m.call("POST", `${APPS}/draft/suspend`, { token: admin }), 409, "KN-409");
    expectError(await m.call("POST", `${APPS}/draft/resume`, { token: admin, body: {} }), 409, "KN-409");
    expectError(
      await m.call("POST", APPS, { token: admin, body: { name: "api", spec: SAMPLE_SPEC } }),
      409,
      "KN-409",
    );
    expect(names(await m.call("GET", APPS, { token: admin }))).toEqual(["api", "draft", "site"]);
    await m.close();
  });

  test("revisions: update, identical update, deploy, suspend/resume, rollback, history and diff", async () => {
    const { m } = await world();
    const dev = await m.token("projectDev", { tenant: "acme", project: "web" });

    const v2 = await m.call("PATCH", `${APPS}/site`, {
      token: dev,
      body: { spec: specWithImage("nginx:1.28") },
    });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ revision: 2, deployedRevision: 2 });

    const same = await m.call("PATCH", `${APPS}/site`, {
      token: dev,
      body: { spec: specWithImage("nginx:1.28") },
    });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ revision: 2, deployedRevision: 2 });
    expect(await m.store.appRevisions.get("acme", "web", "site", 3)).toBeNull();

    const back = await m.call("POST", `${APPS}/site/deploy`, { token: dev, body: { revision: 1 } });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ revision: 2, deployedRevision: 1 });
    expect(back.headers.get("etag")).toBe(`"${back.body.version}"`);
    const latest = await m.call("POST", `${APPS}/site/deploy`, { token: dev });
    expect(latest.body).toMatchObject({ revision: 2, deployedRevision: 2 });
    expectError(
      await m.call("POST", `${APPS}/site/deploy`, { token: dev, body: { revision: 9 } }),
      422,
      "KN-422",
      "revision",
    );

    const suspended = await m.call("POST", `${APPS}/site/suspend`, { token: dev });
    expect(suspended.body.suspended).toBe(true);
    const resumed = await m.call("POST", `${APPS}/site/resume`, { token: dev, body: {} });
    expect(resumed.body.suspended).toBe(false);

    const rolled = await m.call("POST", `${APPS}/site/rollback`, { token: dev, body: { revision: 1 } });
    expect(rolled.status).toBe(200);
    expect(rolled.body).toMatchObject({ revision: 3, deployedRevision: 3, spec: SAMPLE_SPEC });
    expectError(
      await m.call("POST", `${APPS}/site/rollback`, { token: dev, body: { revision: 42 } }),
      422,
      "KN-422",
      "revision",
    );

    const history = await m.call("GET", `${APPS}/site/revisions`, { token: dev });
    expect(history.status).toBe(200);
    expect(history.body.items.map((r: { revision: number }) => r.revision)).toEqual([3, 2, 1]);
    expect(history.body.nextCursor).toBeNull();
    const [r3, r2, r1] = history.body.items;
    expect(r3.spec).toEqual(r1.spec);
    expect(r3.note).toMatch(/rollback/);
    expect(r3.note).toContain("1");
    expect(r1.note).toBeNull();
    expect(r2.createdBy).toBe("projectDev@acme/web");
    expect(r1.createdBy).toBe("admin");

    const first = await m.call("GET", `${APPS}/site/revisions?limit=2`, { token: dev });
    expect(first.body.items.map((r: { revision: number }) => r.revision)).toEqual([3, 2]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await m.call(
      "GET",
      `${APPS}/site/revisions?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      { token: dev },
    );
    expect(second.body.items.map((r: { revision: number }) => r.revision)).toEqual([1]);
    expect(second.body.nextCursor).toBeNull();

    const diff = await m.call("GET", `${APPS}/site/diff?from=1&to=2`, { token: dev });
    expect(diff.status).toBe(200);
    expect(diff.body).toEqual({
      from: 1,
      to: 2,
      changes: [
        { op: "replace", path: "/components/0/properties/image", from: "nginx:1.27", value: "nginx:1.28" },
      ],
    });
    expect((await m.call("GET", `${APPS}/site/diff?from=1&to=3`, { token: dev })).body.changes).toEqual([]);
    const missing = await m.call("GET", `${APPS}/site/diff?from=1&to=7`, { token: dev });
    expectError(missing, 422, "KN-422", "to");
    await m.close();
  });

  test("diff paths are RFC 6901 pointers (escaped '/' and '~', adds and removes)", async () => {
    const { m, admin } = await world();
    const spec2 = {
      components: [
        {
          ...SAMPLE_SPEC.components[0]!,
          properties: { image: "nginx:1.27", "a/b~c": 1 },
          traits: [],
        },
        { name: "worker", type: "worker" },
      ],
    };
    await ok(m, admin)("PATCH", `${APPS}/site`, { spec: spec2 });
    const diff = await m.call("GET", `${APPS}/site/diff?from=1&to=2`, { token: admin });
    const paths = diff.body.changes.map((c: { op: string; path: string }) => `${c.op} ${c.path}`).sort();
    expect(paths).toEqual(
      [
        "add /components/0/properties/a~1b~0c",
        "remove /components/0/properties/port",
        "remove /components/0/traits/0",
        "add /components/1",
      ].sort(),
    );
    await m.close();
  });

  test("status is empty until the cluster reports, then shows the mirrored report", async () => {
    const { m, admin } = await world();
    const empty = await m.call("GET", `${APPS}/site/status`, { token: admin });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      cluster: "dc1",
      phase: null,
      observedGeneration: null,
      observedRevision: null,
      report: null,
      updatedAt: null,
    });
    const dc1 = (await m.store.clusters.get("dc1"))!;
    const updatedAt = "2030-01-02T03:04:05.000Z";
    await m.store.statusMirror.upsert({
      clusterId: dc1.id,
      kind: "app",
      key: "acme/web/site",
      observedGeneration: 3,
      body: { phase: "Deployed", revision: 1 },
      updatedAt,
    });
    const reported = await m.call("GET", `${APPS}/site/status`, { token: admin });
    expect(reported.body).toEqual({
      cluster: "dc1",
      phase: "Deployed",
      observedGeneration: 3,
      observedRevision: 1,
      report: { phase: "Deployed", revision: 1 },
      updatedAt,
    });
    // Another tenant's app with the same project/app names is not confused with it.
    const globex = await m.call("GET", "/api/v1/tenants/globex/projects/web/apps/site/status", {
      token: admin,
    });
    expect(globex.body.phase).toBeNull();
    await m.close();
  });

  test("a policy set's allowedComponentTypes refuses other component types (422 naming the component)", async () => {
    const { m, admin } = await world();
    await ok(m, admin)("POST", "/api/v1/policysets", {
      name: "web-only",
      allowedComponentTypes: ["webservice"],
    });
    await ok(m, admin)("PATCH", "/api/v1/tenants/acme", { policySets: ["web-only"] });
    const spec = {
      components: [
        { name: "ok", type: "webservice" },
        { name: "job", type: "cron-task" },
      ],
    };
    const refused = await m.call("POST", APPS, { token: admin, body: { name: "mixed", spec } });
    const error = expectError(refused, 422, "KN-422", "spec.components.1.type");
    expect(error.message).toContain("cron-task");
    expect(await m.store.apps.get("acme", "web", "mixed")).toBeNull();
    expectError(
      await m.call("PATCH", `${APPS}/site`, {
        token: admin,
        body: { spec: { components: [{ name: "x", type: "worker" }] } },
      }),
      422,
      "KN-422",
      "spec.components.0.type",
    );
    expect((await m.store.apps.get("acme", "web", "site"))!.revision).toBe(1);
    // The same spec is fine for globex, which has no such policy set.
    expect(
      (
        await m.call("POST", "/api/v1/tenants/globex/projects/web/apps", {
          token: admin,
          body: { name: "mixed", spec },
        })
      ).status,
    ).toBe(201);
    // A project-level policy set restricts that project too.
    await ok(m, admin)("PATCH", "/api/v1/tenants/globex/projects/web", { policySets: ["web-only"] });
    expectError(
      await m.call("POST", "/api/v1/tenants/globex/projects/web/apps", {
        token: admin,
        body: { name: "m2", spec },
      }),
      422,
      "KN-422",
      "spec.components.1.type",
    );
    await m.close();
  });

  test("delete removes the app and its revisions", async () => {
    const { m, admin } = await world();
    expect((await m.call("DELETE", `${APPS}/site`, { token: admin })).status).toBe(204);
    expectError(await m.call("GET", `${APPS}/site`, { token: admin }), 404, "KN-404");
    expect(await m.store.appRevisions.get("acme", "web", "site", 1)).toBeNull();
    expectError(await m.call("DELETE", `${APPS}/site`, { token: admin }), 404, "KN-404");
    await m.close();
  });
});

describe("conventions", () => {
  test("ETag / If-Match: stale → 412, current → 200 with a new ETag, malformed → 400", async () => {
    const { m, admin } = await world();
    const got = await m.call("GET", "/api/v1/tenants/acme", { token: admin });
    expect(got.headers.get("etag")).toBe(`"${got.body.version}"`);
    const etag = got.headers.get("etag")!;

    const first = await m.call("PATCH", "/api/v1/tenants/acme", {
      token: admin,
      body: { displayName: "one" },
      headers: { "if-match": etag },
    });
    expect(first.status).toBe(200);
    const newEtag = first.headers.get("etag")!;
    expect(newEtag).toBe(`"${first.body.version}"`);
    expect(newEtag).not.toBe(etag);

    const stale = await m.call("PATCH", "/api/v1/tenants/acme", {
      token: admin,
      body: { displayName: "two" },
      headers: { "if-match": etag },
    });
    expectError(stale, 412, "KN-412");
    expect((await m.store.tenants.get("acme"))!.displayName).toBe("one");

    for (const bad of ["3", "abc", '"x"', '"1", "2"']) {
      expectError(
        await m.call("PATCH", "/api/v1/tenants/acme", {
          token: admin,
          body: { displayName: "three" },
          headers: { "if-match": bad },
        }),
        400,
        "KN-400",
        "header.if-match",
      );
    }
    expect(
      (
        await m.call("PATCH", "/api/v1/tenants/acme", {
          token: admin,
          body: { displayName: "any" },
          headers: { "if-match": "*" },
        })
      ).status,
    ).toBe(200);

    // The same rules on every kind that has versions.
    const stalePaths: Array<[string, string, unknown]> = [
      ["PATCH", "/api/v1/clusters/dc1", { displayName: "x" }],
      ["PATCH", "/api/v1/plans/default", { displayName: "x" }],
      ["PATCH", "/api/v1/policysets/baseline", { description: "x" }],
      ["PATCH", "/api/v1/tenants/acme/projects/web", { displayName: "x" }],
      ["PATCH", `${APPS}/site`, { labels: { a: "b" } }],
      ["PUT", "/api/v1/tenants/acme/plan", { plan: "default" }],
      ["POST", `${APPS}/site/suspend`, undefined],
      ["POST", `${APPS}/site/rollback`, { revision: 1 }],
    ];
    for (const [method, path, body] of stalePaths) {
      const res = await m.call(method, path, { token: admin, body, headers: { "if-match": '"99"' } });
      expectError(res, 412, "KN-412");
    }
    const app = await m.call("GET", `${APPS}/site`, { token: admin });
    const current = await m.call("POST", `${APPS}/site/suspend`, {
      token: admin,
      headers: { "if-match": app.headers.get("etag")! },
    });
    expect(current.status).toBe(200);
    expect(current.headers.get("etag")).toBe(`"${app.body.version + 1}"`);

    for (const path of [
      "/api/v1/tenants/globex",
      "/api/v1/tenants/acme/projects/web",
      `${APPS}/site`,
      "/api/v1/plans/default",
    ]) {
      const res = await m.call("DELETE", path, { token: admin, headers: { "if-match": '"99"' } });
      expect([409, 412], path).toContain(res.status);
      if (path !== "/api/v1/plans/default") expectError(res, 412, "KN-412");
    }
    expect(await m.store.tenants.get("globex")).not.toBeNull();
    expect(await m.store.apps.get("acme", "web", "site")).not.toBeNull();
    const fresh = await m.call("GET", "/api/v1/tenants/globex", { token: admin });
    expect(
      (
        await m.call("DELETE", "/api/v1/tenants/globex", {
          token: admin,
          headers: { "if-match": fresh.headers.get("etag")! },
        })
      ).status,
    ).toBe(204);
    await m.close();
  });

  test("Idempotency-Key: a retry replays the first response; another body is a 422; callers are independent", async () => {
    const { m, admin } = await world();
    const body = { name: "initech", clusters: ["dc1"] };
    const headers = { "idempotency-key": "create-initech-1" };
    const first = await m.call("POST", "/api/v1/tenants", { token: admin, body, headers });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const again = await m.call("POST", "/api/v1/tenants", { token: admin, body, headers });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.body.createdAt).toBe(first.body.createdAt);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("etag")).toBe('"1"');
    expect(again.headers.get("etag")).toBe(first.headers.get("etag"));
    const rows = await m.store.tenants.list({ limit: 100, where: (t) => t.name === "initech" });
    expect(rows.items).toHaveLength(1);
    const audits = await m.store.audit.list({}, { limit: 100 });
    expect(audits.items.filter((a) => a.resource === "tenants/initech")).toHaveLength(1);

    const changed = await m.call("POST", "/api/v1/tenants", {
      token: admin,
      body: { name: "initech", clusters: ["dc2"] },
      headers,
    });
    expectError(changed, 422, "KN-422", "header.idempotency-key");

    // Another caller's identical key is its own.
    const other = await m.token("admin", { subject: "second-admin" });
    const theirs = await m.call("POST", "/api/v1/tenants", {
      token: other,
      body: { name: "umbrella", clusters: ["dc2"] },
      headers,
    });
    expect(theirs.status).toBe(201);
    expect(theirs.body.name).toBe("umbrella");
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();

    // Without a key, a repeat is an ordinary duplicate.
    expectError(await m.call("POST", "/api/v1/tenants", { token: admin, body }), 409, "KN-409");
    // An unusable key is named.
    expectError(
      await m.call("POST", "/api/v1/tenants", {
        token: admin,
        body: { name: "x1", clusters: ["dc1"] },
        headers: { "idempotency-key": "has space" },
      }),
      400,
      "KN-400",
      "header.idempotency-key",
    );
    await m.close();
  });

  test("cursor pagination: full pages, no duplicates, null cursor at the end; bad cursors and limits", async () => {
    const m = await createTestManager();
    const admin = await m.token("admin");
    await ok(m, admin)("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" });
    const created = ["t7", "t3", "t1", "t5", "t2", "t6", "t4"];
    for (const name of created) await ok(m, admin)("POST", "/api/v1/tenants", { name, clusters: ["dc1"] });

    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `limit=3&cursor=${encodeURIComponent(cursor)}` : "limit=3";
      const res = await m.call("GET", `/api/v1/tenants?${query}`, { token: admin });
      expect(res.status).toBe(200);
      pages.push(names(res));
      cursor = res.body.nextCursor;
      expect(pages.length).toBeLessThan(10);
    } while (cursor !== null);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual([...created].sort());

    for (const bad of ["!!!", "abc", "eyJ4IjoxfQ"]) {
      const res = await m.call("GET", `/api/v1/tenants?cursor=${encodeURIComponent(bad)}`, { token: admin });
      expectError(res, 400, "KN-400");
      expect(errorPaths(res).some((p) => p.endsWith("cursor"))).toBe(true);
    }
    for (const limit of ["0", "501", "abc", "-1", "1.5"]) {
      expectError(
        await m.call("GET", `/api/v1/tenants?limit=${limit}`, { token: admin }),
        400,
        "KN-400",
        "query.limit",
      );
    }
    expect(names(await m.call("GET", "/api/v1/tenants?limit=500", { token: admin }))).toHaveLength(7);
    await m.close();
  });

  test("unknown routes and query parameters", async () => {
    const { m, admin } = await world();
    expectError(await m.call("GET", "/api/v1/nothing-here", { token: admin }), 404, "KN-404");
    expectError(await m.call("GET", "/nothing-here"), 404, "KN-404");
    expectError(
      await m.call("GET", "/api/v1/tenants?colour=red", { token: admin }),
      400,
      "KN-400",
      "query.colour",
    );
    await m.close();
  });
});

describe("audit", () => {
  test("every mutating call writes one audit row with actor, action and the response's request id", async () => {
    const { m, admin } = await world();
    const seeded = await m.store.audit.list({}, { limit: 100 });
    expect(seeded.items.map((a) => a.action).sort()).toEqual(
      [
        "app.create",
        "app.create",
        "cluster.create",
        "cluster.create",
        "plan.create",
        "policyset.create",
        "project.create",
        "project.create",
        "tenant.create",
        "tenant.create",
      ].sort(),
    );

    const owner = await m.token("tenantOwner", { tenant: "acme", subject: "wile@acme" });
    const calls: Array<[string, string, string, unknown, string]> = [
      [admin, "POST", "/api/v1/tenants", { name: "initech", clusters: ["dc1"] }, "tenant.create"],
      [owner, "PATCH", "/api/v1/tenants/acme", { displayName: "ACME" }, "tenant.update"],
      [admin, "PUT", "/api/v1/tenants/acme/plan", { plan: "default" }, "tenant.plan"],
      [owner, "POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc2" }, "project.create"],
      [owner, "PATCH", `${APPS}/site`, { labels: { a: "b" } }, "app.update"],
      [owner, "POST", `${APPS}/site/suspend`, undefined, "app.suspend"],
      [owner, "POST", `${APPS}/site/rollback`, { revision: 1 }, "app.rollback"],
      [owner, "DELETE", `${APPS}/site`, undefined, "app.delete"],
      [admin, "PATCH", "/api/v1/plans/default", { displayName: "Default" }, "plan.update"],
      [admin, "PATCH", "/api/v1/clusters/dc1", { displayName: "FRA" }, "cluster.update"],
      [admin, "POST", "/api/v1/tokens", { role: "readOnly", ttlSeconds: 60 }, "token.issue"],
      [admin, "DELETE", "/api/v1/tenants/initech", undefined, "tenant.delete"],
    ];
    for (const [token, method, path, body, action] of calls) {
      const before = (await m.store.audit.list({}, { limit: 500 })).items.length;
      const res = await m.call(method, path, { token, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(res.body)}`).toBeLessThan(300);
      const after = await m.store.audit.list({}, { limit: 500 });
      expect(after.items.length, action).toBe(before + 1);
      const newest = after.items[0]!;
      expect(newest.action).toBe(action);
      expect(newest.requestId).toBe(res.headers.get("x-request-id")!);
      expect(newest.actor).toBe(token === owner ? "wile@acme" : "admin");
      expect(newest.role).toBe(token === owner ? "tenantOwner" : "admin");
    }

    // A client-chosen request id is carried into the audit row.
    const traced = await m.call("POST", "/api/v1/plans", {
      token: admin,
      body: { name: "gold" },
      headers: { "x-request-id": "trace-abc-123" },
    });
    expect(traced.headers.get("x-request-id")).toBe("trace-abc-123");
    expect((await m.store.audit.list({}, { limit: 1 })).items[0]).toMatchObject({
      action: "plan.create",
      resource: "plans/gold",
      requestId: "trace-abc-123",
    });

    // Reads and refused writes leave no trace.
    const count = (await m.store.audit.list({}, { limit: 500 })).items.length;
    await m.call("GET", "/api/v1/tenants", { token: admin });
    await m.call("POST", "/api/v1/tenants", { token: admin, body: { name: "x", clusters: ["dc9"] } });
    await m.call("PATCH", "/api/v1/tenants/acme", { token: owner, body: { clusters: ["dc1"] } });
    expect((await m.store.audit.list({}, { limit: 500 })).items.length).toBe(count);

    const listed = await m.call("GET", "/api/v1/audit?limit=5", { token: admin });
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(5);
    expect(listed.body.items[0]).toMatchObject({
      action: "plan.create",
      actor: "admin",
      requestId: "trace-abc-123",
    });
    expect(listed.body.nextCursor).toEqual(expect.any(String));
    const byActor = await m.call("GET", "/api/v1/audit?actor=wile%40acme&limit=100", { token: admin });
    expect(byActor.body.items.length).toBe(6);
    expect(byActor.body.items.every((a: { actor: string }) => a.actor === "wile@acme")).toBe(true);
    const byTenant = await m.call("GET", "/api/v1/audit?tenant=globex&limit=100", { token: admin });
    expect(byTenant.body.items.every((a: { tenant: string }) => a.tenant === "globex")).toBe(true);
    expect(byTenant.body.items.length).toBeGreaterThan(0);
    expectError(await m.call("GET", "/api/v1/audit", { token: owner }), 403, "KN-403");
    await m.close();
  });
});

describe("identity", () => {
  test("GET /me answers each role with its scope", async () => {
    const m = await createTestManager();
    const cases = [
      { role: "admin", scope: {}, expected: { role: "admin", tenant: null, project: null } },
      { role: "ops", scope: {}, expected: { role: "ops", tenant: null, project: null } },
      { role: "readOnly", scope: {}, expected: { role: "readOnly", tenant: null, project: null } },
      {
        role: "tenantOwner",
        scope: { tenant: "acme" },
        expected: { role: "tenantOwner", tenant: "acme", project: null },
      },
      {
        role: "projectDev",
        scope: { tenant: "acme", project: "web" },
        expected: { role: "projectDev", tenant: "acme", project: "web" },
      },
    ] as const;
    for (const { role, scope, expected } of cases) {
      const token = await m.token(role, { ...scope, subject: `${role}-user` });
      const res = await m.call("GET", "/api/v1/me", { token });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ...expected, subject: `${role}-user` });
      expect(Date.parse(res.body.expiresAt)).toBeGreaterThan(Date.now());
    }
    await m.close();
  });

  test("POST /tokens issues tokens only within the caller's authority", async () => {
    const { m, admin } = await world();
    const issued = await m.call("POST", "/api/v1/tokens", {
      token: admin,
      body: { role: "tenantOwner", tenant: "acme", subject: "roadrunner@acme", ttlSeconds: 600 },
    });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ role: "tenantOwner", tenant: "acme", project: null });
    const expiresIn = Date.parse(issued.body.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(590_000);
    expect(expiresIn).toBeLessThanOrEqual(601_000);
    const token: string = issued.body.token;

    const me = await m.call("GET", "/api/v1/me", { token });
    expect(me.body).toMatchObject({
      subject: "roadrunner@acme",
      role: "tenantOwner",
      tenant: "acme",
      project: null,
      expiresAt: issued.body.expiresAt,
    });
    expect((await m.call("GET", "/api/v1/tenants/acme", { token })).status).toBe(200);
    expectError(await m.call("GET", "/api/v1/tenants/globex", { token }), 404, "KN-404");
    expectError(
      await m.call("GET", "/api/v1/tenants/globex/projects/web/apps/site", { token }),
      404,
      "KN-404",
    );

    // The tenant owner hands out narrower tokens, but nothing wider or foreign.
    const dev = await m.call("POST", "/api/v1/tokens", {
      token,
      body: { role: "projectDev", tenant: "acme", project: "web", ttlSeconds: 300 },
    });
    expect(dev.status).toBe(201);
    const devMe = await m.call("GET", "/api/v1/me", { token: dev.body.token });
    expect(devMe.body).toMatchObject({
      role: "projectDev",
      tenant: "acme",
      project: "web",
      subject: "roadrunner@acme",
    });

    expectError(
      await m.call("POST", "/api/v1/tokens", { token, body: { role: "admin", ttlSeconds: 60 } }),
      403,
      "KN-403",
    );
    expectError(
      await m.call("POST", "/api/v1/tokens", {
        token,
        body: { role: "tenantOwner", tenant: "globex", ttlSeconds: 60 },
      }),
      403,
      "KN-403",
    );
    const outlives = expectError(
      await m.call("POST", "/api/v1/tokens", {
        token,
        body: { role: "readOnly", tenant: "acme", ttlSeconds: 3600 },
      }),
      403,
      "KN-403",
    );
    expect(outlives.message).toContain("outlive");
    expectError(
      await m.call("POST", "/api/v1/tokens", {
        token: admin,
        body: { role: "tenantOwner", ttlSeconds: 600 },
      }),
      403,
      "KN-403",
    );
    await m.close();
  });
});

describe("authentication", () => {
  test("missing, garbage, wrongly-signed and expired tokens are 401s", async () => {
    let now = new Date("2031-05-01T12:00:00Z");
    const m = await createTestManager({ now: () => now });
    const missing = await m.call("GET", "/api/v1/tenants");
    expectError(missing, 401, "KN-401");
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="kubenova"');

    for (const authorization of ["Bearer garbage", "Bearer a.b.c", "Basic YWRtaW46YWRtaW4=", "Bearer"]) {
      const res = await m.call("GET", "/api/v1/tenants", { headers: { authorization } });
      expectError(res, 401, "KN-401");
      // RFC 9110 §11.6.1: every 401 carries a challenge; RFC 6750 §3.1 says why the token was refused.
      expect(res.headers.get("www-authenticate"), authorization).toContain('error="invalid_token"');
    }

    const token = await m.token("admin", { ttlSeconds: 600 });
    // Same claims, another signature.
    const [header, payload] = token.split(".");
    const forged = `${header}.${payload}.${Buffer.from("x".repeat(32)).toString("base64url")}`;
    expectError(await m.call("GET", "/api/v1/tenants", { token: forged }), 401, "KN-401");

    expect((await m.call("GET", "/api/v1/tenants", { token })).status).toBe(200);
    now = new Date(now.getTime() + 601_000 + 5 * 60_000);
    const expired = await m.call("GET", "/api/v1/tenants", { token });
    expectError(expired, 401, "KN-401");
    expect(expired.body.error.message).toMatch(/expire/);
    await m.close();
  });

  test("X-KN-Roles is ignored unless insecure dev auth is on, which warns in the log", async () => {
    const m = await createTestManager();
    expectError(await m.call("GET", "/api/v1/me", { headers: { "x-kn-roles": "admin" } }), 401, "KN-401");
    expectError(
      await m.call("POST", "/api/v1/clusters", {
        headers: { "x-kn-roles": "admin" },
        body: { name: "dc1", datacenter: "fra" },
      }),
      401,
      "KN-401",
    );
    expect(await m.store.clusters.get("dc1")).toBeNull();
    expect(m.logs.some((l) => /insecure/i.test(String(l.msg)))).toBe(false);
    await m.close();

    const dev = await createTestManager({ insecureDevAuth: true });
    expect(dev.logs.some((l) => l.level === "warn" && /insecure/i.test(String(l.msg)))).toBe(true);
    const me = await dev.call("GET", "/api/v1/me", {
      headers: { "x-kn-roles": "tenantOwner; tenant=acme", "x-kn-subject": "dev-user" },
    });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ role: "tenantOwner", tenant: "acme", subject: "dev-user" });
    expectError(await dev.call("GET", "/api/v1/me", { headers: { "x-kn-roles": "emperor" } }), 401, "KN-401");
    expectError(await dev.call("GET", "/api/v1/me"), 401, "KN-401");
    await dev.close();
  });
});

describe("health and docs", () => {
  test("/healthz and /readyz; readiness fails cleanly when the store is gone", async () => {
    const m = await createTestManager();
    const health = await m.call("GET", "/healthz");
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: "ok", version: "test" });
    const ready = await m.call("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe("ready");

    await m.store.close();
    const notReady = await m.call("GET", "/readyz");
    expect(notReady.status).toBe(503);
    expect(notReady.body.status).toBe("not_ready");
    expect(notReady.body.checks.store.ok).toBe(false);
    expect(notReady.body.checks.store.message).toEqual(expect.any(String));
    expect((await m.call("GET", "/healthz")).status).toBe(200);
    const admin = await m.token("admin");
    expectError(await m.call("GET", "/api/v1/tenants", { token: admin }), 503, "KN-503");
  });

  test("/docs is self-hosted: it loads /docs/scalar.js and no CDN script", async () => {
    const m = await createTestManager();
    const docs = await m.call("GET", "/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toContain("text/html");
    const html = String(docs.body);
    expect(html).toContain("/docs/scalar.js");
    expect(html).toContain("/openapi.json");
    const scripts = [...html.matchAll(/<script[^>]*\bsrc\s*=\s*["']([^"']+)["']/gi)].map((s) => s[1]!);
    expect(scripts).toContain("/docs/scalar.js");
    for (const src of scripts) expect(src).not.toMatch(/^(https?:)?\/\//);
    expect(html).not.toMatch(/<script[^>]*src=["']https?:\/\//i);

    const script = await m.app.request("/docs/scalar.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^(application|text)\/javascript/);
    expect((await script.text()).length).toBeGreaterThan(10_000);
    await m.close();
  });
});
