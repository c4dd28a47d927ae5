/** `/api/v1/tenants` and `/api/v1/tenants/{tenant}/projects`. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import {
  LabelSelectorQuery,
  PageQuery,
  pageOf,
  ProjectName,
  ResourceName,
  TenantName,
} from "../../../shared/api/common.ts";
import {
  Project,
  ProjectCreate,
  ProjectUpdate,
  Tenant,
  TenantCreate,
  TenantPlanUpdate,
  TenantUpdate,
} from "../../../shared/api/models.ts";
import { errors } from "../../../shared/errors.ts";
import { matchesLabels, parseLabelSelector } from "../../../shared/label-selector.ts";
import * as tenants from "../../services/tenants.ts";
import { inScope, requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, expectedVersion, idempotent, pageRequest, setEtag } from "../helpers.ts";
import { body, errorResponses, IdempotencyHeader, IfMatchHeader, json, WRITE_ERRORS } from "./shared.ts";

const security = [{ bearerAuth: [] }];
const TenantParams = z.object({ tenant: TenantName });
const ProjectParams = z.object({ tenant: TenantName, project: ProjectName });

const TenantListQuery = PageQuery.extend({
  labelSelector: LabelSelectorQuery.optional(),
  owner: z.string().max(256).optional().meta({ description: "Only tenants this subject owns" }),
  cluster: ResourceName.optional().meta({ description: "Only tenants placed on this cluster" }),
}).strict();

const ProjectListQuery = PageQuery.extend({
  labelSelector: LabelSelectorQuery.optional(),
  cluster: ResourceName.optional(),
}).strict();

/** Fields a tenant owner may not change on its own tenant: placement and policy are the platform's. */
const PLATFORM_TENANT_FIELDS = ["clusters", "policySets"] as const;

export function registerTenantRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "listTenants",
      method: "get",
      path: "/api/v1/tenants",
      tags: ["tenants"],
      security,
      summary: "List tenants (tenant-scoped callers see only their own)",
      middleware: [requireAccess("listTenants")] as const,
      request: { query: TenantListQuery },
      responses: { 200: json(pageOf(Tenant, "TenantPage"), "A page of tenants"), ...errorResponses(403) },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const principal = c.get("principal");
      const selector = query.labelSelector
        ? parseLabelSelector(query.labelSelector, "query.labelSelector")
        : [];
      const page = await services.store.tenants.list({
        ...pageRequest(query),
        where: (t) =>
          inScope(principal, t.name) &&
          (query.owner === undefined || t.owners.includes(query.owner)) &&
          (query.cluster === undefined || t.clusters.includes(query.cluster)) &&
          matchesLabels(selector, t.labels),
      });
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "createTenant",
      method: "post",
      path: "/api/v1/tenants",
      tags: ["tenants"],
      security,
      summary: "Create a tenant placed on one or more clusters",
      middleware: [requireAccess("createTenant")] as const,
      request: { headers: IdempotencyHeader, ...body(TenantCreate) },
      responses: { 201: json(Tenant, "The new tenant"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) =>
      idempotent(c, services, async () => {
        const row = await tenants.createTenant(services, actorOf(c), c.req.valid("json"));
        return { status: 201, body: row, etag: row.version };
      }),
  );

  app.openapi(
    createRoute({
      operationId: "getTenant",
      method: "get",
      path: "/api/v1/tenants/{tenant}",
      tags: ["tenants"],
      security,
      summary: "Read a tenant",
      middleware: [requireAccess("getTenant")] as const,
      request: { params: TenantParams },
      responses: { 200: json(Tenant, "The tenant"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const row = await tenants.getTenant(services, c.req.valid("param").tenant);
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "updateTenant",
      method: "patch",
      path: "/api/v1/tenants/{tenant}",
      tags: ["tenants"],
      security,
      summary: "Update a tenant",
      description:
        "Tenant owners may change displayName, owners and labels; placement and policy sets need admin or ops.",
      middleware: [requireAccess("updateTenant")] as const,
      request: { params: TenantParams, headers: IfMatchHeader, ...body(TenantUpdate) },
      responses: { 200: json(Tenant, "The updated tenant"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const input = c.req.valid("json");
      if (c.get("principal").role === "tenantOwner") {
        const refused = PLATFORM_TENANT_FIELDS.filter((field) => input[field] !== undefined);
        if (refused.length > 0) {
          throw errors.forbidden(
            `${refused.join(", ")}: only admin or ops may change a tenant's ${refused.join(" and ")}`,
          );
        }
      }
      const row = await tenants.updateTenant(
        services,
        actorOf(c),
        c.req.valid("param").tenant,
        input,
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "setTenantPlan",
      method: "put",
      path: "/api/v1/tenants/{tenant}/plan",
      tags: ["tenants"],
      security,
      summary: "Put a tenant on a plan",
      middleware: [requireAccess("setTenantPlan")] as const,
      request: { params: TenantParams, headers: IfMatchHeader, ...body(TenantPlanUpdate) },
      responses: { 200: json(Tenant, "The tenant on its new plan"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const row = await tenants.setTenantPlan(
        services,
        actorOf(c),
        c.req.valid("param").tenant,
        c.req.valid("json").plan,
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "deleteTenant",
      method: "delete",
      path: "/api/v1/tenants/{tenant}",
      tags: ["tenants"],
      security,
      summary: "Delete a tenant with its projects and apps on every cluster",
      middleware: [requireAccess("deleteTenant")] as const,
      request: { params: TenantParams, headers: IfMatchHeader },
      responses: { 204: { description: "Deleted" }, ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      await tenants.deleteTenant(services, actorOf(c), c.req.valid("param").tenant, expectedVersion(c));
      return c.body(null, 204);
    },
  );

  // ── Projects ──

  app.openapi(
    createRoute({
      operationId: "listProjects",
      method: "get",
      path: "/api/v1/tenants/{tenant}/projects",
      tags: ["projects"],
      security,
      summary: "List a tenant's projects (project-scoped callers see only their own)",
      middleware: [requireAccess("listProjects")] as const,
      request: { params: TenantParams, query: ProjectListQuery },
      responses: {
        200: json(pageOf(Project, "ProjectPage"), "A page of projects"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const { tenant } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getTenant(services, tenant);
      const principal = c.get("principal");
      const selector = query.labelSelector
        ? parseLabelSelector(query.labelSelector, "query.labelSelector")
        : [];
      const page = await services.store.projects.list(
        { tenant, ...(query.cluster ? { cluster: query.cluster } : {}) },
        {
          ...pageRequest(query),
          where: (p) => inScope(principal, p.tenant, p.name) && matchesLabels(selector, p.labels),
        },
      );
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "createProject",
      method: "post",
      path: "/api/v1/tenants/{tenant}/projects",
      tags: ["projects"],
      security,
      summary: "Create a project on one of the tenant's clusters",
      middleware: [requireAccess("createProject")] as const,
      request: { params: TenantParams, headers: IdempotencyHeader, ...body(ProjectCreate) },
      responses: { 201: json(Project, "The new project"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) =>
      idempotent(c, services, async () => {
        const row = await tenants.createProject(
          services,
          actorOf(c),
          c.req.valid("param").tenant,
          c.req.valid("json"),
        );
        return { status: 201, body: row, etag: row.version };
      }),
  );

  app.openapi(
    createRoute({
      operationId: "getProject",
      method: "get",
      path: "/api/v1/tenants/{tenant}/projects/{project}",
      tags: ["projects"],
      security,
      summary: "Read a project",
      middleware: [requireAccess("getProject")] as const,
      request: { params: ProjectParams },
      responses: { 200: json(Project, "The project"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const row = await tenants.getProject(services, tenant, project);
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "updateProject",
      method: "patch",
      path: "/api/v1/tenants/{tenant}/projects/{project}",
      tags: ["projects"],
      security,
      summary: "Update a project",
      middleware: [requireAccess("updateProject")] as const,
      request: { params: ProjectParams, headers: IfMatchHeader, ...body(ProjectUpdate) },
      responses: { 200: json(Project, "The updated project"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const row = await tenants.updateProject(
        services,
        actorOf(c),
        tenant,
        project,
        c.req.valid("json"),
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "deleteProject",
      method: "delete",
      path: "/api/v1/tenants/{tenant}/projects/{project}",
      tags: ["projects"],
      security,
      summary: "Delete a project and its apps",
      middleware: [requireAccess("deleteProject")] as const,
      request: { params: ProjectParams, headers: IfMatchHeader },
      responses: { 204: { description: "Deleted" }, ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      await tenants.deleteProject(services, actorOf(c), tenant, project, expectedVersion(c));
      return c.body(null, 204);
    },
  );
}
