/**
 * The one contract every Store implementation passes (DESIGN.md §5, STYLE.md "one contract suite per port").
 * Each test opens its own empty, migrated store through `makeStore` and cleans it up.
 */
import { describe, expect, test } from "bun:test";
import { KubeNovaError } from "../../shared/errors.ts";
import { clusterRow } from "../support/rows.ts";
import type {
  AppRow,
  AuditRow,
  BootstrapTokenRow,
  ChangeInput,
  ClusterCertificateRow,
  ClusterRow,
  EventRow,
  PlanRow,
  PolicySetRow,
  ProjectRow,
  Store,
  TenantRow,
  UsageRow,
} from "../../manager/store/store.ts";

export type MakeStore = () => Promise<{ store: Store; cleanup: () => Promise<void> }>;

const T0 = "2025-03-01T10:00:00.000Z";

function at(minutes: number): string {
  return new Date(Date.parse(T0) + minutes * 60_000).toISOString();
}

function cluster(name: string, overrides: Partial<ClusterRow> = {}): ClusterRow {
  return clusterRow(name, {
    id: `id-${name}`,
    datacenter: "dc-1",
    labels: { zone: "a" },
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  });
}

function tenant(name: string, overrides: Partial<TenantRow> = {}): TenantRow {
  return {
    name,
    displayName: null,
    owners: ["alice@example.com"],
    plan: null,
    clusters: [],
    labels: {},
    policySets: [],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}

function project(tenantName: string, name: string, overrides: Partial<ProjectRow> = {}): ProjectRow {
  return {
    tenant: tenantName,
    name,
    displayName: null,
    cluster: "dc1",
    namespace: `${tenantName}-${name}`,
    labels: {},
    policySets: [],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}

function app(tenantName: string, projectName: string, name: string, overrides: Partial<AppRow> = {}): AppRow {
  return {
    tenant: tenantName,
    project: projectName,
    name,
    cluster: "dc1",
    namespace: `${tenantName}-${projectName}`,
    labels: {},
    spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1.27" } }] },
    revision: 1,
    deployedRevision: null,
    suspended: false,
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  } as AppRow;
}

const METRICS = {
  cpuRequestMillicores: 1500,
  memoryRequestBytes: 2 * 1024 ** 3,
  storageBytes: 0,
  loadBalancers: 1,
  pods: 4,
  namespaces: 2,
  applications: 1,
  quotaViolations: 0,
};

function usage(id: string, overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    id,
    clusterId: "c1",
    tenant: "acme",
    windowStart: at(0),
    windowEnd: at(60),
    metrics: METRICS,
    byProject: { web: METRICS },
    adjustment: false,
    receivedAt: at(61),
    ...overrides,
  };
}

function event(id: string, overrides: Partial<EventRow> = {}): EventRow {
  return {
    id,
    clusterId: "c1",
    tenant: "acme",
    at: T0,
    type: "Normal",
    reason: "Applied",
    message: "applied",
    object: { kind: "Application", name: "web" },
    ...overrides,
  };
}

function audit(id: string, overrides: Partial<AuditRow> = {}): AuditRow {
  return {
    id,
    at: T0,
    actor: "alice",
    role: "admin",
    action: "tenant.create",
    resource: "tenants/acme",
    tenant: "acme",
    requestId: `req-${id}`,
    details: null,
    ...overrides,
  };
}

function change(key: string, op: ChangeInput["op"] = "upsert"): ChangeInput {
  return { kind: "tenant", key, op, body: op === "delete" ? null : { name: key } };
}

/** Resolves to the error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<KubeNovaError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(KubeNovaError);
    return error as KubeNovaError;
  }
  throw new Error("expected a rejection");
}

/** Every page of a paged list, following cursors. */
async function allPages<T>(
  list: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 100; guard++) {
    const page = await list(cursor);
    pages.push(page.items);
    if (page.nextCursor === null) return pages;
    cursor = page.nextCursor;
  }
  throw new Error("pagination did not end");
}

/** Key order that both databases must agree on: plain byte order, whatever the server's locale. */
const TRICKY_NAMES = ["ab", "a-c", "a0", "aa", "b", "a-b-c", "z9", "a_b", "A"];

export function describeStoreContract(name: string, makeStore: MakeStore): void {
  /** Runs `fn` against a fresh migrated store and always cleans up. */
  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const { store, cleanup } = await makeStore();
    try {
      await fn(store);
    } finally {
      await cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe("migrations", () => {
      test("migrate() reaches the latest version and is idempotent", () =>
        withStore(async (store) => {
          const first = await store.migrationStatus();
          expect(first.current).toBe(first.latest);
          expect(first.applied).toEqual(Array.from({ length: first.latest }, (_, i) => i + 1));
          await store.tenants.insert(tenant("acme"));
          const again = await store.migrate();
          expect(again).toEqual(first);
          expect(await store.migrationStatus()).toEqual(first);
          expect(await store.tenants.get("acme")).not.toBeNull();
        }));

      test("ping answers", () => withStore((store) => store.ping()));
    });

    describe("clusters", () => {
      test("insert, get by name and id, JSON fields round-trip exactly", () =>
        withStore(async (store) => {
          const row = cluster("dc1", {
            displayName: "Datacenter 1",
            labels: { zone: "b", region: "eu", "kubenova.io/tier": "gold" },
            versions: { kubernetes: "1.31.2", capsule: "0.14.0" },
            capabilities: { "capsule.clastix.io": ["v1beta2"], "core.oam.dev": ["v1beta1"] },
            kubeconfigCiphertext: "v1:abc",
            lastSeenAt: at(5),
            status: "connected",
          });
          const inserted = await store.clusters.insert(row);
          expect(inserted).toEqual(row);
          expect(await store.clusters.get("dc1")).toEqual(row);
          expect(await store.clusters.getById("id-dc1")).toEqual(row);
          // Key order survives (JSON is stored as text in both databases).
          expect(Object.keys((await store.clusters.get("dc1"))!.labels)).toEqual([
            "zone",
            "region",
            "kubenova.io/tier",
          ]);
          expect(await store.clusters.get("nope")).toBeNull();
          expect(await store.clusters.getById("nope")).toBeNull();
        }));

      test("insert forces version 1 and normalizes timestamps to toISOString()", () =>
        withStore(async (store) => {
          const row = await store.clusters.insert(
            cluster("dc1", {
              version: 7,
              createdAt: "2025-03-01T10:00:00Z",
              lastSeenAt: "2025-03-01T11:00:00+01:00",
            }),
          );
          expect(row.version).toBe(1);
          expect(row.createdAt).toBe("2025-03-01T10:00:00.000Z");
          expect(row.lastSeenAt).toBe("2025-03-01T10:00:00.000Z");
          const bad = await failure(store.clusters.insert(cluster("dc2", { createdAt: "yesterday" })));
          expect(bad.code).toBe("KN-400");
        }));

      test("duplicate name or id is KN-409 naming the cluster", () =>
        withStore(async (store) => {
          await store.clusters.insert(cluster("dc1"));
          const byName = await failure(store.clusters.insert(cluster("dc1", { id: "other" })));
          expect(byName.code).toBe("KN-409");
          expect(byName.message).toBe('cluster "dc1" already exists');
          const byId = await failure(store.clusters.insert(cluster("dc2", { id: "id-dc1" })));
          expect(byId.code).toBe("KN-409");
          expect(await store.clusters.get("dc2")).toBeNull();
        }));

      test("update bumps version, stamps updatedAt, keeps createdAt and id; KN-412 and KN-404", () =>
        withStore(async (store) => {
          const before = Date.now();
          const row = await store.clusters.insert(cluster("dc1"));
          const updated = await store.clusters.update(
            { ...row, id: "changed", status: "connected", labels: { zone: "c" }, createdAt: at(99) },
            { expectedVersion: 1 },
          );
          expect(updated.version).toBe(2);
          expect(updated.status).toBe("connected");
          expect(updated.labels).toEqual({ zone: "c" });
          expect(updated.id).toBe("id-dc1");
          expect(updated.createdAt).toBe(T0);
          expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(before - 1000);
          expect(await store.clusters.get("dc1")).toEqual(updated);

          const stale = await failure(
            store.clusters.update({ ...row, status: "offline" }, { expectedVersion: 1 }),
          );
          expect(stale.code).toBe("KN-412");
          expect((await store.clusters.get("dc1"))?.status).toBe("connected");
          // Without expectedVersion the write is unconditional.
          expect((await store.clusters.update({ ...row, status: "offline" })).version).toBe(3);

          const missing = await failure(store.clusters.update(cluster("ghost")));
          expect(missing.code).toBe("KN-404");
          expect((await failure(store.clusters.update(cluster("ghost"), { expectedVersion: 1 }))).code).toBe(
            "KN-404",
          );
        }));

      test("delete: true once, false when gone, KN-412 on version mismatch", () =>
        withStore(async (store) => {
          await store.clusters.insert(cluster("dc1"));
          expect((await failure(store.clusters.delete("dc1", { expectedVersion: 2 }))).code).toBe("KN-412");
          expect(await store.clusters.get("dc1")).not.toBeNull();
          expect(await store.clusters.delete("dc1", { expectedVersion: 1 })).toBe(true);
          expect(await store.clusters.delete("dc1")).toBe(false);
          expect(await store.clusters.delete("dc1", { expectedVersion: 1 })).toBe(false);
          // The name is free again.
          await store.clusters.insert(cluster("dc1"));
        }));
    });

    describe("pagination", () => {
      async function seedTenants(store: Store, count: number): Promise<string[]> {
        const names = [
          ...TRICKY_NAMES,
          ...Array.from({ length: count - TRICKY_NAMES.length }, (_, i) => `t${i}`),
        ];
        for (const [i, n] of names.entries()) {
          await store.tenants.insert(tenant(n, { labels: { tier: i % 3 === 0 ? "gold" : "free" } }));
        }
        return [...names].sort();
      }

      test("lists in byte order of the key, in full pages, with every row exactly once", () =>
        withStore(async (store) => {
          const sorted = await seedTenants(store, 25);
          const pages = await allPages((cursor) => store.tenants.list({ limit: 10, cursor }));
          expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
          expect(pages.flat().map((t) => t.name)).toEqual(sorted);
          // An exact fit ends without an empty trailing page.
          const exact = await store.tenants.list({ limit: 25 });
          expect(exact.items).toHaveLength(25);
          expect(exact.nextCursor).toBeNull();
        }));

      test("where: pages stay full, rows stay in order, none skipped or repeated", () =>
        withStore(async (store) => {
          await seedTenants(store, 40);
          const gold = (t: TenantRow) => t.labels.tier === "gold";
          const expected = (await store.tenants.list({ limit: 1000 })).items.filter(gold).map((t) => t.name);
          expect(expected.length).toBe(14);
          const pages = await allPages((cursor) => store.tenants.list({ limit: 4, cursor, where: gold }));
          expect(pages.map((p) => p.length)).toEqual([4, 4, 4, 2]);
          expect(pages.flat().map((t) => t.name)).toEqual(expected);
          const none = await store.tenants.list({ limit: 5, where: () => false });
          expect(none).toEqual({ items: [], nextCursor: null });
        }));

      test("where: scans past more non-matching rows than one batch", () =>
        withStore(async (store) => {
          for (let i = 0; i < 260; i++) {
            await store.plans.insert(
              plan(`p${String(i).padStart(3, "0")}`, { allowLoadBalancers: i >= 250 }),
            );
          }
          const page = await store.plans.list({ limit: 3, where: (p) => p.allowLoadBalancers });
          expect(page.items.map((p) => p.name)).toEqual(["p250", "p251", "p252"]);
          const rest = await store.plans.list({
            limit: 30,
            cursor: page.nextCursor!,
            where: (p) => p.allowLoadBalancers,
          });
          expect(rest.items.map((p) => p.name)).toEqual([
            "p253",
            "p254",
            "p255",
            "p256",
            "p257",
            "p258",
            "p259",
          ]);
          expect(rest.nextCursor).toBeNull();
        }));

      test("a cursor is stable: same page again, unaffected by rows inserted before it", () =>
        withStore(async (store) => {
          await seedTenants(store, 20);
          const first = await store.tenants.list({ limit: 7 });
          const second = await store.tenants.list({ limit: 7, cursor: first.nextCursor! });
          await store.tenants.insert(tenant("0-first"));
          await store.tenants.delete(first.items[0]!.name);
          const again = await store.tenants.list({ limit: 7, cursor: first.nextCursor! });
          expect(again).toEqual(second);
        }));

      test("a malformed cursor or limit is KN-400 naming the field", () =>
        withStore(async (store) => {
          await seedTenants(store, 12);
          for (const cursor of [
            "%%%",
            "bm90LWpzb24",
            Buffer.from(JSON.stringify({ a: 1 })).toString("base64url"),
            Buffer.from(JSON.stringify([1])).toString("base64url"),
            Buffer.from(JSON.stringify(["a", "b"])).toString("base64url"),
          ]) {
            const error = await failure(store.tenants.list({ limit: 5, cursor }));
            expect(error.code).toBe("KN-400");
            expect(error.details?.[0]?.path).toBe("cursor");
          }
          const usageCursor = Buffer.from(JSON.stringify(["not-a-time", "c", "t", "i"])).toString(
            "base64url",
          );
          expect(
            (await failure(store.usage.list({}, { limit: 5, cursor: usageCursor }))).details?.[0]?.path,
          ).toBe("cursor");
          const zero = await failure(store.tenants.list({ limit: 0 }));
          expect(zero.code).toBe("KN-400");
          expect(zero.details?.[0]?.path).toBe("limit");
        }));
    });

    describe("tenants, plans, policy sets", () => {
      test("tenant CRUD with label predicates", () =>
        withStore(async (store) => {
          await store.tenants.insert(tenant("acme", { labels: { env: "prod", team: "a" }, plan: "gold" }));
          await store.tenants.insert(tenant("beta", { labels: { env: "dev" }, clusters: ["dc1", "dc2"] }));
          await store.tenants.insert(tenant("corp", { labels: { env: "prod" } }));
          const prod = await store.tenants.list({ limit: 10, where: (t) => t.labels.env === "prod" });
          expect(prod.items.map((t) => t.name)).toEqual(["acme", "corp"]);
          const onDc2 = await store.tenants.list({ limit: 10, where: (t) => t.clusters.includes("dc2") });
          expect(onDc2.items.map((t) => t.name)).toEqual(["beta"]);
          expect((await failure(store.tenants.insert(tenant("acme")))).message).toBe(
            'tenant "acme" already exists',
          );
          const acme = (await store.tenants.get("acme"))!;
          const updated = await store.tenants.update(
            { ...acme, plan: null, owners: [] },
            { expectedVersion: 1 },
          );
          expect(updated).toMatchObject({ plan: null, owners: [], version: 2 });
          expect(await store.tenants.delete("acme", { expectedVersion: 2 })).toBe(true);
        }));

      test("plans keep booleans, nested JSON and nulls", () =>
        withStore(async (store) => {
          const row = plan("gold", {
            allowLoadBalancers: true,
            limitRange: null,
            quotas: { cpu: "4", memory: "8Gi", nested: { a: [1, 2.5, null, "x"] } },
            traits: [{ type: "scaler", properties: { replicas: 2 } }],
          });
          expect(await store.plans.insert(row)).toEqual(row);
          expect(await store.plans.get("gold")).toEqual(row);
          const off = await store.plans.update({
            ...row,
            allowLoadBalancers: false,
            limitRange: { max: { cpu: "1" } },
          });
          expect(off.allowLoadBalancers).toBe(false);
          expect((await store.plans.get("gold"))?.limitRange).toEqual({ max: { cpu: "1" } });
          expect((await failure(store.plans.insert(row))).code).toBe("KN-409");
        }));

      test("policy sets: allowedComponentTypes null vs list", () =>
        withStore(async (store) => {
          const row: PolicySetRow = {
            name: "baseline",
            description: "defaults",
            traits: [],
            policies: [{ name: "topology", type: "topology", properties: { clusters: ["local"] } }],
            allowedComponentTypes: null,
            createdAt: T0,
            updatedAt: T0,
            version: 1,
          };
          await store.policySets.insert(row);
          expect(await store.policySets.get("baseline")).toEqual(row);
          const updated = await store.policySets.update({ ...row, allowedComponentTypes: ["webservice"] });
          expect(updated.allowedComponentTypes).toEqual(["webservice"]);
          expect((await store.policySets.list({ limit: 5 })).items).toEqual([updated]);
          expect((await failure(store.policySets.insert(row))).message).toBe(
            'policy set "baseline" already exists',
          );
        }));
    });

    describe("projects and apps", () => {
      test("projects: composite key, per-tenant and cross-tenant order, cluster filter", () =>
        withStore(async (store) => {
          for (const [t, p, c] of [
            ["beta", "web", "dc1"],
            ["acme", "web", "dc2"],
            ["acme", "api", "dc1"],
            ["acme", "a-b", "dc1"],
            ["beta", "api", "dc2"],
          ] as const) {
            await store.projects.insert(project(t, p, { cluster: c }));
          }
          const acme = await store.projects.list({ tenant: "acme" }, { limit: 10 });
          expect(acme.items.map((p) => p.name)).toEqual(["a-b", "api", "web"]);
          const pages = await allPages((cursor) => store.projects.list({}, { limit: 2, cursor }));
          expect(pages.flat().map((p) => `${p.tenant}/${p.name}`)).toEqual([
            "acme/a-b",
            "acme/api",
            "acme/web",
            "beta/api",
            "beta/web",
          ]);
          const dc2 = await store.projects.list({ cluster: "dc2" }, { limit: 10 });
          expect(dc2.items.map((p) => `${p.tenant}/${p.name}`)).toEqual(["acme/web", "beta/api"]);
          expect((await failure(store.projects.insert(project("acme", "web")))).message).toBe(
            'project "acme/web" already exists',
          );
          // Same project name under another tenant is a different row.
          expect(await store.projects.get("beta", "web")).toMatchObject({ cluster: "dc1" });
          const p = (await store.projects.get("acme", "web"))!;
          expect((await failure(store.projects.update(p, { expectedVersion: 3 }))).code).toBe("KN-412");
          expect((await failure(store.projects.update(project("zeta", "web")))).code).toBe("KN-404");
          expect(await store.projects.delete("acme", "web")).toBe(true);
          expect(await store.projects.get("acme", "web")).toBeNull();
        }));

      test("apps: spec and booleans round-trip; filters by tenant, project, cluster", () =>
        withStore(async (store) => {
          const web = app("acme", "shop", "web", {
            labels: { tier: "front" },
            deployedRevision: 3,
            revision: 4,
          });
          await store.apps.insert(web);
          await store.apps.insert(app("acme", "shop", "api", { cluster: "dc2", suspended: true }));
          await store.apps.insert(app("acme", "blog", "web"));
          await store.apps.insert(app("beta", "shop", "web"));
          expect(await store.apps.get("acme", "shop", "web")).toEqual(web);
          expect((await store.apps.get("acme", "shop", "api"))?.suspended).toBe(true);
          const shop = await store.apps.list({ tenant: "acme", project: "shop" }, { limit: 10 });
          expect(shop.items.map((a) => a.name)).toEqual(["api", "web"]);
          const dc2 = await store.apps.list({ cluster: "dc2" }, { limit: 10 });
          expect(dc2.items.map((a) => a.name)).toEqual(["api"]);
          const all = await allPages((cursor) => store.apps.list({}, { limit: 3, cursor }));
          expect(all.flat().map((a) => `${a.tenant}/${a.project}/${a.name}`)).toEqual([
            "acme/blog/web",
            "acme/shop/api",
            "acme/shop/web",
            "beta/shop/web",
          ]);
          const front = await store.apps.list({}, { limit: 1, where: (a) => a.labels.tier === "front" });
          expect(front).toEqual({ items: [web], nextCursor: null });
          const resumed = await store.apps.update(
            { ...web, suspended: true, deployedRevision: null },
            { expectedVersion: 1 },
          );
          expect(resumed).toMatchObject({ suspended: true, deployedRevision: null, version: 2 });
          expect((await failure(store.apps.delete("acme", "shop", "web", { expectedVersion: 1 }))).code).toBe(
            "KN-412",
          );
          expect(await store.apps.delete("acme", "shop", "web", { expectedVersion: 2 })).toBe(true);
        }));

      test("app revisions: newest first, paged, KN-409 on a repeated revision, deleteForApp", () =>
        withStore(async (store) => {
          const spec = app("acme", "shop", "web").spec;
          for (let revision = 1; revision <= 5; revision++) {
            await store.appRevisions.insert({
              tenant: "acme",
              project: "shop",
              app: "web",
              revision,
              spec,
              createdAt: at(revision),
              createdBy: "alice",
              note: revision === 2 ? "rollback target" : null,
            });
          }
          await store.appRevisions.insert({
            tenant: "acme",
            project: "shop",
            app: "api",
            revision: 1,
            spec,
            createdAt: T0,
            createdBy: "bob",
            note: null,
          });
          const dup = await failure(
            store.appRevisions.insert({
              tenant: "acme",
              project: "shop",
              app: "web",
              revision: 3,
              spec,
              createdAt: T0,
              createdBy: "x",
              note: null,
            }),
          );
          expect(dup.code).toBe("KN-409");
          expect((await store.appRevisions.get("acme", "shop", "web", 2))?.note).toBe("rollback target");
          expect(await store.appRevisions.get("acme", "shop", "web", 9)).toBeNull();
          const pages = await allPages((cursor) =>
            store.appRevisions.list("acme", "shop", "web", { limit: 2, cursor }),
          );
          expect(pages.map((p) => p.map((r) => r.revision))).toEqual([[5, 4], [3, 2], [1]]);
          expect(await store.appRevisions.deleteForApp("acme", "shop", "web")).toBe(5);
          expect((await store.appRevisions.list("acme", "shop", "web", { limit: 10 })).items).toEqual([]);
          expect(await store.appRevisions.get("acme", "shop", "api", 1)).not.toBeNull();
        }));
    });

    describe("transactions", () => {
      test("commit keeps every write, including change-log appends", () =>
        withStore(async (store) => {
          const result = await store.transaction(async (tx) => {
            await tx.tenants.insert(tenant("acme"));
            await tx.projects.insert(project("acme", "web"));
            const rows = await tx.changeLog.append("c1", [change("acme")]);
            // The transaction sees its own writes.
            expect(await tx.tenants.get("acme")).not.toBeNull();
            return rows.map((r) => r.revision);
          });
          expect(result).toEqual([1]);
          expect(await store.tenants.get("acme")).not.toBeNull();
          expect(await store.projects.get("acme", "web")).not.toBeNull();
          expect(await store.changeLog.latestRevision("c1")).toBe(1);
        }));

      test("a throw rolls back everything, change log and its counter included, and re-throws", () =>
        withStore(async (store) => {
          await store.changeLog.append("c1", [change("before")]);
          const boom = new Error("boom");
          const thrown = await store
            .transaction(async (tx) => {
              await tx.tenants.insert(tenant("acme"));
              await tx.usage.insert(usage("u1"));
              await tx.changeLog.append("c1", [change("acme"), change("acme2")]);
              await tx.settings.put("k", "v");
              throw boom;
            })
            .then(
              () => null,
              (error: unknown) => error,
            );
          expect(thrown).toBe(boom);
          expect(await store.tenants.get("acme")).toBeNull();
          expect(await store.settings.get("k")).toBeNull();
          expect((await store.usage.list({}, { limit: 10 })).items).toEqual([]);
          expect(await store.changeLog.latestRevision("c1")).toBe(1);
          expect(
            (await store.changeLog.list("c1", { afterRevision: 0, limit: 10 })).map((r) => r.key),
          ).toEqual(["before"]);
          // The next append continues without a gap.
          expect((await store.changeLog.append("c1", [change("next")]))[0]?.revision).toBe(2);
        }));

      test("a caught KN-409 inside a transaction does not poison it", () =>
        withStore(async (store) => {
          await store.tenants.insert(tenant("acme"));
          await store.transaction(async (tx) => {
            expect((await failure(tx.tenants.insert(tenant("acme")))).code).toBe("KN-409");
            await tx.tenants.insert(tenant("beta"));
          });
          expect(await store.tenants.get("beta")).not.toBeNull();
        }));

      test("concurrent transactions do not see or lose each other's writes", () =>
        withStore(async (store) => {
          await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              store.transaction(async (tx) => {
                await tx.tenants.insert(tenant(`t${i}`));
                await new Promise((resolve) => setTimeout(resolve, 2));
                await tx.projects.insert(project(`t${i}`, "web"));
                if (i % 2 === 1) throw new Error("odd rolls back");
              }),
            ).map((p) => p.catch(() => undefined)),
          );
          const tenants = (await store.tenants.list({ limit: 20 })).items.map((t) => t.name);
          expect(tenants).toEqual(["t0", "t2", "t4", "t6"]);
          const projects = (await store.projects.list({}, { limit: 20 })).items.map((p) => p.tenant);
          expect(projects).toEqual(["t0", "t2", "t4", "t6"]);
        }));
    });

    describe("change log", () => {
      test("append allocates consecutive revisions per cluster; list pages by afterRevision", () =>
        withStore(async (store) => {
          expect(await store.changeLog.latestRevision("c1")).toBe(0);
          expect(await store.changeLog.earliestRevision("c1")).toBeNull();
          expect(await store.changeLog.append("c1", [])).toEqual([]);
          const first = await store.changeLog.append("c1", [change("a"), change("b"), change("a", "delete")]);
          expect(first.map((r) => r.revision)).toEqual([1, 2, 3]);
          expect(first[2]).toMatchObject({
            clusterId: "c1",
            kind: "tenant",
            key: "a",
            op: "delete",
            body: null,
          });
          expect((await store.changeLog.append("c2", [change("x")]))[0]?.revision).toBe(1);
          expect((await store.changeLog.append("c1", [change("c")]))[0]?.revision).toBe(4);
          const listed = await store.changeLog.list("c1", { afterRevision: 1, limit: 2 });
          expect(listed.map((r) => r.revision)).toEqual([2, 3]);
          expect(listed[0]).toEqual(first[1]!);
          expect(await store.changeLog.list("c1", { afterRevision: 4, limit: 10 })).toEqual([]);
          expect(await store.changeLog.latestRevision("c1")).toBe(4);
          expect(await store.changeLog.earliestRevision("c1")).toBe(1);
        }));

      test("20 concurrent appends never repeat or skip a revision", () =>
        withStore(async (store) => {
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              store.changeLog.append(
                "c1",
                Array.from({ length: (i % 3) + 1 }, (_, j) => change(`k${i}-${j}`)),
              ),
            ),
          );
          const total = results.reduce((n, rows) => n + rows.length, 0);
          for (const rows of results) {
            // Each append's rows are one consecutive block.
            expect(rows.map((row) => row.revision - rows[0]!.revision)).toEqual(rows.map((_, j) => j));
          }
          const revisions = results.flat().map((r) => r.revision);
          expect([...revisions].sort((a, b) => a - b)).toEqual(
            Array.from({ length: total }, (_, i) => i + 1),
          );
          expect(await store.changeLog.latestRevision("c1")).toBe(total);
          const stored = await store.changeLog.list("c1", { afterRevision: 0, limit: 1000 });
          expect(stored.map((r) => r.revision)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
        }));

      test("compaction keeps latestRevision; deleteCluster resets it", () =>
        withStore(async (store) => {
          await store.changeLog.append("c1", [change("a"), change("b"), change("c"), change("d")]);
          await store.changeLog.append("c2", [change("a")]);
          expect(await store.changeLog.compact("c1", 2)).toBe(2);
          expect(await store.changeLog.earliestRevision("c1")).toBe(3);
          expect(await store.changeLog.latestRevision("c1")).toBe(4);
          expect(await store.changeLog.compact("c1", 10)).toBe(2);
          expect(await store.changeLog.earliestRevision("c1")).toBeNull();
          expect(await store.changeLog.latestRevision("c1")).toBe(4);
          expect((await store.changeLog.append("c1", [change("e")]))[0]?.revision).toBe(5);
          expect(await store.changeLog.latestRevision("c2")).toBe(1);
          await store.changeLog.deleteCluster("c1");
          expect(await store.changeLog.latestRevision("c1")).toBe(0);
          expect(await store.changeLog.list("c1", { afterRevision: 0, limit: 10 })).toEqual([]);
          expect((await store.changeLog.append("c1", [change("f")]))[0]?.revision).toBe(1);
          expect(await store.changeLog.earliestRevision("c2")).toBe(1);
        }));
    });

    describe("status mirror", () => {
      const status = (generation: number, phase: string, overrides = {}) => ({
        clusterId: "c1",
        kind: "app",
        key: "acme/shop/web",
        observedGeneration: generation,
        body: { phase },
        updatedAt: T0,
        ...overrides,
      });

      test("latest observedGeneration wins; an equal generation overwrites; an older one is ignored", () =>
        withStore(async (store) => {
          expect(await store.statusMirror.upsert(status(5, "Applying"))).toBe(true);
          expect(await store.statusMirror.upsert(status(4, "Stale", { updatedAt: at(9) }))).toBe(false);
          expect(await store.statusMirror.get("c1", "app", "acme/shop/web")).toEqual(status(5, "Applying"));
          expect(await store.statusMirror.upsert(status(5, "Deployed", { updatedAt: at(1) }))).toBe(true);
          expect((await store.statusMirror.get("c1", "app", "acme/shop/web"))?.body).toEqual({
            phase: "Deployed",
          });
          expect(await store.statusMirror.upsert(status(2 ** 40, "Drifted", { updatedAt: at(2) }))).toBe(
            true,
          );
          expect(await store.statusMirror.get("c1", "app", "acme/shop/web")).toEqual(
            status(2 ** 40, "Drifted", { updatedAt: at(2) }),
          );
          expect(await store.statusMirror.get("c2", "app", "acme/shop/web")).toBeNull();
        }));

      test("concurrent reports leave the highest generation", () =>
        withStore(async (store) => {
          const generations = [3, 9, 1, 7, 9, 2, 8, 5];
          await Promise.all(generations.map((g) => store.statusMirror.upsert(status(g, `g${g}`))));
          expect((await store.statusMirror.get("c1", "app", "acme/shop/web"))?.observedGeneration).toBe(9);
        }));

      test("listByKey matches a literal, case-sensitive prefix across clusters", () =>
        withStore(async (store) => {
          await store.statusMirror.upsert(status(1, "a", { key: "acme/shop/web" }));
          await store.statusMirror.upsert(status(1, "b", { key: "acme/shop/api", clusterId: "c2" }));
          await store.statusMirror.upsert(status(1, "c", { key: "acme/blog/web" }));
          await store.statusMirror.upsert(status(1, "d", { key: "ACME/shop/web" }));
          await store.statusMirror.upsert(status(1, "e", { key: "acmeXshop/web" }));
          await store.statusMirror.upsert(status(1, "f", { key: "acme/shop/web", kind: "tenant" }));
          const shop = await store.statusMirror.listByKey("app", "acme/shop/");
          expect(shop.map((r) => `${r.clusterId}:${r.key}`).sort()).toEqual([
            "c1:acme/shop/web",
            "c2:acme/shop/api",
          ]);
          expect(await store.statusMirror.listByKey("app", "acme_shop")).toEqual([]);
          expect(await store.statusMirror.listByKey("app", "acme%")).toEqual([]);
          expect((await store.statusMirror.listByKey("app", "")).length).toBe(5);
        }));
    });

    describe("usage", () => {
      test("a redelivered report is a duplicate; adjustments are unique by id", () =>
        withStore(async (store) => {
          expect(await store.usage.insert(usage("u1"))).toBe("inserted");
          expect(await store.usage.insert(usage("u1"))).toBe("duplicate");
          // Same window under a new id (a re-sent report) is still the same record.
          expect(await store.usage.insert(usage("u2", { metrics: { ...METRICS, pods: 99 } }))).toBe(
            "duplicate",
          );
          expect(await store.usage.insert(usage("adj1", { adjustment: true }))).toBe("inserted");
          expect(await store.usage.insert(usage("adj2", { adjustment: true }))).toBe("inserted");
          expect(await store.usage.insert(usage("adj2", { adjustment: true }))).toBe("duplicate");
          expect(await store.usage.insert(usage("u3", { tenant: "beta" }))).toBe("inserted");
          expect(await store.usage.insert(usage("u4", { clusterId: "c2" }))).toBe("inserted");
          const rows = (await store.usage.list({ tenant: "acme", clusterId: "c1" }, { limit: 10 })).items;
          expect(rows.map((r) => r.id)).toEqual(["adj1", "adj2", "u1"]);
          expect(rows[2]).toEqual(usage("u1"));
          expect(rows[0]?.adjustment).toBe(true);
        }));

      test("insertMany answers per row as insert would, within the call too, and writes what insert would", () =>
        withStore(async (store) => {
          expect(await store.usage.insert(usage("u1"))).toBe("inserted");
          const later = { windowStart: at(60), windowEnd: at(120) };
          const rows = [
            usage("u1"), // already stored
            usage("u2"), // same window as u1 under a new id
            usage("u3", later),
            usage("u3", later), // the same report twice in one call
            usage("u4", later), // same window as u3, earlier in this call
            usage("adj1", { adjustment: true }),
            usage("adj2", { adjustment: true }),
            usage("adj1", { adjustment: true }),
            usage("u5", { tenant: "beta", windowStart: "2025-03-01T12:00:00Z" }),
          ];
          expect(await store.usage.insertMany(rows)).toEqual([
            "duplicate",
            "duplicate",
            "inserted",
            "duplicate",
            "duplicate",
            "inserted",
            "inserted",
            "duplicate",
            "inserted",
          ]);
          expect(await store.usage.insertMany([])).toEqual([]);
          const stored = (await store.usage.list({}, { limit: 100 })).items;
          expect(stored.map((r) => r.id).sort()).toEqual(["adj1", "adj2", "u1", "u3", "u5"]);
          expect(stored.find((r) => r.id === "u3")).toEqual(usage("u3", later));
          expect(stored.find((r) => r.id === "u5")?.windowStart).toBe("2025-03-01T12:00:00.000Z");
          // More rows than one statement takes: chunked, still answered in order.
          const many = Array.from({ length: 1_203 }, (_, i) =>
            usage(`m${i}`, { clusterId: "c9", windowStart: at(i * 60), windowEnd: at(i * 60 + 60) }),
          );
          const answers = await store.usage.insertMany([...many, many[7]!]);
          expect(answers.filter((a) => a === "inserted").length).toBe(1_203);
          expect(answers.at(-1)).toBe("duplicate");
          expect((await store.usage.insertMany(many.slice(600, 700))).every((a) => a === "duplicate")).toBe(
            true,
          );
          // Malformed input is a KN-400 naming the field, and nothing of the call is written.
          const bad = await failure(
            store.transaction((tx) =>
              tx.usage.insertMany([usage("ok1", { tenant: "gamma" }), usage("bad", { windowStart: "soon" })]),
            ),
          );
          expect(bad.code).toBe("KN-400");
          expect(bad.message).toContain("windowStart");
          expect((await store.usage.list({ tenant: "gamma" }, { limit: 10 })).items).toEqual([]);
        }));

      test("from is inclusive, to exclusive; ordered by windowStart, cluster, tenant, id; paged", () =>
        withStore(async (store) => {
          for (let hour = 0; hour < 6; hour++) {
            for (const clusterId of ["c2", "c1"]) {
              await store.usage.insert(
                usage(`u-${hour}-${clusterId}`, {
                  clusterId,
                  windowStart: at(hour * 60),
                  windowEnd: at(hour * 60 + 60),
                }),
              );
            }
          }
          // A report whose timestamp came in a different (still valid) ISO form is normalized and found.
          await store.usage.insert(usage("u-odd", { tenant: "beta", windowStart: "2025-03-01T12:00:00Z" }));
          const range = await store.usage.list({ from: at(60), to: at(180) }, { limit: 100 });
          expect(range.items.map((r) => r.id)).toEqual(["u-1-c1", "u-1-c2", "u-2-c1", "u-odd", "u-2-c2"]);
          expect(range.items.at(-1)?.windowStart).toBe(at(120));
          const pages = await allPages((cursor) =>
            store.usage.list({ clusterId: "c1" }, { limit: 4, cursor }),
          );
          expect(pages.map((p) => p.length)).toEqual([4, 3]);
          expect(pages.flat().map((r) => r.id)).toEqual([
            "u-0-c1",
            "u-1-c1",
            "u-2-c1",
            "u-odd",
            "u-3-c1",
            "u-4-c1",
            "u-5-c1",
          ]);
          expect((await store.usage.list({ from: at(600) }, { limit: 10 })).items).toEqual([]);
          expect((await store.usage.list({ to: at(0) }, { limit: 10 })).items).toEqual([]);
          expect((await failure(store.usage.list({ from: "soon" }, { limit: 10 }))).code).toBe("KN-400");
        }));
    });

    describe("usage quarantine", () => {
      test("keeps refused reports with their reason, idempotent on id, newest first per cluster", () =>
        withStore(async (store) => {
          const row = (id: string, clusterId: string, receivedAt: string) => ({
            id,
            clusterId,
            tenant: "acme",
            reason: "future",
            windowStart: at(10),
            windowEnd: at(11),
            report: { metrics: { pods: 1 } },
            receivedAt,
          });
          expect(await store.usageQuarantine.insert(row("q1", "c1", at(1)))).toBe("inserted");
          expect(await store.usageQuarantine.insert(row("q1", "c1", at(5)))).toBe("duplicate");
          await store.usageQuarantine.insert(row("q2", "c2", at(2)));
          await store.usageQuarantine.insert(row("q3", "c1", at(3)));
          const c1 = await store.usageQuarantine.list({ clusterId: "c1" }, { limit: 10 });
          expect(c1.items.map((r) => r.id)).toEqual(["q3", "q1"]);
          expect(c1.items[1]).toEqual(row("q1", "c1", at(1)));
          const pages = await allPages((cursor) => store.usageQuarantine.list({}, { limit: 2, cursor }));
          expect(pages.map((p) => p.map((r) => r.id))).toEqual([["q3", "q2"], ["q1"]]);
          expect(
            await store.usageQuarantine.insertMany([
              row("q4", "c1", at(6)),
              row("q1", "c1", at(6)),
              row("q4", "c1", at(7)),
            ]),
          ).toEqual(["inserted", "duplicate", "duplicate"]);
          expect((await store.usageQuarantine.list({ clusterId: "c1" }, { limit: 10 })).items[0]).toEqual(
            row("q4", "c1", at(6)),
          );
        }));
    });

    describe("events and audit", () => {
      test("events: idempotent on id, newest first, filtered, paged through equal timestamps", () =>
        withStore(async (store) => {
          expect(await store.events.insert(event("e1", { at: at(1) }))).toBe("inserted");
          expect(await store.events.insert(event("e1", { at: at(1), message: "again" }))).toBe("duplicate");
          await store.events.insert(event("e2", { at: at(3), tenant: null }));
          await store.events.insert(event("e3", { at: at(2), clusterId: "c2", object: null }));
          await store.events.insert(event("e4", { at: at(2) }));
          await store.events.insert(event("e5", { at: at(2) }));
          const pages = await allPages((cursor) => store.events.list({}, { limit: 2, cursor }));
          expect(pages.map((p) => p.map((e) => e.id))).toEqual([["e2", "e5"], ["e4", "e3"], ["e1"]]);
          expect(pages[2]?.[0]).toEqual(event("e1", { at: at(1) }));
          const acme = await store.events.list({ tenant: "acme", clusterId: "c1" }, { limit: 10 });
          expect(acme.items.map((e) => e.id)).toEqual(["e5", "e4", "e1"]);
          expect((await store.events.list({ clusterId: "c2" }, { limit: 10 })).items[0]?.object).toBeNull();
        }));

      test("audit: newest first, filtered by tenant and actor, duplicate id is KN-409", () =>
        withStore(async (store) => {
          await store.audit.insert(
            audit("a1", { at: at(1), details: { before: null, after: { plan: "gold" } } }),
          );
          await store.audit.insert(audit("a2", { at: at(2), actor: "bob" }));
          await store.audit.insert(audit("a3", { at: at(3), tenant: null }));
          await store.audit.insert(audit("a4", { at: at(3), tenant: "beta" }));
          const all = await allPages((cursor) => store.audit.list({}, { limit: 3, cursor }));
          expect(all.map((p) => p.map((a) => a.id))).toEqual([["a4", "a3", "a2"], ["a1"]]);
          expect(all[1]?.[0]?.details).toEqual({ before: null, after: { plan: "gold" } });
          expect((await store.audit.list({ tenant: "acme" }, { limit: 10 })).items.map((a) => a.id)).toEqual([
            "a2",
            "a1",
          ]);
          expect((await store.audit.list({ actor: "bob" }, { limit: 10 })).items.map((a) => a.id)).toEqual([
            "a2",
          ]);
          expect((await failure(store.audit.insert(audit("a1")))).code).toBe("KN-409");
        }));
    });

    describe("idempotency keys and settings", () => {
      test("put once, get, refuse the second put, expire by age", () =>
        withStore(async (store) => {
          const row = {
            scope: "alice|POST /api/v1/tenants",
            key: "k1",
            requestHash: "abc",
            status: 201,
            body: '{"name":"acme"}',
            createdAt: at(0),
          };
          expect(await store.idempotency.put(row)).toBe(true);
          expect(await store.idempotency.put({ ...row, requestHash: "other", status: 500 })).toBe(false);
          expect(await store.idempotency.get(row.scope, "k1")).toEqual(row);
          expect(await store.idempotency.get("bob|POST /api/v1/tenants", "k1")).toBeNull();
          expect(await store.idempotency.put({ ...row, key: "k2", createdAt: at(10) })).toBe(true);
          expect(await store.idempotency.expire(at(10))).toBe(1);
          expect(await store.idempotency.get(row.scope, "k1")).toBeNull();
          expect(await store.idempotency.get(row.scope, "k2")).not.toBeNull();
        }));

      test("settings: missing is null, put overwrites", () =>
        withStore(async (store) => {
          expect(await store.settings.get("ca.key")).toBeNull();
          await store.settings.put("ca.key", "wrapped-1");
          await store.settings.put("ca.key", "wrapped-2");
          await store.settings.put("other", "");
          expect(await store.settings.get("ca.key")).toBe("wrapped-2");
          expect(await store.settings.get("other")).toBe("");
        }));
    });

    describe("enrolment: bootstrap tokens, client certificates, revocation", () => {
      const token = (hash: string, overrides: Partial<BootstrapTokenRow> = {}): BootstrapTokenRow => ({
        tokenHash: hash,
        clusterId: "id-dc1",
        createdAt: at(0),
        expiresAt: at(60),
        usedAt: null,
        ...overrides,
      });
      const certificate = (
        serial: string,
        overrides: Partial<ClusterCertificateRow> = {},
      ): ClusterCertificateRow => ({
        serial,
        clusterId: "id-dc1",
        fingerprint: `fp-${serial}`,
        notBefore: at(0),
        notAfter: at(60 * 24),
        issuedAt: at(1),
        revokedAt: null,
        ...overrides,
      });

      test("a token burns once, only before it expires; a duplicate hash is KN-409", () =>
        withStore(async (store) => {
          await store.bootstrapTokens.insert(token("h1"));
          await store.bootstrapTokens.insert(token("h2", { expiresAt: at(5) }));
          expect((await failure(store.bootstrapTokens.insert(token("h1")))).code).toBe("KN-409");
          expect(await store.bootstrapTokens.get("h1")).toEqual(token("h1"));
          expect(await store.bootstrapTokens.get("nope")).toBeNull();
          // expired at the time of use: not burnt
          expect(await store.bootstrapTokens.consume("h2", at(5))).toBeNull();
          const burnt = await store.bootstrapTokens.consume("h1", at(10));
          expect(burnt).toEqual(token("h1", { usedAt: at(10) }));
          expect(await store.bootstrapTokens.consume("h1", at(11))).toBeNull();
          expect(await store.bootstrapTokens.consume("nope", at(11))).toBeNull();
        }));

      test("concurrent consumers of one token: exactly one wins", () =>
        withStore(async (store) => {
          await store.bootstrapTokens.insert(token("race"));
          const results = await Promise.all(
            Array.from({ length: 8 }, () => store.bootstrapTokens.consume("race", at(2))),
          );
          expect(results.filter((r) => r !== null)).toHaveLength(1);
        }));

      test("deleteUnused keeps used tokens and other clusters' tokens; deleteForCluster drops all", () =>
        withStore(async (store) => {
          await store.bootstrapTokens.insert(token("used"));
          await store.bootstrapTokens.consume("used", at(1));
          await store.bootstrapTokens.insert(token("fresh"));
          await store.bootstrapTokens.insert(token("other", { clusterId: "id-dc2" }));
          expect(await store.bootstrapTokens.deleteUnused("id-dc1")).toBe(1);
          expect(await store.bootstrapTokens.get("fresh")).toBeNull();
          expect(await store.bootstrapTokens.get("used")).not.toBeNull();
          expect(await store.bootstrapTokens.get("other")).not.toBeNull();
          expect(await store.bootstrapTokens.deleteForCluster("id-dc1")).toBe(1);
          expect(await store.bootstrapTokens.get("used")).toBeNull();
        }));

      test("certificates: insert, get, list per cluster in issue order, revoke all unrevoked once", () =>
        withStore(async (store) => {
          await store.clusterCertificates.insert(certificate("0b", { issuedAt: at(3) }));
          await store.clusterCertificates.insert(certificate("0a", { issuedAt: at(2) }));
          await store.clusterCertificates.insert(certificate("0c", { clusterId: "id-dc2" }));
          expect((await failure(store.clusterCertificates.insert(certificate("0a")))).code).toBe("KN-409");
          expect(await store.clusterCertificates.get("0c")).toEqual(
            certificate("0c", { clusterId: "id-dc2" }),
          );
          expect((await store.clusterCertificates.listForCluster("id-dc1")).map((c) => c.serial)).toEqual([
            "0a",
            "0b",
          ]);
          expect(await store.clusterCertificates.revokeForCluster("id-dc1", at(30))).toBe(2);
          expect(await store.clusterCertificates.revokeForCluster("id-dc1", at(40))).toBe(0);
          expect((await store.clusterCertificates.get("0a"))?.revokedAt).toBe(at(30));
          expect((await store.clusterCertificates.get("0c"))?.revokedAt).toBeNull();
        }));

      test("a cluster's revokedAt round-trips and clears", () =>
        withStore(async (store) => {
          const inserted = await store.clusters.insert(cluster("dc1"));
          expect(inserted.revokedAt).toBeNull();
          const revoked = await store.clusters.update({ ...inserted, revokedAt: at(7) });
          expect(revoked.revokedAt).toBe(at(7));
          const cleared = await store.clusters.update({ ...revoked, revokedAt: null });
          expect(cleared.revokedAt).toBeNull();
        }));

      test("settings.putIfAbsent: the first writer wins, racing writers agree", () =>
        withStore(async (store) => {
          expect(await store.settings.putIfAbsent("pki.ca", "first")).toBe(true);
          expect(await store.settings.putIfAbsent("pki.ca", "second")).toBe(false);
          expect(await store.settings.get("pki.ca")).toBe("first");
          const wins = await Promise.all(
            ["a", "b", "c", "d"].map((v) => store.settings.putIfAbsent("race", v)),
          );
          expect(wins.filter(Boolean)).toHaveLength(1);
        }));
    });

    describe("availability", () => {
      test("a closed store answers KN-503 (retryable) and close is idempotent", async () => {
        const { store, cleanup } = await makeStore();
        try {
          await store.close();
          const error = await failure(store.ping());
          expect(error.code).toBe("KN-503");
          expect(error.retryable).toBe(true);
          expect((await failure(store.tenants.get("acme"))).code).toBe("KN-503");
          await store.close();
        } finally {
          await cleanup();
        }
      });
    });
  });
}

function plan(name: string, overrides: Partial<PlanRow> = {}): PlanRow {
  return {
    name,
    displayName: null,
    description: null,
    quotas: {},
    limitRange: null,
    allowLoadBalancers: false,
    traits: [],
    policies: [],
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    ...overrides,
  };
}
