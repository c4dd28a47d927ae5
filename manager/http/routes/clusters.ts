/** `/api/v1/clusters`: register, list, read, update and delete datacenters' clusters. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { LabelSelectorQuery, PageQuery, pageOf, ResourceName } from "../../../shared/api/common.ts";
import { Cluster, ClusterCreate, ClusterStatus, ClusterUpdate } from "../../../shared/api/models.ts";
import { matchesLabels, parseLabelSelector } from "../../../shared/label-selector.ts";
import * as clusters from "../../services/clusters.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, expectedVersion, idempotent, pageRequest, setEtag } from "../helpers.ts";
import {
  body,
  errorResponses,
  IdempotencyHeader,
  IfMatchHeader,
  json,
  toCluster,
  WRITE_ERRORS,
} from "./shared.ts";

const tags = ["clusters"];
const security = [{ bearerAuth: [] }];
const Params = z.object({ cluster: ResourceName });

const ListQuery = PageQuery.extend({
  labelSelector: LabelSelectorQuery.optional(),
  datacenter: ResourceName.optional(),
  status: ClusterStatus.optional(),
}).strict();

export function registerClusterRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "listClusters",
      method: "get",
      path: "/api/v1/clusters",
      tags,
      security,
      summary: "List clusters",
      middleware: [requireAccess("listClusters")] as const,
      request: { query: ListQuery },
      responses: { 200: json(pageOf(Cluster, "ClusterPage"), "A page of clusters"), ...errorResponses(403) },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const selector = query.labelSelector
        ? parseLabelSelector(query.labelSelector, "query.labelSelector")
        : [];
      const page = await clusters.listClusters(services, {
        ...pageRequest(query),
        where: (row) =>
          (query.datacenter === undefined || row.datacenter === query.datacenter) &&
          (query.status === undefined || row.status === query.status) &&
          matchesLabels(selector, row.labels),
      });
      return c.json({ items: page.items.map(toCluster), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "createCluster",
      method: "post",
      path: "/api/v1/clusters",
      tags,
      security,
      summary: "Register a cluster",
      description: "The optional kubeconfig is envelope-encrypted at rest and never returned.",
      middleware: [requireAccess("createCluster")] as const,
      request: { headers: IdempotencyHeader, ...body(ClusterCreate) },
      responses: { 201: json(Cluster, "The registered cluster"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) =>
      idempotent(c, services, async () => {
        const row = await clusters.createCluster(services, actorOf(c), c.req.valid("json"));
        return { status: 201, body: toCluster(row), etag: row.version };
      }),
  );

  app.openapi(
    createRoute({
      operationId: "getCluster",
      method: "get",
      path: "/api/v1/clusters/{cluster}",
      tags,
      security,
      summary: "Read a cluster",
      middleware: [requireAccess("getCluster")] as const,
      request: { params: Params },
      responses: { 200: json(Cluster, "The cluster"), ...errorResponses(403, 404) },
    }),
    async (c) => {
      const row = await clusters.getCluster(services, c.req.valid("param").cluster);
      setEtag(c, row.version);
      return c.json(toCluster(row), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "updateCluster",
      method: "patch",
      path: "/api/v1/clusters/{cluster}",
      tags,
      security,
      summary: "Update a cluster",
      middleware: [requireAccess("updateCluster")] as const,
      request: { params: Params, headers: IfMatchHeader, ...body(ClusterUpdate) },
      responses: { 200: json(Cluster, "The updated cluster"), ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      const row = await clusters.updateCluster(
        services,
        actorOf(c),
        c.req.valid("param").cluster,
        c.req.valid("json"),
        expectedVersion(c),
      );
      setEtag(c, row.version);
      return c.json(toCluster(row), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "deleteCluster",
      method: "delete",
      path: "/api/v1/clusters/{cluster}",
      tags,
      security,
      summary: "Delete a cluster",
      description: "Refused (409) while tenants are placed on it.",
      middleware: [requireAccess("deleteCluster")] as const,
      request: { params: Params, headers: IfMatchHeader },
      responses: { 204: { description: "Deleted" }, ...errorResponses(...WRITE_ERRORS) },
    }),
    async (c) => {
      await clusters.deleteCluster(services, actorOf(c), c.req.valid("param").cluster, expectedVersion(c));
      return c.body(null, 204);
    },
  );
}
