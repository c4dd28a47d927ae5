/**
 * @module manager/http — the Manager's REST API (`/api/v1`, OpenAPI 3.1 at `/openapi.json`, reference at
 * `/docs`) as one Hono app built from injected services: `createApp(services).request(...)` in tests,
 * `Bun.serve({ fetch: app.fetch })` in main.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { KubeNovaError } from "../../shared/errors.ts";
import type { OperationId } from "./authz.ts";
import type { AppEnv, AppServices, ManagerApp } from "./context.ts";
import { handleError, validationError } from "./errors.ts";
import { authenticate, checkBody, requestContext } from "./middleware.ts";
import { CACHEABLE_READS, ResponseCache } from "./response-cache.ts";
import { registerAppRoutes } from "./routes/apps.ts";
import { registerCatalogRoutes } from "./routes/catalog.ts";
import { registerClusterRoutes } from "./routes/clusters.ts";
import { registerDocsRoutes } from "./routes/docs.ts";
import { isBootstrapAuthenticated, registerEnrolmentRoutes } from "./routes/enrolment.ts";
import { registerEventRoutes } from "./routes/events.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerIdentityRoutes } from "./routes/identity.ts";
import { registerKubeconfigRoutes } from "./routes/kubeconfigs.ts";
import { registerTenantRoutes } from "./routes/tenants.ts";
import { registerUiRoutes } from "./routes/ui.ts";
import { registerUsageRoutes } from "./routes/usage.ts";
import { useSyncParameterValidation } from "./validation.ts";

export const API_PREFIX = "/api/v1";

/**
 * Cacheable reads (CACHEABLE_READS) keep their responses, after the route's own middleware (authorization), and
 * the app answers a cached one before routing when the caller's token and access check out.
 */
function useResponseCache(app: ManagerApp, responses: ResponseCache, services: AppServices): void {
  const register = app.openapi;
  app.openapi = ((route, handler, hook) => {
    const tables = route.operationId ? CACHEABLE_READS[route.operationId as OperationId] : undefined;
    if (tables === undefined) return register(route, handler, hook);
    const middleware = route.middleware === undefined ? [] : [route.middleware].flat();
    const fill = responses.fill(route.operationId as OperationId, tables);
    return register({ ...route, middleware: [...middleware, fill] } as typeof route, handler, hook);
  }) as typeof app.openapi;
  const dispatch = app.fetch;
  app.fetch = (request, env, executionCtx) =>
    responses.answer(request, services) ?? dispatch(request, env, executionCtx);
}

export function createApp(services: AppServices): ManagerApp {
  const app = new OpenAPIHono<AppEnv>({
    // zod failures become KN-400 with one entry per field (NOTES.md: the default body is a JSON string).
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });
  useSyncParameterValidation(app, (error, target) => {
    throw validationError(error, target);
  });
  const responses = services.store.versions ? new ResponseCache(services.store.versions) : null;
  if (responses) useResponseCache(app, responses, services);

  app.use("*", requestContext(services.logger, services.metrics));
  app.onError(handleError);
  app.notFound((c) => {
    throw new KubeNovaError("KN-404", `no route for ${c.req.method} ${c.req.path}`);
  });

  registerHealthRoutes(app, services);
  registerDocsRoutes(app, services);
  registerUiRoutes(app);

  app.use(`${API_PREFIX}/*`, checkBody(services.options.bodyLimitBytes));
  app.use(
    `${API_PREFIX}/*`,
    authenticate({
      verifier: services.verifier,
      insecureDevAuth: services.options.insecureDevAuth,
      logger: services.logger,
      skip: isBootstrapAuthenticated,
    }),
  );

  registerIdentityRoutes(app, services);
  registerClusterRoutes(app, services);
  registerEnrolmentRoutes(app, services);
  registerCatalogRoutes(app, services);
  registerTenantRoutes(app, services);
  registerAppRoutes(app, services);
  registerUsageRoutes(app, services);
  registerKubeconfigRoutes(app, services);
  registerEventRoutes(app, services);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A KubeNova access token (`kubenova token` or `POST /api/v1/tokens`)",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bootstrapToken", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "knb_",
    description:
      "A cluster's one-time bootstrap token (`knb_…`, from registration or `POST …/bootstrap-token`); API tokens are refused",
  });
  return app;
}
