/**
 * Cluster enrolment routes (DESIGN.md §4). Admin/ops (JWT): mint a bootstrap token, revoke, install the operator
 * from the stored kubeconfig. The operator (no JWT): the install manifests and first enrolment with the bootstrap
 * token, renewal with a proof of possession of its current certificate.
 */
import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { ResourceName } from "../../../shared/api/common.ts";
import {
  ClusterIdentity,
  ClusterRegistration,
  EnrolmentRequest,
  OperatorInstall,
  RenewalRequest,
} from "../../../shared/api/models.ts";
import { KubeNovaError } from "../../../shared/errors.ts";
import { installOperator } from "../../install/kube-installer.ts";
import * as enrolment from "../../services/enrolment.ts";
import { requireAccess } from "../authz.ts";
import type { AppEnv, AppServices, ManagerApp } from "../context.ts";
import { actorOf } from "../helpers.ts";
import { body, errorResponses, json, toCluster } from "./shared.ts";

const tags = ["enrolment"];
const security = [{ bearerAuth: [] }];
const bootstrapSecurity = [{ bootstrapToken: [] }];
const Params = z.object({ cluster: ResourceName });
const OperatorParams = z.object({
  cluster: z
    .string()
    .min(1)
    .max(63)
    .meta({ description: "The cluster's id (as the operator knows it) or name" }),
});

/** Paths the JWT middleware lets through: each of these routes authenticates the caller itself. */
const BOOTSTRAP_PATHS: ReadonlyArray<[methods: readonly string[], path: RegExp]> = [
  [["GET", "HEAD"], /^\/api\/v1\/clusters\/[^/]+\/install\.yaml$/],
  [["POST"], /^\/api\/v1\/clusters\/[^/]+\/enroll$/],
  [["POST"], /^\/api\/v1\/clusters\/[^/]+\/renew$/],
];

export function isBootstrapAuthenticated(method: string, path: string): boolean {
  return BOOTSTRAP_PATHS.some(([methods, pattern]) => methods.includes(method) && pattern.test(path));
}

function enrolmentDeps(services: AppServices): enrolment.EnrolmentServiceDeps {
  if (!services.enrolment) {
    throw new KubeNovaError("KN-503", "cluster enrolment is not configured on this Manager (no CA loaded)");
  }
  return { ...services, enrolment: services.enrolment };
}

/** Checks the bootstrap token before the body is validated, so an unauthenticated caller learns nothing. */
function requireBootstrapToken(services: AppServices): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await enrolment.authenticateBootstrapToken(
      enrolmentDeps(services),
      c.req.param("cluster") ?? "",
      c.req.header("authorization"),
    );
    await next();
  };
}

export function registerEnrolmentRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "mintBootstrapToken",
      method: "post",
      path: "/api/v1/clusters/{cluster}/bootstrap-token",
      tags,
      security,
      summary: "Issue a new bootstrap token",
      description: "The cluster's unused bootstrap tokens stop working. Use it to (re-)enrol the operator.",
      middleware: [requireAccess("mintBootstrapToken")] as const,
      request: { params: Params },
      responses: {
        201: json(ClusterRegistration, "The cluster and its new token"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const { cluster, bootstrap } = await enrolment.mintBootstrapToken(
        enrolmentDeps(services),
        actorOf(c),
        c.req.valid("param").cluster,
      );
      c.header("Cache-Control", "no-store");
      return c.json({ cluster: toCluster(cluster), bootstrap }, 201);
    },
  );

  app.openapi(
    createRoute({
      operationId: "revokeCluster",
      method: "post",
      path: "/api/v1/clusters/{cluster}/revoke",
      tags,
      security,
      summary: "Revoke a cluster's identity",
      description:
        "Its certificates are refused at once (the broker drops the session) and renewal stops working; it " +
        "reconnects only after re-enrolment with a new bootstrap token.",
      middleware: [requireAccess("revokeCluster")] as const,
      request: { params: Params },
      responses: {
        200: json(ClusterRegistration.shape.cluster, "The revoked cluster"),
        ...errorResponses(403, 404),
      },
    }),
    async (c) => {
      const row = await enrolment.revokeCluster(
        enrolmentDeps(services),
        actorOf(c),
        c.req.valid("param").cluster,
      );
      return c.json(toCluster(row), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "installOperator",
      method: "post",
      path: "/api/v1/clusters/{cluster}/install",
      tags,
      security,
      summary: "Install the operator from the stored kubeconfig",
      description:
        "Server-side applies the install manifests with a fresh bootstrap token. The outcome is recorded on the " +
        "cluster (`bootstrapping`, or `error` with `statusReason`); a failure answers 503. 422 without a kubeconfig.",
      middleware: [requireAccess("installOperator")] as const,
      request: { params: Params },
      responses: {
        200: json(OperatorInstall, "Applied; the operator will enrol itself"),
        ...errorResponses(403, 404, 422, 503),
      },
    }),
    async (c) => {
      const result = await installOperator(enrolmentDeps(services), actorOf(c), c.req.valid("param").cluster);
      return c.json({ cluster: toCluster(result.cluster), applied: result.applied }, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "getInstallManifest",
      method: "get",
      path: "/api/v1/clusters/{cluster}/install.yaml",
      tags,
      security: bootstrapSecurity,
      summary: "The operator's install manifests (YAML)",
      description:
        "Multi-document YAML: namespace, CRDs, RBAC, the bootstrap Secret and the operator Deployment. " +
        "Authenticated by the cluster's bootstrap token (not burnt here); moves the cluster to `bootstrapping`.",
      middleware: [requireBootstrapToken(services)] as const,
      request: { params: OperatorParams },
      responses: {
        200: {
          description: "Kubernetes manifests",
          content: { "application/yaml": { schema: z.string() } },
        },
        ...errorResponses(),
      },
    }),
    async (c) => {
      const yaml = await enrolment.installManifestFor(
        enrolmentDeps(services),
        c.req.valid("param").cluster,
        c.req.header("authorization"),
        c.get("requestId"),
      );
      c.header("Cache-Control", "no-store");
      c.header("Content-Type", "application/yaml; charset=utf-8");
      return c.body(yaml, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "enrollCluster",
      method: "post",
      path: "/api/v1/clusters/{cluster}/enroll",
      tags,
      security: bootstrapSecurity,
      summary: "Enrol the operator: CSR → client certificate",
      description:
        "Signs the CSR (CN must be the cluster id) and burns the bootstrap token. A used, expired or other " +
        "cluster's token is 401.",
      middleware: [requireBootstrapToken(services)] as const,
      request: { params: OperatorParams, ...body(EnrolmentRequest) },
      responses: { 200: json(ClusterIdentity, "The operator's identity"), ...errorResponses(413, 415) },
    }),
    async (c) => {
      const identity = await enrolment.enrollCluster(
        enrolmentDeps(services),
        c.req.valid("param").cluster,
        c.req.header("authorization"),
        c.req.valid("json"),
        c.get("requestId"),
      );
      c.header("Cache-Control", "no-store");
      return c.json(identity, 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "renewClusterCertificate",
      method: "post",
      path: "/api/v1/clusters/{cluster}/renew",
      tags,
      security: [],
      summary: "Renew the operator's certificate over its current identity",
      description:
        "No bearer token: `proof` (a JWS signed with the current, unexpired, unrevoked certificate's key) " +
        "authenticates the operator. Any failed check is 401.",
      request: { params: OperatorParams, ...body(RenewalRequest) },
      responses: { 200: json(ClusterIdentity, "The renewed identity"), ...errorResponses(413, 415) },
    }),
    async (c) => {
      const identity = await enrolment.renewClusterCertificate(
        enrolmentDeps(services),
        c.req.valid("param").cluster,
        c.req.valid("json"),
        c.get("requestId"),
      );
      c.header("Cache-Control", "no-store");
      return c.json(identity, 200);
    },
  );
}
