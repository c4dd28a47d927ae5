/** Usage as recorded from the clusters' hourly reports, per tenant and per project. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { pageOf, ProjectName, TenantName } from "../../../shared/api/common.ts";
import { UsageQuery, UsageRecord } from "../../../shared/api/models.ts";
import type { UsageFilter } from "../../store/store.ts";
import * as tenants from "../../services/tenants.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { pageRequest } from "../helpers.ts";
import { errorResponses, json } from "./shared.ts";

const security = [{ bearerAuth: [] }];

async function usageFilter(
  services: AppServices,
  tenant: string,
  query: z.output<typeof UsageQuery>,
): Promise<UsageFilter | null> {
  const filter: UsageFilter = { tenant };
  if (query.from) filter.from = new Date(query.from).toISOString();
  if (query.to) filter.to = new Date(query.to).toISOString();
  if (query.cluster) {
    const cluster = await services.store.clusters.get(query.cluster);
    if (!cluster) return null;
    filter.clusterId = cluster.id;
  }
  return filter;
}

export function registerUsageRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "getTenantUsage",
      method: "get",
      path: "/api/v1/tenants/{tenant}/usage",
      tags: ["usage"],
      security,
      summary: "A tenant's hourly usage records (UTC windows)",
      middleware: [requireAccess("getTenantUsage")] as const,
      request: { params: z.object({ tenant: TenantName }), query: UsageQuery },
      responses: {
        200: json(pageOf(UsageRecord, "UsagePage"), "A page of usage records"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const { tenant } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getTenant(services, tenant);
      const filter = await usageFilter(services, tenant, query);
      if (!filter) return c.json({ items: [], nextCursor: null }, 200);
      return c.json(await services.store.usage.list(filter, pageRequest(query)), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "getProjectUsage",
      method: "get",
      path: "/api/v1/tenants/{tenant}/projects/{project}/usage",
      tags: ["usage"],
      security,
      summary: "A project's share of its tenant's hourly usage records",
      middleware: [requireAccess("getProjectUsage")] as const,
      request: { params: z.object({ tenant: TenantName, project: ProjectName }), query: UsageQuery },
      responses: {
        200: json(pageOf(UsageRecord, "UsagePage"), "A page of usage records"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getProject(services, tenant, project);
      const filter = await usageFilter(services, tenant, query);
      if (!filter) return c.json({ items: [], nextCursor: null }, 200);
      const page = await services.store.usage.list(filter, pageRequest(query));
      const items = page.items.flatMap((record) => {
        const metrics = record.byProject[project];
        return metrics ? [{ ...record, metrics, byProject: { [project]: metrics } }] : [];
      });
      return c.json({ items, nextCursor: page.nextCursor }, 200);
    },
  );
}
