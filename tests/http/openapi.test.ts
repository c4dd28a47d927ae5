/** /openapi.json is valid OpenAPI 3.1 and describes every route the app serves; /docs works offline. */
import { afterAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { createTestManager } from "./harness.ts";

/** Routes served outside the OpenAPI document on purpose: the document itself, the reference page, the dashboard. */
const UNDOCUMENTED = new Set([
  "GET /openapi.json",
  "GET /docs",
  "GET /docs/scalar.js",
  "GET /ui",
  "GET /ui/{file}",
]);

const toOpenApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

describe("OpenAPI document", async () => {
  const m = await createTestManager();
  afterAll(() => m.close());
  const doc = (await m.call("GET", "/openapi.json")).body as {
    openapi: string;
    paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>>;
  };

  test("is valid OpenAPI 3.1", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as Parameters<Validator["validate"]>[0]);
    if (!result.valid) console.error(JSON.stringify(result.errors, null, 2).slice(0, 4000));
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  test("describes every route the app serves", () => {
    const served = m.app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${toOpenApiPath(r.path)}`)
      .filter((key, i, all) => all.indexOf(key) === i && !UNDOCUMENTED.has(key));
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.filter((route) => !documented.includes(route))).toEqual([]);
    expect(documented.filter((route) => !served.includes(route))).toEqual([]);
    expect(documented.length).toBeGreaterThanOrEqual(40);
  });

  test("every operation has a unique operationId, a success response and the error body", () => {
    const ids = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(op.operationId, `${method} ${path}`).toBeString();
        expect(ids.has(op.operationId!)).toBe(false);
        ids.add(op.operationId!);
        const statuses = Object.keys(op.responses ?? {});
        expect(statuses.some((s) => s.startsWith("2"))).toBe(true);
        if (path.startsWith("/api/v1")) expect(statuses).toContain("401");
      }
    }
  });

  test("/docs serves the reference without any CDN", async () => {
    const page = await m.call("GET", "/docs");
    expect(page.status).toBe(200);
    expect(String(page.body)).toContain("/docs/scalar.js");
    expect(String(page.body)).not.toMatch(/<script[^>]+src="https?:\/\//);
    const script = await m.app.request("/docs/scalar.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await script.text()).length).toBeGreaterThan(100_000);
  });
});
