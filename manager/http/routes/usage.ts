/** Usage and billing reports: per tenant, per project, and across tenants for the platform. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { ProjectName, TenantName } from "../../../shared/api/common.ts";
import { AdminUsageQuery, UsageQuery, UsageReport } from "../../../shared/api/models.ts";
import type { UsageRow } from "../../store/store.ts";
import * as tenants from "../../services/tenants.ts";
import { aggregate, loadUsage, usageCsv, usageRange } from "../../services/usage.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { errorResponses } from "./shared.ts";

const security = [{ bearerAuth: [] }];
const reportResponses = {
  200: {
    description: "The report (JSON), or the raw records as CSV with `format=csv`",
    content: {
      "application/json": { schema: UsageReport },
      "text/csv": { schema: z.string() },
    },
  },
};

/** A cluster filter by name; an unknown cluster simply has no usage. */
async function clusterFilter(services: AppServices, name: string | undefined) {
  if (!name) return {};
  const cluster = await services.store.clusters.get(name);
  return { clusterId: cluster?.id ?? "-unknown-" };
}

const csvHeaders = (filename: string) => ({
  "Content-Type": "text/csv; charset=utf-8",
  "Content-Disposition": `attachment; filename="${filename}"`,
});

export function registerUsageRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "getTenantUsage",
      method: "get",
      path: "/api/v1/tenants/{tenant}/usage",
      tags: ["usage"],
      security,
      summary: "A tenant's usage in UTC hour/day/month buckets, per cluster or across clusters",
      middleware: [requireAccess("getTenantUsage")] as const,
      request: { params: z.object({ tenant: TenantName }), query: UsageQuery },
      responses: { ...reportResponses, ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getTenant(services, tenant);
      const range = usageRange(query, services.clock());
      const rows = await loadUsage(
        services.store,
        { tenant, ...(await clusterFilter(services, query.cluster)) },
        range,
      );
      if (query.format === "csv") return c.text(usageCsv(rows), 200, csvHeaders(`usage-${tenant}.csv`));
      const report = aggregate(rows, query.granularity);
      return c.json(
        {
          tenant,
          project: null,
          cluster: query.cluster ?? null,
          ...range,
          granularity: query.granularity,
          ...report,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "getProjectUsage",
      method: "get",
      path: "/api/v1/tenants/{tenant}/projects/{project}/usage",
      tags: ["usage"],
      security,
      summary: "A project's share of its tenant's usage, in UTC buckets",
      middleware: [requireAccess("getProjectUsage")] as const,
      request: { params: z.object({ tenant: TenantName, project: ProjectName }), query: UsageQuery },
      responses: { ...reportResponses, ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getProject(services, tenant, project);
      const range = usageRange(query, services.clock());
      const rows = await loadUsage(
        services.store,
        { tenant, ...(await clusterFilter(services, query.cluster)) },
        range,
      );
      const pick = (row: UsageRow) => row.byProject[project] ?? null;
      if (query.format === "csv")
        return c.text(usageCsv(rows, pick), 200, csvHeaders(`usage-${tenant}-${project}.csv`));
      const report = aggregate(rows, query.granularity, pick);
      return c.json(
        {
          tenant,
          project,
          cluster: query.cluster ?? null,
          ...range,
          granularity: query.granularity,
          ...report,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "getPlatformUsage",
      method: "get",
      path: "/api/v1/usage",
      tags: ["usage"],
      security,
      summary: "Usage across all tenants (or one), with totals per tenant",
      middleware: [requireAccess("getPlatformUsage")] as const,
      request: { query: AdminUsageQuery },
      responses: { ...reportResponses, ...errorResponses(403) },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const range = usageRange(query, services.clock());
      const rows = await loadUsage(
        services.store,
        {
          ...(query.tenant ? { tenant: query.tenant } : {}),
          ...(await clusterFilter(services, query.cluster)),
        },
        range,
      );
      if (query.format === "csv") return c.text(usageCsv(rows), 200, csvHeaders("usage.csv"));
      const report = aggregate(rows, query.granularity);
      const byTenant: Record<string, UsageReport["totals"]> = {};
      const grouped = new Map<string, UsageRow[]>();
      for (const row of rows) grouped.set(row.tenant, [...(grouped.get(row.tenant) ?? []), row]);
      for (const [name, list] of grouped) byTenant[name] = aggregate(list, query.granularity).totals;
      return c.json(
        {
          tenant: query.tenant ?? null,
          project: null,
          cluster: query.cluster ?? null,
          ...range,
          granularity: query.granularity,
          ...report,
          byTenant,
        },
        200,
      );
    },
  );
}
