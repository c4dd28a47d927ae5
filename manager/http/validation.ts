/**
 * Synchronous validation of a route's path, query and header parameters. `@hono/zod-openapi` validates each of
 * them in its own middleware through zod's `safeParseAsync` (a promise and an await per target and request, and
 * a Content-Type lookup even on a GET); these schemas have no async refinements, so one middleware per route
 * checks them all with `safeParse`. Bodies keep the library's validators (their reading is async anyway), the
 * OpenAPI document is registered from the unchanged route, and a failure is the same KN-400 as before.
 */

import type { MiddlewareHandler } from "hono";
import type { ZodError, ZodType } from "zod";
import type { AppEnv, ManagerApp } from "./context.ts";

type Target = "query" | "param" | "header";

interface RequestSchemas {
  query?: ZodType;
  params?: ZodType;
  headers?: ZodType;
  cookies?: unknown;
  body?: unknown;
}

function headerKeymap(schema: ZodType): Record<string, string> {
  // As @hono/zod-validator: header names arrive lowercased; map them back to the schema's spelling.
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  return Object.fromEntries(Object.keys(shape).map((key) => [key.toLowerCase(), key]));
}

/** One middleware validating `targets` in the library's order (query, path, headers). */
function validateParameters(
  targets: Array<[Target, ZodType]>,
  onInvalid: (error: ZodError, target: Target) => never,
): MiddlewareHandler<AppEnv> {
  const keymaps = targets.map(([target, schema]) => (target === "header" ? headerKeymap(schema) : null));
  return (c, next) => {
    for (let i = 0; i < targets.length; i++) {
      const [target, schema] = targets[i]!;
      let value: unknown;
      if (target === "param") value = c.req.param();
      else if (target === "query") {
        const queries = c.req.queries();
        const single: Record<string, string | string[]> = {};
        for (const key of Object.keys(queries)) {
          const values = queries[key]!;
          single[key] = values.length === 1 ? values[0]! : values;
        }
        value = single;
      } else {
        const keymap = keymaps[i]!;
        const headers: Record<string, string> = {};
        const all = c.req.header();
        for (const key of Object.keys(all)) headers[keymap[key] ?? key] = all[key]!;
        value = headers;
      }
      const result = schema.safeParse(value);
      if (!result.success) onInvalid(result.error, target);
      c.req.addValidatedData(target, result.data as object);
    }
    return next();
  };
}

/**
 * Makes `app.openapi` validate path, query and header parameters synchronously (see the module comment); routes
 * are declared as before. `onInvalid` throws the error a failed check answers.
 */
export function useSyncParameterValidation(
  app: ManagerApp,
  onInvalid: (error: ZodError, target: Target) => never,
): void {
  const register = app.openapi;
  app.openapi = ((input, handler, hook) => {
    const { middleware, hide, ...route } = input as typeof input & { hide?: boolean };
    const request = route.request as RequestSchemas | undefined;
    // A route-level hook or cookie parameters: the library's own validators, unchanged.
    if (hook !== undefined || request?.cookies !== undefined) return register(input, handler, hook);
    const targets: Array<[Target, ZodType]> = [];
    if (request?.query) targets.push(["query", request.query]);
    if (request?.params) targets.push(["param", request.params]);
    if (request?.headers) targets.push(["header", request.headers]);
    if (targets.length === 0) return register(input, handler);
    if (!hide) app.openAPIRegistry.registerPath(route);
    const routeMiddleware =
      middleware === undefined ? [] : Array.isArray(middleware) ? middleware : [middleware];
    return register(
      {
        ...route,
        hide: true,
        middleware: [...routeMiddleware, validateParameters(targets, onInvalid)],
        request: request?.body === undefined ? {} : { body: request.body },
      } as typeof input,
      handler,
    );
  }) as typeof app.openapi;
}
