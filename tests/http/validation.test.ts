import { describe, expect, test } from "bun:test";
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../../manager/http/context.ts";
import { validationError } from "../../manager/http/errors.ts";
import { useSyncParameterValidation } from "../../manager/http/validation.ts";
import { KubeNovaError } from "../../shared/errors.ts";

/** Schemas whose async parse fails the test: parameters must be checked without it. */
function syncOnly<T extends z.ZodType>(schema: T): T {
  (schema as unknown as { safeParseAsync: () => never }).safeParseAsync = () => {
    throw new Error("parameters were validated through safeParseAsync");
  };
  return schema;
}

function makeApp() {
  const app = new OpenAPIHono<AppEnv>();
  useSyncParameterValidation(app, (error, target) => {
    throw validationError(error, target);
  });
  app.onError((error, c) =>
    error instanceof KubeNovaError
      ? c.json({ code: error.code, details: error.details }, 400)
      : c.json({ crash: error.message }, 500),
  );
  const order: string[] = [];
  app.openapi(
    createRoute({
      operationId: "getThing",
      method: "get",
      path: "/things/{name}",
      middleware: [
        async (_c, next) => {
          order.push("route middleware");
          await next();
        },
      ] as const,
      request: {
        params: syncOnly(z.object({ name: z.string().regex(/^[a-z]+$/, "lowercase letters only") })),
        query: syncOnly(z.object({ limit: z.coerce.number().int().max(10).optional() }).strict()),
        headers: syncOnly(z.object({ "X-Flavour": z.string().optional() })),
      },
      responses: { 200: { description: "ok" } },
    }),
    (c) => {
      order.push("handler");
      return c.json({ ...c.req.valid("param"), ...c.req.valid("query"), ...c.req.valid("header") }, 200);
    },
  );
  return { app, order };
}

describe("synchronous parameter validation", () => {
  test("path, query and header parameters are validated and typed without zod's async parse", async () => {
    const { app, order } = makeApp();
    const res = await app.request("/things/abc?limit=3", { headers: { "x-flavour": "mint" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: "abc", limit: 3, "X-Flavour": "mint" });
    expect(order).toEqual(["route middleware", "handler"]);
  });

  test("a bad parameter is a KN-400 naming it, after the route's own middleware", async () => {
    const { app, order } = makeApp();
    const badPath = await app.request("/things/ABC");
    expect(badPath.status).toBe(400);
    expect(await badPath.json()).toEqual({
      code: "KN-400",
      details: [{ path: "path.name", message: "lowercase letters only" }],
    });
    const badQuery = await app.request("/things/abc?limit=99&extra=1");
    expect(((await badQuery.json()) as { details: { path: string }[] }).details.map((d) => d.path)).toEqual([
      "query.limit",
      "query.extra",
    ]);
    expect(order).toEqual(["route middleware", "route middleware"]);
  });

  test("the OpenAPI document still describes every parameter", () => {
    const { app } = makeApp();
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "1" } });
    const parameters = doc.paths?.["/things/{name}"]?.get?.parameters as Array<{ in: string; name: string }>;
    expect(parameters.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      "header:X-Flavour",
      "path:name",
      "query:limit",
    ]);
  });
});
