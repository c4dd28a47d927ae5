/**
 * @module manager/http — the Manager's REST API (`/api/v1`, OpenAPI 3.1 at `/openapi.json`, reference at
 * `/docs`) as one Hono app built from injected services: `createApp(services).request(...)` in tests,
 * `Bun.serve({ fetch: app.fetch })` in main.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { KubeNovaError } from "../../shared/errors.ts";
import type { AppEnv, AppServices, ManagerApp } from "./context.ts";
import { handleError, validationError } from "./errors.ts";
import { authenticate, limitBody, requestContext, requireJson } from "./middleware.ts";
import { registerAppRoutes } from "./routes/apps.ts";
import { registerCatalogRoutes } from "./routes/catalog.ts";
import { registerClusterRoutes } from "./routes/clusters.ts";
import { registerDocsRoutes } from "./routes/docs.ts";
import { registerEventRoutes } from "./routes/events.ts";
import { isBootstrapAuthenticated, registerEnrolmentRoutes } from "./routes/enrolment.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerIdentityRoutes } from "./routes/identity.ts";
import { registerKubeconfigRoutes } from "./routes/kubeconfigs.ts";
import { registerTenantRoutes } from "./routes/tenants.ts";
import { registerUiRoutes } from "./routes/ui.ts";
import { registerUsageRoutes } from "./routes/usage.ts";

export const API_PREFIX = "/api/v1";

export function createApp(services: AppServices): ManagerApp {
  const app = new OpenAPIHono<AppEnv>({
    // zod failures become KN-400 with one entry per field (NOTES.md: the default body is a JSON string).
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });

  app.use("*", requestContext(services.logger, services.metrics));
  app.onError(handleError);
  app.notFound((c) => {
    throw new KubeNovaError("KN-404", `no route for ${c.req.method} ${c.req.path}`);
  });

  registerHealthRoutes(app, services);
  registerDocsRoutes(app, services);
  registerUiRoutes(app);

  app.use(`${API_PREFIX}/*`, limitBody(services.options.bodyLimitBytes));
  app.use(`${API_PREFIX}/*`, requireJson());
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
