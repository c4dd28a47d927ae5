/**
 * The per-cluster change log (DESIGN.md §3): every API call that changes intent appends the affected clusters'
 * desired objects in the same transaction as the change itself, with revisions that grow by one per cluster.
 */
import { describe, expect, test } from "bun:test";
import type { ChangeRow, StoreTx } from "../../manager/store/store.ts";
import { DesiredApp, DesiredTenant } from "../../shared/desired.ts";
import { expectError } from "./expect-error.ts";
import { createTestManager, SAMPLE_SPEC, type TestManager } from "./harness.ts";

const APPS = "/api/v1/tenants/acme/projects/web/apps";

/** A manager with clusters dc1, dc2, dc3 and a `default` plan; no tenants yet, so every log is empty. */
async function platform() {
  const m = await createTestManager();
  const admin = await m.token("admin");
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await m.call(method, path, { token: admin, body });
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  for (const [name, datacenter] of [
    ["dc1", "fra"],
    ["dc2", "ams"],
    ["dc3", "par"],
  ] as const) {
    await call("POST", "/api/v1/clusters", { name, datacenter });
  }
  await call("POST", "/api/v1/plans", { name: "default", quotas: { cpu: "4", memory: "8Gi", pods: 50 } });
  return { m, admin, call };
}

/** Every change held for a cluster (by name), checking revisions run 1, 2, 3, … without gaps. */
async function changes(m: TestManager, cluster: string): Promise<ChangeRow[]> {
  const row = await m.store.clusters.get(cluster);
  if (!row) throw new Error(`no cluster ${cluster}`);
  const rows = await m.store.changeLog.list(row.id, { afterRevision: 0, limit: 1000 });
  expect(rows.map((r) => r.revision)).toEqual(rows.map((_, i) => i + 1));
  for (const r of rows) expect(r.clusterId).toBe(row.id);
  expect(await m.store.changeLog.latestRevision(row.id)).toBe(rows.length);
  return rows;
}

/** The changes a step appended to a cluster's log. */
async function appendedBy(
  m: TestManager,
  cluster: string,
  step: () => Promise<unknown>,
): Promise<ChangeRow[]> {
  const before = (await changes(m, cluster)).length;
  await step();
  return (await changes(m, cluster)).slice(before);
}

/** What each named cluster got from one step. */
async function appendedTo(
  m: TestManager,
  clusters: string[],
  step: () => Promise<unknown>,
): Promise<Record<string, ChangeRow[]>> {
  const before: Record<string, number> = {};
  for (const c of clusters) before[c] = (await changes(m, c)).length;
  await step();
  const out: Record<string, ChangeRow[]> = {};
  for (const c of clusters) out[c] = (await changes(m, c)).slice(before[c]);
  return out;
}

const summary = (rows: ChangeRow[]) => rows.map((r) => `${r.op} ${r.kind} ${r.key}`);

describe("change log", () => {
  test("a new tenant is an upsert on each of its clusters with its plan's quotas", async () => {
    const { m, call } = await platform();
    const got = await appendedTo(m, ["dc1", "dc2", "dc3"], () =>
      call("POST", "/api/v1/tenants", {
        name: "acme",
        displayName: "ACME",
        owners: ["owner@acme"],
        clusters: ["dc1", "dc2"],
        labels: { tier: "gold" },
      }),
    );
    expect(got.dc3).toEqual([]);
    for (const cluster of ["dc1", "dc2"]) {
      const rows = got[cluster]!;
      expect(summary(rows)).toEqual(["upsert tenant acme"]);
      const body = DesiredTenant.parse(rows[0]!.body);
      expect(body).toEqual({
        name: "acme",
        displayName: "ACME",
        owners: ["owner@acme"],
        labels: { tier: "gold" },
        plan: {
          name: "default",
          quotas: { cpu: "4", memory: "8Gi", pods: 50 },
          limitRange: null,
          allowLoadBalancers: false,
        },
        projects: [],
      });
      expect(rows[0]!.createdAt).toEqual(expect.any(String));
    }
    await m.close();
  });

  test("a project adds itself to the tenant object on its own cluster only", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"] });
    const got = await appendedTo(m, ["dc1", "dc2"], () =>
      call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1", labels: { team: "web" } }),
    );
    expect(got.dc2).toEqual([]);
    expect(summary(got.dc1!)).toEqual(["upsert tenant acme"]);
    expect(DesiredTenant.parse(got.dc1![0]!.body).projects).toEqual([
      { name: "web", namespace: "acme-web", labels: { team: "web" } },
    ]);

    const second = await appendedTo(m, ["dc1", "dc2"], () =>
      call("POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc2" }),
    );
    expect(second.dc1).toEqual([]);
    // dc2 sees only the projects that live on dc2.
    expect(DesiredTenant.parse(second.dc2![0]!.body).projects.map((p) => p.namespace)).toEqual(["acme-api"]);

    const removed = await appendedTo(m, ["dc1", "dc2"], () =>
      call("DELETE", "/api/v1/tenants/acme/projects/web"),
    );
    expect(removed.dc2).toEqual([]);
    expect(summary(removed.dc1!)).toEqual(["upsert tenant acme"]);
    expect(DesiredTenant.parse(removed.dc1![0]!.body).projects).toEqual([]);
    await m.close();
  });

  test("apps: deployed revision with platform traits merged; undeployed apps send nothing", async () => {
    const { m, call } = await platform();
    await call("PATCH", "/api/v1/plans/default", {
      traits: [{ type: "scaler", properties: { replicas: 5 } }],
      policies: [{ name: "residency", type: "topology", properties: { clusters: ["local"] } }],
    });
    await call("POST", "/api/v1/policysets", {
      name: "edge",
      traits: [{ type: "gateway", properties: { class: "internal" } }],
    });
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"], policySets: ["edge"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });

    const spec = {
      components: [
        {
          name: "frontend",
          type: "webservice",
          properties: { image: "nginx:1.27" },
          traits: [
            { type: "scaler", properties: { replicas: 2 } },
            { type: "expose", properties: { port: 80 } },
          ],
        },
      ],
    };
    const created = await appendedTo(m, ["dc1", "dc2"], () =>
      call("POST", APPS, { name: "site", spec, labels: { app: "site" } }),
    );
    expect(created.dc2).toEqual([]);
    expect(summary(created.dc1!)).toEqual(["upsert app acme/web/site"]);
    const body = DesiredApp.parse(created.dc1![0]!.body);
    expect(body).toMatchObject({
      tenant: "acme",
      project: "web",
      namespace: "acme-web",
      name: "site",
      labels: { app: "site" },
      revision: 1,
      suspended: false,
    });
    // The plan's scaler replaces the app's own; the policy set's gateway is added; the app's expose stays.
    expect(body.spec.components[0]!.traits).toEqual([
      { type: "expose", properties: { port: 80 } },
      { type: "scaler", properties: { replicas: 5 } },
      { type: "gateway", properties: { class: "internal" } },
    ]);
    expect(body.spec.policies).toEqual([
      { name: "residency", type: "topology", properties: { clusters: ["local"] } },
    ]);
    expect(body.spec.components[0]!.properties).toEqual({ image: "nginx:1.27" });
    // What the user stored is untouched by the merge.
    expect((await m.call("GET", `${APPS}/site`, { token: await m.token("admin") })).body.spec).toEqual(spec);

    // A policy set's trait of the same type beats the plan's.
    const override = await appendedBy(m, "dc1", () =>
      call("PATCH", "/api/v1/policysets/edge", {
        traits: [
          { type: "gateway", properties: { class: "internal" } },
          { type: "scaler", properties: { replicas: 9 } },
        ],
      }),
    );
    expect(summary(override)).toEqual(["upsert tenant acme", "upsert app acme/web/site"]);
    expect(DesiredApp.parse(override[1]!.body).spec.components[0]!.traits).toEqual([
      { type: "expose", properties: { port: 80 } },
      { type: "scaler", properties: { replicas: 9 } },
      { type: "gateway", properties: { class: "internal" } },
    ]);

    const draft = await appendedTo(m, ["dc1", "dc2"], () =>
      call("POST", APPS, { name: "draft", spec: SAMPLE_SPEC, deploy: false }),
    );
    expect(draft).toEqual({ dc1: [], dc2: [] });
    const draftEdit = await appendedBy(m, "dc1", () =>
      call("PATCH", `${APPS}/draft`, {
        spec: { components: [{ name: "a", type: "worker" }] },
        deploy: false,
      }),
    );
    expect(draftEdit).toEqual([]);
    const deployed = await appendedBy(m, "dc1", () => call("POST", `${APPS}/draft/deploy`, { revision: 1 }));
    expect(summary(deployed)).toEqual(["upsert app acme/web/draft"]);
    expect(DesiredApp.parse(deployed[0]!.body)).toMatchObject({ revision: 1 });
    expect(DesiredApp.parse(deployed[0]!.body).spec.components[0]!.name).toBe("frontend");
    await m.close();
  });

  test("app revisions, suspend/resume, rollback and delete each append one app change", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
    await call("POST", APPS, { name: "site", spec: SAMPLE_SPEC });

    const v2spec = {
      components: [{ name: "frontend", type: "webservice", properties: { image: "nginx:1.28" } }],
    };
    const steps: Array<[string, () => Promise<unknown>, Record<string, unknown> | null, string]> = [
      [
        "update",
        () => call("PATCH", `${APPS}/site`, { spec: v2spec }),
        { revision: 2, suspended: false },
        "upsert",
      ],
      ["suspend", () => call("POST", `${APPS}/site/suspend`), { revision: 2, suspended: true }, "upsert"],
      ["resume", () => call("POST", `${APPS}/site/resume`), { revision: 2, suspended: false }, "upsert"],
      ["deploy 1", () => call("POST", `${APPS}/site/deploy`, { revision: 1 }), { revision: 1 }, "upsert"],
      ["rollback", () => call("POST", `${APPS}/site/rollback`, { revision: 2 }), { revision: 3 }, "upsert"],
      ["delete", () => call("DELETE", `${APPS}/site`), null, "delete"],
    ];
    for (const [label, step, expected, op] of steps) {
      const rows = await appendedBy(m, "dc1", step);
      expect(summary(rows), label).toEqual([`${op} app acme/web/site`]);
      if (expected === null) {
        expect(rows[0]!.body, label).toBeNull();
      } else {
        const body = DesiredApp.parse(rows[0]!.body);
        expect(body, label).toMatchObject(expected);
        const image = body.revision === 1 ? "nginx:1.27" : "nginx:1.28";
        expect(body.spec.components[0]!.properties?.image, label).toBe(image);
      }
    }
    // An identical spec is no change and sends nothing.
    await call("POST", APPS, { name: "again", spec: SAMPLE_SPEC });
    expect(await appendedBy(m, "dc1", () => call("PATCH", `${APPS}/again`, { spec: SAMPLE_SPEC }))).toEqual(
      [],
    );
    // Deleting an app that was never deployed has nothing to remove from the cluster.
    await call("POST", APPS, { name: "draft", spec: SAMPLE_SPEC, deploy: false });
    expect(await appendedBy(m, "dc1", () => call("DELETE", `${APPS}/draft`))).toEqual([]);
    await m.close();
  });

  test("a plan update fans out to every tenant on it, on every cluster, with their apps", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/plans", { name: "gold", quotas: { cpu: "64" } });
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"] });
    await call("POST", "/api/v1/tenants", { name: "globex", clusters: ["dc1"] });
    await call("POST", "/api/v1/tenants", { name: "initech", clusters: ["dc1", "dc3"], plan: "gold" });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc2" });
    await call("POST", "/api/v1/tenants/acme/projects/web/apps", { name: "site", spec: SAMPLE_SPEC });

    const got = await appendedTo(m, ["dc1", "dc2", "dc3"], () =>
      call("PATCH", "/api/v1/plans/default", {
        quotas: { cpu: "8", memory: "16Gi" },
        allowLoadBalancers: true,
      }),
    );
    expect(summary(got.dc1!).sort()).toEqual(["upsert tenant acme", "upsert tenant globex"]);
    expect(summary(got.dc2!)).toEqual(["upsert tenant acme", "upsert app acme/web/site"]);
    expect(got.dc3).toEqual([]);
    for (const row of [...got.dc1!, got.dc2![0]!]) {
      expect(DesiredTenant.parse(row.body).plan).toEqual({
        name: "default",
        quotas: { cpu: "8", memory: "16Gi" },
        limitRange: null,
        allowLoadBalancers: true,
      });
    }

    // Moving a tenant to another plan re-sends it with the new quotas.
    const moved = await appendedTo(m, ["dc1", "dc2"], () =>
      call("PUT", "/api/v1/tenants/globex/plan", { plan: "gold" }),
    );
    expect(moved.dc2).toEqual([]);
    expect(DesiredTenant.parse(moved.dc1![0]!.body).plan).toMatchObject({
      name: "gold",
      quotas: { cpu: "64" },
    });
    await m.close();
  });

  test("placement changes: removed clusters get a delete, added ones the tenant", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"] });
    const got = await appendedTo(m, ["dc1", "dc2", "dc3"], () =>
      call("PATCH", "/api/v1/tenants/acme", { clusters: ["dc1", "dc3"] }),
    );
    expect(summary(got.dc2!)).toEqual(["delete tenant acme"]);
    expect(got.dc2![0]!.body).toBeNull();
    expect(summary(got.dc3!)).toEqual(["upsert tenant acme"]);
    expect(DesiredTenant.parse(got.dc3![0]!.body).name).toBe("acme");
    expect(summary(got.dc1!)).toEqual(["upsert tenant acme"]);
    await m.close();
  });

  test("deleting a tenant deletes its deployed apps, then the tenant, on every cluster", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2", "dc3"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc2" });
    await call("POST", APPS, { name: "site", spec: SAMPLE_SPEC });
    await call("POST", "/api/v1/tenants/acme/projects/api/apps", { name: "svc", spec: SAMPLE_SPEC });
    await call("POST", "/api/v1/tenants/acme/projects/api/apps", {
      name: "draft",
      spec: SAMPLE_SPEC,
      deploy: false,
    });

    const got = await appendedTo(m, ["dc1", "dc2", "dc3"], () => call("DELETE", "/api/v1/tenants/acme"));
    expect(summary(got.dc1!)).toEqual(["delete app acme/web/site", "delete tenant acme"]);
    expect(summary(got.dc2!)).toEqual(["delete app acme/api/svc", "delete tenant acme"]);
    expect(summary(got.dc3!)).toEqual(["delete tenant acme"]);
    for (const rows of Object.values(got)) for (const row of rows) expect(row.body).toBeNull();
    await m.close();
  });

  test("deleting a project deletes its deployed apps, then re-sends the tenant without it", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc1" });
    await call("POST", APPS, { name: "site", spec: SAMPLE_SPEC });
    await call("POST", APPS, { name: "draft", spec: SAMPLE_SPEC, deploy: false });
    const got = await appendedTo(m, ["dc1", "dc2"], () =>
      call("DELETE", "/api/v1/tenants/acme/projects/web"),
    );
    expect(got.dc2).toEqual([]);
    expect(summary(got.dc1!)).toEqual(["delete app acme/web/site", "upsert tenant acme"]);
    expect(DesiredTenant.parse(got.dc1![1]!.body).projects.map((p) => p.name)).toEqual(["api"]);
    await m.close();
  });

  test("a project-level policy set change re-sends that project's apps only", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/policysets", { name: "edge", traits: [{ type: "gateway" }] });
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] });
    await call("POST", "/api/v1/tenants/acme/projects", {
      name: "web",
      cluster: "dc1",
      policySets: ["edge"],
    });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc1" });
    await call("POST", APPS, { name: "site", spec: SAMPLE_SPEC });
    await call("POST", "/api/v1/tenants/acme/projects/api/apps", { name: "svc", spec: SAMPLE_SPEC });
    const site = (await changes(m, "dc1")).findLast((r) => r.key === "acme/web/site")!;
    expect(DesiredApp.parse(site.body).spec.components[0]!.traits?.map((t) => t.type)).toEqual([
      "scaler",
      "gateway",
    ]);

    const got = await appendedBy(m, "dc1", () =>
      call("PATCH", "/api/v1/policysets/edge", { traits: [{ type: "gateway", properties: { tls: true } }] }),
    );
    expect(summary(got)).toEqual(["upsert app acme/web/site"]);
    expect(DesiredApp.parse(got[0]!.body).spec.components[0]!.traits).toContainEqual({
      type: "gateway",
      properties: { tls: true },
    });
    const detached = await appendedBy(m, "dc1", () =>
      call("PATCH", "/api/v1/tenants/acme/projects/web", { policySets: [] }),
    );
    expect(summary(detached)).toEqual(["upsert app acme/web/site"]);
    expect(DesiredApp.parse(detached[0]!.body).spec.components[0]!.traits?.map((t) => t.type)).toEqual([
      "scaler",
    ]);
    await m.close();
  });

  test("revisions are per cluster and grow by one across a long sequence of changes", async () => {
    const { m, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1", "dc2"] });
    await call("POST", "/api/v1/tenants", { name: "globex", clusters: ["dc2"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
    for (let i = 0; i < 5; i++) {
      await call("POST", APPS, { name: `app-${i}`, spec: SAMPLE_SPEC });
      await call("POST", `${APPS}/app-${i}/suspend`);
    }
    await call("PATCH", "/api/v1/plans/default", { quotas: { cpu: "1" } });
    const dc1 = await changes(m, "dc1");
    const dc2 = await changes(m, "dc2");
    // dc1: acme, web project, 5 × (create + suspend), plan fan-out: acme + 5 apps.
    expect(dc1).toHaveLength(1 + 1 + 10 + 1 + 5);
    // dc2: acme, globex, plan fan-out: acme + globex.
    expect(dc2).toHaveLength(4);
    expect(dc2.map((r) => r.revision)).toEqual([1, 2, 3, 4]);
    await m.close();
  });

  test("a refused request appends nothing", async () => {
    const { m, admin, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] });
    await call("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
    await call("POST", APPS, { name: "site", spec: SAMPLE_SPEC });
    const refusals: Array<[string, string, unknown, number]> = [
      ["POST", "/api/v1/tenants", { name: "globex", clusters: ["dc1", "dc2"], plan: "nope" }, 422],
      ["POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] }, 409],
      ["PATCH", "/api/v1/tenants/acme", { clusters: ["dc2"] }, 409],
      ["PUT", "/api/v1/tenants/acme/plan", { plan: "nope" }, 422],
      ["POST", "/api/v1/tenants/acme/projects", { name: "api", cluster: "dc3" }, 422],
      ["POST", `${APPS}/site/deploy`, { revision: 7 }, 422],
      ["POST", `${APPS}/site/rollback`, { revision: 7 }, 422],
    ];
    for (const [method, path, body, status] of refusals) {
      const got = await appendedTo(m, ["dc1", "dc2", "dc3"], async () => {
        const res = await m.call(method, path, { token: admin, body });
        expect(res.status, `${method} ${path}`).toBe(status);
      });
      expect(got, `${method} ${path}`).toEqual({ dc1: [], dc2: [], dc3: [] });
    }
    expect(await m.store.tenants.get("globex")).toBeNull();
    await m.close();
  });

  test("a write that fails after the change log was appended rolls the append back (one transaction)", async () => {
    const { m, admin, call } = await platform();
    await call("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] });
    // The audit insert is the last write of every service transaction; make it fail once.
    const original = m.store.transaction.bind(m.store);
    let failNext = true;
    m.store.transaction = <T>(fn: (tx: StoreTx) => Promise<T>) =>
      original((tx) => {
        if (!failNext) return fn(tx);
        failNext = false;
        const audit = {
          ...tx.audit,
          insert: async () => {
            throw new Error("disk full");
          },
        };
        return fn({ ...tx, audit });
      });

    const got = await appendedTo(m, ["dc1", "dc2"], async () => {
      const res = await m.call("POST", "/api/v1/tenants", {
        token: admin,
        body: { name: "globex", clusters: ["dc1", "dc2"] },
      });
      const error = expectError(res, 500, "KN-500");
      expect(error.message).not.toContain("disk full");
    });
    expect(got).toEqual({ dc1: [], dc2: [] });
    expect(await m.store.tenants.get("globex")).toBeNull();
    expect(m.logs.some((l) => l.level === "error")).toBe(true);

    // The next attempt goes through and lands exactly once.
    const retry = await appendedTo(m, ["dc1", "dc2"], () =>
      call("POST", "/api/v1/tenants", { name: "globex", clusters: ["dc1", "dc2"] }),
    );
    expect(summary(retry.dc1!)).toEqual(["upsert tenant globex"]);
    expect(summary(retry.dc2!)).toEqual(["upsert tenant globex"]);
    await m.close();
  });
});
