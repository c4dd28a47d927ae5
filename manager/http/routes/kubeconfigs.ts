/** `POST …/kubeconfig`: scoped kubeconfigs for tenants and projects, minted by the cluster on demand. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { ProjectName, TenantName } from "../../../shared/api/common.ts";
import { KubeconfigRequest, KubeconfigResponse } from "../../../shared/api/models.ts";
import { issueKubeconfig } from "../../services/kubeconfigs.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf } from "../helpers.ts";
import { body, errorResponses, json } from "./shared.ts";

const security = [{ bearerAuth: [] }];
const description =
  "The Manager asks the cluster's operator for a ServiceAccount token (tenantOwner → owner, projectDev → the " +
  "project's dev account, readOnly → readonly) and returns a kubeconfig pointing at the cluster's capsule-proxy. " +
  "The token is not stored; an audit record is. A cluster that is not connected answers 503.";

export function registerKubeconfigRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "issueTenantKubeconfig",
      method: "post",
      path: "/api/v1/tenants/{tenant}/kubeconfig",
      tags: ["kubeconfigs"],
      security,
      summary: "A kubeconfig for the tenant (owner or read-only)",
      description,
      middleware: [requireAccess("issueTenantKubeconfig")] as const,
      request: { params: z.object({ tenant: TenantName }), ...body(KubeconfigRequest) },
      responses: {
        201: json(KubeconfigResponse, "The kubeconfig"),
        ...errorResponses(403, 404, 413, 415, 422, 503),
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const result = await issueKubeconfig(services, actorOf(c), c.get("principal"), {
        tenant: c.req.valid("param").tenant,
        role: input.role,
        ...(input.ttlSeconds ? { ttlSeconds: input.ttlSeconds } : {}),
        ...(input.cluster ? { cluster: input.cluster } : {}),
      });
      return c.json(result, 201);
    },
  );

  app.openapi(
    createRoute({
      operationId: "issueProjectKubeconfig",
      method: "post",
      path: "/api/v1/tenants/{tenant}/projects/{project}/kubeconfig",
      tags: ["kubeconfigs"],
      security,
      summary: "A kubeconfig for one project (projectDev or read-only)",
      description,
      middleware: [requireAccess("issueProjectKubeconfig")] as const,
      request: { params: z.object({ tenant: TenantName, project: ProjectName }), ...body(KubeconfigRequest) },
      responses: {
        201: json(KubeconfigResponse, "The kubeconfig"),
        ...errorResponses(403, 404, 413, 415, 422, 503),
      },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const input = c.req.valid("json");
      const result = await issueKubeconfig(services, actorOf(c), c.get("principal"), {
        tenant,
        project,
        role: input.role,
        ...(input.ttlSeconds ? { ttlSeconds: input.ttlSeconds } : {}),
        ...(input.cluster ? { cluster: input.cluster } : {}),
      });
      return c.json(result, 201);
    },
  );
}
