/** Recent events reported by the clusters (Kubernetes and operator events), newest first. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { PageQuery, pageOf, ResourceName, TenantName } from "../../../shared/api/common.ts";
import { Event } from "../../../shared/api/models.ts";
import type { EventRow } from "../../store/store.ts";
import * as tenants from "../../services/tenants.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { pageRequest } from "../helpers.ts";
import { errorResponses, json } from "./shared.ts";

const security = [{ bearerAuth: [] }];

/** Cluster ids become names; a deleted cluster's events keep a null name. */
async function withClusterNames(services: AppServices, rows: EventRow[]) {
  const names = new Map<string, string | null>();
  for (const row of rows) {
    if (!names.has(row.clusterId))
      names.set(row.clusterId, (await services.store.clusters.getById(row.clusterId))?.name ?? null);
  }
  return rows.map((row) => ({
    id: row.id,
    cluster: names.get(row.clusterId) ?? null,
    tenant: row.tenant,
    at: row.at,
    type: row.type === "Warning" ? ("Warning" as const) : ("Normal" as const),
    reason: row.reason,
    message: row.message,
    object: row.object,
  }));
}

export function registerEventRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "listTenantEvents",
      method: "get",
      path: "/api/v1/tenants/{tenant}/events",
      tags: ["events"],
      security,
      summary: "A tenant's recent events, newest first (e.g. QuotaExceeded)",
      middleware: [requireAccess("listTenantEvents")] as const,
      request: { params: z.object({ tenant: TenantName }), query: PageQuery },
      responses: { 200: json(pageOf(Event, "EventPage"), "A page of events"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant } = c.req.valid("param");
      await tenants.getTenant(services, tenant);
      const page = await services.store.events.list({ tenant }, pageRequest(c.req.valid("query")));
      return c.json(
        { items: await withClusterNames(services, page.items), nextCursor: page.nextCursor },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "listEvents",
      method: "get",
      path: "/api/v1/events",
      tags: ["events"],
      security,
      summary: "Recent events across the platform, optionally of one cluster",
      middleware: [requireAccess("listEvents")] as const,
      request: { query: PageQuery.extend({ cluster: ResourceName.optional() }).strict() },
      responses: { 200: json(pageOf(Event, "EventPage"), "A page of events"), ...errorResponses(403) },
    }),
    async (c) => {
      const query = c.req.valid("query");
      let clusterId: string | undefined;
      if (query.cluster) clusterId = (await services.store.clusters.get(query.cluster))?.id ?? "-unknown-";
      const page = await services.store.events.list(clusterId ? { clusterId } : {}, pageRequest(query));
      return c.json(
        { items: await withClusterNames(services, page.items), nextCursor: page.nextCursor },
        200,
      );
    },
  );
}
