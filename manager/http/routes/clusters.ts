/** `/api/v1/clusters`: register, list, read, update and delete datacenters' clusters. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { LabelSelectorQuery, PageQuery, pageOf, ResourceName } from "../../../shared/api/common.ts";
import {
  Cluster,
  ClusterCreate,
  ClusterRegistration,
  ClusterStatus,
  ClusterUpdate,
} from "../../../shared/api/models.ts";
import { KubeNovaError } from "../../../shared/errors.ts";
import { matchesLabels, parseLabelSelector } from "../../../shared/label-selector.ts";
import { installOperatorInBackground } from "../../install/kube-installer.ts";
import * as clusters from "../../services/clusters.ts";
import {
  type BootstrapInfo,
  type EnrolmentServiceDeps,
  issueBootstrapToken,
  notifyClusterRevoked,
} from "../../services/enrolment.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, expectedVersion, pageRequest, setEtag } from "../helpers.ts";
import { body, errorResponses, IfMatchHeader, json, toCluster, WRITE_ERRORS } from "./shared.ts";

const tags = ["clusters"];
const security = [{ bearerAuth: [] }];
const Params = z.object({ cluster: ResourceName });

const ListQuery = PageQuery.extend({
  labelSelector: LabelSelectorQuery.optional(),
  datacenter: ResourceName.optional(),
  status: ClusterStatus.optional(),
}).strict();

function enrolmentDeps(services: AppServices): EnrolmentServiceDeps {
  if (!services.enrolment) {
    throw new KubeNovaError("KN-503", "cluster enrolment is not configured on this Manager (no CA loaded)");
  }
  return { ...services, enrolment: services.enrolment };
}

const CollectUsageResult = z
  .object({ cluster: z.string(), result: z.record(z.string(), z.unknown()) })
  .meta({ id: "CollectUsageResult" });

export function registerClusterRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "collectClusterUsage",
      method: "post",
      path: "/api/v1/clusters/{cluster}/collect-usage",
      tags,
      security,
      summary: "Ask the cluster's operator to report the last closed usage window now",
      description:
        "Reports still travel the usual way (outbox → ingest → acks); this only triggers them. 503 if not connected.",
      middleware: [requireAccess("collectClusterUsage")] as const,
      request: { params: Params },
      responses: {
        200: json(CollectUsageResult, "What the operator reported"),
        ...errorResponses(403, 404, 503, 504),
      },
    }),
    async (c) => {
      const cluster = await clusters.getCluster(services, c.req.valid("param").cluster);
      if (cluster.status !== "connected" || !services.commands) {
        throw new KubeNovaError("KN-503", `cluster "${cluster.name}" is not connected (${cluster.status})`);
      }
      const result = await services.commands.request(cluster, "collect-usage", {});
      return c.json({ cluster: cluster.name, result }, 200);
    },
  );

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
      description:
        "Answers the cluster and its one-time bootstrap token (shown only here; `POST …/bootstrap-token` mints a " +
        "new one) with install instructions. The optional kubeconfig is envelope-encrypted at rest, never " +
        "returned, and used once in the background to install the operator (outcome on the cluster's status). " +
        "No Idempotency-Key: a replay would have to store the token in the clear; a retry gets 409 instead.",
      middleware: [requireAccess("createCluster")] as const,
      request: body(ClusterCreate),
      responses: {
        201: json(ClusterRegistration, "The registered cluster and its bootstrap token"),
        ...errorResponses(...WRITE_ERRORS, 503),
      },
    }),
    async (c) => {
      const deps = enrolmentDeps(services);
      const actor = actorOf(c);
      let bootstrap: BootstrapInfo | undefined;
      const row = await clusters.createCluster(services, actor, c.req.valid("json"), {
        onCreated: async (tx, created) => {
          bootstrap = await issueBootstrapToken(tx, deps, created);
        },
      });
      if (row.kubeconfigCiphertext !== null) {
        // DESIGN.md §4: install from the handed-over kubeconfig once; errors land on the cluster, not here.
        void installOperatorInBackground(deps, actor, row.name, { bootstrapToken: bootstrap!.token });
      }
      setEtag(c, row.version);
      c.header("Cache-Control", "no-store");
      return c.json({ cluster: toCluster(row), bootstrap: bootstrap! }, 201);
    },
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
      const deleted = await clusters.deleteCluster(
        services,
        actorOf(c),
        c.req.valid("param").cluster,
        expectedVersion(c),
      );
      await notifyClusterRevoked(services, deleted.id);
      return c.body(null, 204);
    },
  );
}
