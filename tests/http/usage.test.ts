/**
 * Usage reports: totals equal the raw records exactly, in UTC buckets across a month boundary and both 2026 EU
 * daylight-saving changes (which UTC does not have), adjustments shown as such, stable CSV columns.
 */
import { describe, expect, test } from "bun:test";
import type { UsageMetrics } from "../../shared/api/models.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { createTestManager, seedWorld, type TestManager } from "./harness.ts";

const metrics = (n: number): UsageMetrics => ({
  cpuRequestMillicores: 100 * n,
  memoryRequestBytes: 1024 * n,
  storageBytes: 10 * n,
  loadBalancers: n % 2,
  pods: n,
  namespaces: 2,
  applications: 1,
  quotaViolations: n === 5 ? 1 : 0,
});

/** Hour-long windows; n is the record's weight. */
const FIXTURE: Array<{
  start: string;
  n: number;
  project: string | null;
  adjustment?: boolean;
  cluster?: string;
}> = [
  { start: "2026-01-31T22:00:00.000Z", n: 1, project: "web" },
  { start: "2026-01-31T23:00:00.000Z", n: 2, project: "web" },
  { start: "2026-02-01T00:00:00.000Z", n: 3, project: null },
  { start: "2026-02-01T01:00:00.000Z", n: 4, project: "web", adjustment: true },
  { start: "2026-03-29T00:00:00.000Z", n: 5, project: "web" }, // EU clocks go forward at 01:00 UTC
  { start: "2026-03-29T01:00:00.000Z", n: 6, project: "web", cluster: "dc2" },
  { start: "2026-10-25T00:00:00.000Z", n: 7, project: null }, // EU clocks go back at 01:00 UTC
  { start: "2026-10-25T01:00:00.000Z", n: 8, project: "web" },
];

async function seedUsage(m: TestManager) {
  const dc1 = (await m.store.clusters.get("dc1"))!.id;
  const dc2 = (await m.store.clusters.get("dc2"))!.id;
  for (const f of FIXTURE) {
    const start = Date.parse(f.start);
    await m.store.usage.insert({
      id: uuidv7(),
      clusterId: f.cluster === "dc2" ? dc2 : dc1,
      tenant: "acme",
      windowStart: f.start,
      windowEnd: new Date(start + 3_600_000).toISOString(),
      metrics: metrics(f.n),
      byProject: f.project ? { [f.project]: metrics(f.n) } : {},
      adjustment: f.adjustment ?? false,
      receivedAt: new Date().toISOString(),
    });
  }
  // Another tenant's usage must never show up in acme's report.
  await m.store.usage.insert({
    id: uuidv7(),
    clusterId: dc1,
    tenant: "globex",
    windowStart: "2026-02-01T00:00:00.000Z",
    windowEnd: "2026-02-01T01:00:00.000Z",
    metrics: metrics(100),
    byProject: {},
    adjustment: false,
    receivedAt: new Date().toISOString(),
  });
}

const YEAR = "from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z";

describe("usage reports", () => {
  test.each([
    // granularity, expected buckets as [start, pods sum]
    ["hour", FIXTURE.map((f) => [f.start, f.n])],
    [
      "day",
      [
        ["2026-01-31T00:00:00.000Z", 1 + 2],
        ["2026-02-01T00:00:00.000Z", 3 + 4],
        ["2026-03-29T00:00:00.000Z", 5 + 6],
        ["2026-10-25T00:00:00.000Z", 7 + 8],
      ],
    ],
    [
      "month",
      [
        ["2026-01-01T00:00:00.000Z", 3],
        ["2026-02-01T00:00:00.000Z", 7],
        ["2026-03-01T00:00:00.000Z", 11],
        ["2026-10-01T00:00:00.000Z", 15],
      ],
    ],
  ] as const)("%s buckets sum the raw records exactly", async (granularity, expected) => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      await seedUsage(m);
      const res = await m.call("GET", `/api/v1/tenants/acme/usage?${YEAR}&granularity=${granularity}`, {
        token: admin,
      });
      expect(res.status).toBe(200);
      expect(
        res.body.buckets.map((b: { start: string; metrics: UsageMetrics }) => [b.start, b.metrics.pods]),
      ).toEqual(expected.map(([start, pods]) => [start, pods]));
      // 1+2+…+8 = 36 pods; cpu = 100 × 36; one quota violation (n = 5); the adjustment row is n = 4.
      expect(res.body.totals).toMatchObject({
        pods: 36,
        cpuRequestMillicores: 3600,
        memoryRequestBytes: 36 * 1024,
        quotaViolations: 1,
      });
      expect(res.body.adjustments).toMatchObject({ pods: 4, cpuRequestMillicores: 400 });
      expect(res.body.records).toBe(8);
    } finally {
      await m.close();
    }
  });

  test("per cluster, per project, across tenants, and CSV", async () => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      await seedUsage(m);
      const dc2 = await m.call("GET", `/api/v1/tenants/acme/usage?${YEAR}&granularity=month&cluster=dc2`, {
        token: admin,
      });
      expect(dc2.body.totals.pods).toBe(6);
      const project = await m.call(
        "GET",
        `/api/v1/tenants/acme/projects/web/usage?${YEAR}&granularity=month`,
        { token: admin },
      );
      // web's share: 1 + 2 + 4 + 5 + 6 + 8 = 26
      expect(project.body.totals.pods).toBe(26);
      expect(project.body.project).toBe("web");
      const platform = await m.call("GET", `/api/v1/usage?${YEAR}&granularity=month`, { token: admin });
      expect(platform.body.byTenant.acme.pods).toBe(36);
      expect(platform.body.byTenant.globex.pods).toBe(100);
      expect(platform.body.totals.pods).toBe(136);

      const csv = await m.app.request(`/api/v1/tenants/acme/usage?${YEAR}&format=csv`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(csv.headers.get("content-type")).toContain("text/csv");
      const lines = (await csv.text()).trimEnd().split("\r\n");
      expect(lines[0]).toBe(
        "tenant,cluster_id,window_start,window_end,adjustment,cpu_request_millicores,memory_request_bytes,storage_bytes,load_balancers,pods,namespaces,applications,quota_violations,record_id",
      );
      expect(lines).toHaveLength(9);
      expect(lines[1]).toStartWith("acme,");
      expect(lines[1]).toContain(
        ",2026-01-31T22:00:00.000Z,2026-01-31T23:00:00.000Z,false,100,1024,10,1,1,2,1,0,",
      );
      expect(lines.filter((l) => l.includes(",true,"))).toHaveLength(1);
      expect(lines.join("\n")).not.toContain("globex");

      // A tenant owner sees its own report and not the platform's.
      const owner = await m.token("tenantOwner", { tenant: "acme" });
      expect((await m.call("GET", `/api/v1/tenants/acme/usage?${YEAR}`, { token: owner })).status).toBe(200);
      expect((await m.call("GET", `/api/v1/tenants/globex/usage?${YEAR}`, { token: owner })).status).toBe(
        404,
      );
      expect((await m.call("GET", `/api/v1/usage?${YEAR}`, { token: owner })).status).toBe(403);
    } finally {
      await m.close();
    }
  });

  test.each([
    ["from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "query.from"],
    ["from=2025-01-01T00:00:00Z&to=2026-06-01T00:00:00Z", "query.to"],
    ["granularity=week", "query.granularity"],
    ["format=xml", "query.format"],
  ])("%s is refused naming %s", async (query, field) => {
    const m = await createTestManager();
    try {
      const { admin } = await seedWorld(m);
      const res = await m.call("GET", `/api/v1/tenants/acme/usage?${query}`, { token: admin });
      expect(res.status).toBe(400);
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(field);
    } finally {
      await m.close();
    }
  });
});
