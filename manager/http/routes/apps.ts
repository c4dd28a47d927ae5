/** `/api/v1/tenants/{tenant}/projects/{project}/apps`: KubeVela apps, their revisions, operations and status. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import {
  LabelSelectorQuery,
  PageQuery,
  ProjectName,
  pageOf,
  ResourceName,
  TenantName,
} from "../../../shared/api/common.ts";
import {
  App,
  AppCreate,
  AppDeployRequest,
  AppDiff,
  AppRevision,
  AppRollbackRequest,
  AppStatus,
  AppUpdate,
} from "../../../shared/api/models.ts";
import { matchesLabels, parseLabelSelector } from "../../../shared/label-selector.ts";
import * as apps from "../../services/apps.ts";
import * as tenants from "../../services/tenants.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, expectedVersion, idempotent, pageRequest, setEtag } from "../helpers.ts";
import {
  body,
  errorResponses,
  IdempotencyHeader,
  IfMatchHeader,
  json,
  optionalBody,
  WRITE_ERRORS,
} from "./shared.ts";

const tags = ["apps"];
const security = [{ bearerAuth: [] }];
const base = "/api/v1/tenants/{tenant}/projects/{project}/apps";
const ProjectParams = z.object({ tenant: TenantName, project: ProjectName });
const AppParams = ProjectParams.extend({ app: ResourceName });
const Revision = z.coerce.number().int("must be an integer").min(1, "must be at least 1");
const DiffQuery = z.object({ from: Revision, to: Revision }).strict();
const ListQuery = PageQuery.extend({ labelSelector: LabelSelectorQuery.optional() }).strict();
const EmptyBody = z.object({}).strict().meta({ id: "EmptyRequest" });

export function registerAppRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "listApps",
      method: "get",
      path: base,
      tags,
      security,
      summary: "List a project's apps",
      middleware: [requireAccess("listApps")] as const,
      request: { params: ProjectParams, query: ListQuery },
      responses: { 200: json(pageOf(App, "AppPage"), "A page of apps"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant, project } = c.req.valid("param");
      const query = c.req.valid("query");
      await tenants.getProject(services, tenant, project);
      const selector = query.labelSelector
        ? parseLabelSelector(query.labelSelector, "query.labelSelector")
        : [];
      const page = await services.store.apps.list(
        { tenant, project },
        selector.length > 0
          ? { ...pageRequest(query), where: (a) => matchesLabels(selector, a.labels) }
          : pageRequest(query),
      );
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "createApp",
      method: "post",
      path: base,
      tags,
      security,
      summary: "Create an app (revision 1; deployed unless `deploy: false`)",
      middleware: [requireAccess("createApp")] as const,
      request: { params: ProjectParams, headers: IdempotencyHeader, ...body(AppCreate) },
      responses: { 201: json(App, "The new app"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) =>
      idempotent(c, services, async () => {
        const { tenant, project } = c.req.valid("param");
        const row = await apps.createApp(services, actorOf(c), tenant, project, c.req.valid("json"));
        return { status: 201, body: row, etag: row.version };
      }),
  );

  app.openapi(
    createRoute({
      operationId: "getApp",
      method: "get",
      path: `${base}/{app}`,
      tags,
      security,
      summary: "Read an app",
      middleware: [requireAccess("getApp")] as const,
      request: { params: AppParams },
      responses: { 200: json(App, "The app"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const row = await apps.getApp(services, tenant, project, name);
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "updateApp",
      method: "patch",
      path: `${base}/{app}`,
      tags,
      security,
      summary: "Update an app; a changed spec becomes a new revision",
      middleware: [requireAccess("updateApp")] as const,
      request: { params: AppParams, headers: IfMatchHeader, ...body(AppUpdate) },
      responses: { 200: json(App, "The updated app"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const row = await apps.updateApp(
        services,
        actorOf(c),
        { tenant, project, name },
        c.req.valid("json"),
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "deleteApp",
      method: "delete",
      path: `${base}/{app}`,
      tags,
      security,
      summary: "Delete an app and its revisions",
      middleware: [requireAccess("deleteApp")] as const,
      request: { params: AppParams, headers: IfMatchHeader },
      responses: { 204: { description: "Deleted" }, ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      await apps.deleteApp(services, actorOf(c), { tenant, project, name }, expectedVersion(c));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      operationId: "deployApp",
      method: "post",
      path: `${base}/{app}/deploy`,
      tags,
      security,
      summary: "Deploy a revision (default: the latest)",
      middleware: [requireAccess("deployApp")] as const,
      request: { params: AppParams, headers: IfMatchHeader, ...optionalBody(AppDeployRequest) },
      responses: { 200: json(App, "The app"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const input = c.req.valid("json") ?? {};
      const operation =
        input.revision === undefined
          ? { op: "deploy" as const }
          : { op: "deploy" as const, revision: input.revision };
      const row = await apps.operateApp(
        services,
        actorOf(c),
        { tenant, project, name },
        operation,
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  for (const op of ["suspend", "resume"] as const) {
    const operationId = op === "suspend" ? "suspendApp" : "resumeApp";
    app.openapi(
      createRoute({
        operationId,
        method: "post",
        path: `${base}/{app}/${op}`,
        tags,
        security,
        summary: op === "suspend" ? "Suspend the app's workflow" : "Resume the app's workflow",
        middleware: [requireAccess(operationId)] as const,
        request: { params: AppParams, headers: IfMatchHeader, ...optionalBody(EmptyBody) },
        responses: { 200: json(App, "The app"), ...errorResponses(...WRITE_ERRORS) },
      }),
      async (c) => {
        const { tenant, project, app: name } = c.req.valid("param");
        const row = await apps.operateApp(
          services,
          actorOf(c),
          { tenant, project, name },
          { op },
          expectedVersion(c),
        );
        setEtag(c, row.version);
        return c.json(row, 200);
      },
    );
  }

  app.openapi(
    createRoute({
      operationId: "rollbackApp",
      method: "post",
      path: `${base}/{app}/rollback`,
      tags,
      security,
      summary: "Roll back: the chosen revision's spec becomes a new, deployed revision",
      middleware: [requireAccess("rollbackApp")] as const,
      request: { params: AppParams, headers: IfMatchHeader, ...body(AppRollbackRequest) },
      responses: { 200: json(App, "The app"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const row = await apps.operateApp(
        services,
        actorOf(c),
        { tenant, project, name },
        { op: "rollback", revision: c.req.valid("json").revision },
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "listAppRevisions",
      method: "get",
      path: `${base}/{app}/revisions`,
      tags,
      security,
      summary: "List an app's revisions, newest first",
      middleware: [requireAccess("listAppRevisions")] as const,
      request: { params: AppParams, query: PageQuery },
      responses: {
        200: json(pageOf(AppRevision, "AppRevisionPage"), "A page of revisions"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const page = await apps.listRevisions(
        services,
        { tenant, project, name },
        pageRequest(c.req.valid("query")),
      );
      return c.json(
        {
          items: page.items.map((r) => ({
            revision: r.revision,
            spec: r.spec,
            createdAt: r.createdAt,
            createdBy: r.createdBy,
            note: r.note,
          })),
          nextCursor: page.nextCursor,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "diffApp",
      method: "get",
      path: `${base}/{app}/diff`,
      tags,
      security,
      summary: "Differences between two revisions' specs (JSON Patch-style operations)",
      middleware: [requireAccess("diffApp")] as const,
      request: { params: AppParams, query: DiffQuery },
      responses: { 200: json(AppDiff, "The differences"), ...errorResponses(403, 404, 422) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      const { from, to } = c.req.valid("query");
      return c.json(await apps.diffRevisions(services, { tenant, project, name }, from, to), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "getAppStatus",
      method: "get",
      path: `${base}/{app}/status`,
      tags,
      security,
      summary: "The app's status as its cluster last reported it",
      middleware: [requireAccess("getAppStatus")] as const,
      request: { params: AppParams },
      responses: { 200: json(AppStatus, "The mirrored status"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const { tenant, project, app: name } = c.req.valid("param");
      return c.json(await apps.appStatus(services, { tenant, project, name }), 200);
    },
  );
}
