import { afterEach, describe, expect, test } from "bun:test";
import { CACHEABLE_READS } from "../../manager/http/response-cache.ts";
import { createTestManager, SAMPLE_SPEC, seedWorld, type TestManager } from "./harness.ts";

let m: TestManager;
afterEach(() => m?.close());

/** Counts the store reads the handlers make: a response answered from the cache makes none. */
function countReads(manager: TestManager): { reads: number } {
  const counter = { reads: 0 };
  for (const repo of [manager.store.tenants, manager.store.projects, manager.store.apps]) {
    for (const method of ["get", "list"] as const) {
      const original = (repo as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
      (repo as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        counter.reads++;
        return original.apply(repo, args);
      };
    }
  }
  return counter;
}

const withoutRequestId = (headers: Headers) =>
  [...headers].filter(([name]) => name !== "x-request-id").sort(([a], [b]) => a.localeCompare(b));

describe("response cache", () => {
  test("a repeated read is answered from the cache: same status, bytes and headers, no store read", async () => {
    m = await createTestManager();
    await seedWorld(m);
    const token = await m.token("tenantOwner", { tenant: "acme" });
    const counter = countReads(m);
    for (const path of [
      "/api/v1/tenants/acme",
      "/api/v1/tenants/acme/projects/web",
      "/api/v1/tenants/acme/projects/web/apps",
      "/api/v1/tenants/acme/projects/web/apps?limit=1",
      "/api/v1/tenants/acme/projects/web/apps/site",
    ]) {
      const first = await m.app.request(path, { headers: { authorization: `Bearer ${token}` } });
      const firstBody = await first.text();
      const readsBefore = counter.reads;
      const again = await m.app.request(path, {
        headers: { authorization: `Bearer ${token}`, "x-request-id": "again-1" },
      });
      expect(again.status).toBe(200);
      expect(await again.text()).toBe(firstBody);
      expect(withoutRequestId(again.headers)).toEqual(withoutRequestId(first.headers));
      expect(again.headers.get("x-request-id")).toBe("again-1");
      expect(counter.reads).toBe(readsBefore);
    }
    // Every answer still logs its access line, the cached ones included.
    const lines = m.logs.filter((r) => r.msg === "request" && r.request_id === "again-1");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({
      level: "info",
      method: "GET",
      path: "/api/v1/tenants/acme",
      status: 200,
      subject: "tenantOwner@acme",
      tenant: "acme",
    });
  });

  test("a write to any table a response was read from is seen by the next read", async () => {
    m = await createTestManager();
    const { admin } = await seedWorld(m);
    const read = async (path: string) => (await m.call("GET", path, { token: admin })).body;
    expect((await read("/api/v1/tenants/acme")).labels).toEqual({});
    expect((await read("/api/v1/tenants/acme/projects/web")).labels).toEqual({});
    expect((await read("/api/v1/tenants/acme/projects/web/apps")).items).toHaveLength(1);
    expect((await read("/api/v1/tenants/acme/projects/web/apps/site")).labels).toEqual({});

    await m.call("PATCH", "/api/v1/tenants/acme", { token: admin, body: { labels: { tier: "gold" } } });
    await m.call("PATCH", "/api/v1/tenants/acme/projects/web", {
      token: admin,
      body: { labels: { a: "1" } },
    });
    await m.call("POST", "/api/v1/tenants/acme/projects/web/apps", {
      token: admin,
      body: { name: "api", spec: SAMPLE_SPEC },
    });
    await m.call("PATCH", "/api/v1/tenants/acme/projects/web/apps/site", {
      token: admin,
      body: { labels: { b: "2" } },
    });
    const tenant = await m.call("GET", "/api/v1/tenants/acme", { token: admin });
    expect(tenant.body.labels).toEqual({ tier: "gold" });
    expect(tenant.headers.get("etag")).toBe(`"${tenant.body.version}"`);
    expect((await read("/api/v1/tenants/acme/projects/web")).labels).toEqual({ a: "1" });
    expect((await read("/api/v1/tenants/acme/projects/web/apps")).items.map((a: any) => a.name)).toEqual([
      "api",
      "site",
    ]);
    expect((await read("/api/v1/tenants/acme/projects/web/apps/site")).labels).toEqual({ b: "2" });

    // A deleted project: the app list that was cached under it answers 404 now.
    await m.call("DELETE", "/api/v1/tenants/acme/projects/web/apps/api", { token: admin });
    await m.call("DELETE", "/api/v1/tenants/acme/projects/web/apps/site", { token: admin });
    await m.call("DELETE", "/api/v1/tenants/acme/projects/web", { token: admin });
    expect((await m.call("GET", "/api/v1/tenants/acme/projects/web/apps", { token: admin })).status).toBe(
      404,
    );
  });

  test("every caller is still authenticated and authorized on a cached response", async () => {
    let now = new Date();
    m = await createTestManager({ now: () => now });
    await seedWorld(m);
    const path = "/api/v1/tenants/acme/projects/web/apps";
    const owner = await m.token("tenantOwner", { tenant: "acme", ttlSeconds: 60 });
    expect((await m.call("GET", path, { token: owner })).status).toBe(200);
    expect((await m.call("GET", path, { token: owner })).status).toBe(200);

    const other = await m.call("GET", path, { token: await m.token("tenantOwner", { tenant: "globex" }) });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe("KN-404");
    const otherProject = await m.call("GET", path, {
      token: await m.token("projectDev", { tenant: "acme", project: "api" }),
    });
    expect(otherProject.status).toBe(404);
    const none = await m.call("GET", path);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="kubenova"');
    const [header, payload, signature] = owner.split(".") as [string, string, string];
    const forged = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith("AA") ? "AB" : "AA"}`;
    expect((await m.call("GET", path, { token: forged })).status).toBe(401);
    // The owner's token, remembered by the verifier, expires: the cached response is not answered any more.
    now = new Date(now.getTime() + 60_000 + 31_000);
    const expired = await m.call("GET", path, { token: owner });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/expired/);
  });

  test("only reads whose answer depends on nothing but their path, query and tables are cached", () => {
    // Lists filtered by the caller (listTenants, listProjects) and anything reading clocks, clusters or other
    // tables must stay out; adding an operation here means adding its tables.
    expect(Object.keys(CACHEABLE_READS).sort()).toEqual(["getApp", "getProject", "getTenant", "listApps"]);
  });
});
