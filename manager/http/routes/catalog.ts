/** `/api/v1/plans` and `/api/v1/policysets`: the platform catalog, readable by all, written by admins. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { PageQuery, pageOf, ResourceName } from "../../../shared/api/common.ts";
import {
  Plan,
  PlanCreate,
  PlanUpdate,
  PolicySet,
  PolicySetCreate,
  PolicySetUpdate,
} from "../../../shared/api/models.ts";
import * as catalog from "../../services/catalog.ts";
import type { Actor, ServiceDeps } from "../../services/context.ts";
import type { Page, PageRequest } from "../../store/store.ts";
import { type OperationId, requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, expectedVersion, idempotent, pageRequest, setEtag } from "../helpers.ts";
import { body, errorResponses, IdempotencyHeader, IfMatchHeader, json, WRITE_ERRORS } from "./shared.ts";

const security = [{ bearerAuth: [] }];
const Params = z.object({ name: ResourceName });

/** One catalog kind: its schemas, operation ids and service functions. */
interface CatalogKind<Row extends { version: number }, Create extends z.ZodType, Update extends z.ZodType> {
  path: string;
  tag: string;
  noun: string;
  model: z.ZodType;
  pageModelId: string;
  create: Create;
  update: Update;
  ops: { list: OperationId; create: OperationId; get: OperationId; update: OperationId; delete: OperationId };
  service: {
    list(deps: ServiceDeps, page: PageRequest): Promise<Page<Row>>;
    create(deps: ServiceDeps, actor: Actor, input: z.output<Create>): Promise<Row>;
    get(deps: ServiceDeps, name: string): Promise<Row>;
    update(
      deps: ServiceDeps,
      actor: Actor,
      name: string,
      input: z.output<Update>,
      version?: number,
    ): Promise<Row>;
    delete(deps: ServiceDeps, actor: Actor, name: string, version?: number): Promise<void>;
  };
}

/** Typed access to validated input where the generic route type is too wide for Hono's inference. */
function valid<T>(c: { req: { valid: unknown } }, target: "json" | "param"): T {
  return (c.req.valid as (t: string) => T)(target);
}

function registerCatalogKind<
  Row extends { version: number },
  Create extends z.ZodType,
  Update extends z.ZodType,
>(app: ManagerApp, services: AppServices, kind: CatalogKind<Row, Create, Update>): void {
  const tags = [kind.tag];
  const base = `/api/v1/${kind.path}`;
  app.openapi(
    createRoute({
      operationId: kind.ops.list,
      method: "get",
      path: base,
      tags,
      security,
      summary: `List ${kind.noun}s`,
      middleware: [requireAccess(kind.ops.list)] as const,
      request: { query: PageQuery },
      responses: {
        200: json(pageOf(kind.model, kind.pageModelId), `A page of ${kind.noun}s`),
        ...errorResponses(403),
      },
    }),
    async (c) => c.json(await kind.service.list(services, pageRequest(c.req.valid("query"))), 200),
  );
  app.openapi(
    createRoute({
      operationId: kind.ops.create,
      method: "post",
      path: base,
      tags,
      security,
      summary: `Create a ${kind.noun}`,
      middleware: [requireAccess(kind.ops.create)] as const,
      request: { headers: IdempotencyHeader, ...body(kind.create) },
      responses: { 201: json(kind.model, `The new ${kind.noun}`), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) =>
      idempotent(c, services, async () => {
        const row = await kind.service.create(services, actorOf(c), valid<z.output<Create>>(c, "json"));
        return { status: 201, body: row, etag: row.version };
      }),
  );
  app.openapi(
    createRoute({
      operationId: kind.ops.get,
      method: "get",
      path: `${base}/{name}`,
      tags,
      security,
      summary: `Read a ${kind.noun}`,
      middleware: [requireAccess(kind.ops.get)] as const,
      request: { params: Params },
      responses: { 200: json(kind.model, `The ${kind.noun}`), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const row = await kind.service.get(services, c.req.valid("param").name);
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );
  app.openapi(
    createRoute({
      operationId: kind.ops.update,
      method: "patch",
      path: `${base}/{name}`,
      tags,
      security,
      summary: `Update a ${kind.noun}`,
      description: "Tenants using it get the change on every cluster they are placed on.",
      middleware: [requireAccess(kind.ops.update)] as const,
      request: { params: Params, headers: IfMatchHeader, ...body(kind.update) },
      responses: { 200: json(kind.model, `The updated ${kind.noun}`), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const input = valid<z.output<Update>>(c, "json");
      const { name } = valid<{ name: string }>(c, "param");
      const row = await kind.service.update(services, actorOf(c), name, input, expectedVersion(c));
      setEtag(c, row.version);
      return c.json(row, 200);
    },
  );
  app.openapi(
    createRoute({
      operationId: kind.ops.delete,
      method: "delete",
      path: `${base}/{name}`,
      tags,
      security,
      summary: `Delete a ${kind.noun}`,
      description: "Refused (409) while in use.",
      middleware: [requireAccess(kind.ops.delete)] as const,
      request: { params: Params, headers: IfMatchHeader },
      responses: { 204: { description: "Deleted" }, ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      await kind.service.delete(services, actorOf(c), c.req.valid("param").name, expectedVersion(c));
      return c.body(null, 204);
    },
  );
}

export function registerCatalogRoutes(app: ManagerApp, services: AppServices): void {
  registerCatalogKind(app, services, {
    path: "plans",
    tag: "plans",
    noun: "plan",
    model: Plan,
    pageModelId: "PlanPage",
    create: PlanCreate,
    update: PlanUpdate,
    ops: {
      list: "listPlans",
      create: "createPlan",
      get: "getPlan",
      update: "updatePlan",
      delete: "deletePlan",
    },
    service: {
      list: (deps, page) => deps.store.plans.list(page),
      create: catalog.createPlan,
      get: catalog.getPlan,
      update: catalog.updatePlan,
      delete: catalog.deletePlan,
    },
  });
  registerCatalogKind(app, services, {
    path: "policysets",
    tag: "policysets",
    noun: "policy set",
    model: PolicySet,
    pageModelId: "PolicySetPage",
    create: PolicySetCreate,
    update: PolicySetUpdate,
    ops: {
      list: "listPolicySets",
      create: "createPolicySet",
      get: "getPolicySet",
      update: "updatePolicySet",
      delete: "deletePolicySet",
    },
    service: {
      list: (deps, page) => deps.store.policySets.list(page),
      create: catalog.createPolicySet,
      get: catalog.getPolicySet,
      update: catalog.updatePolicySet,
      delete: catalog.deletePolicySet,
    },
  });
}
