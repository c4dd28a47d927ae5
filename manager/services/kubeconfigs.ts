/**
 * Tenant kubeconfigs (DESIGN.md §4): the Manager asks the cluster's operator for a TokenRequest token for the
 * tenant's owner, project or read-only ServiceAccount, composes a kubeconfig whose server is the cluster's
 * capsule-proxy, returns it, and keeps only an audit record (who, role, cluster, expiry) — never the token.
 */
import { stringify } from "yaml";
import type { Role } from "../../shared/api/models.ts";
import { errors, KubeNovaError } from "../../shared/errors.ts";
import { canIssue } from "../auth/roles.ts";
import type { Principal } from "../http/context.ts";
import type { CommandClient } from "../sync/commands.ts";
import { type Actor, audit, type ServiceDeps } from "./context.ts";

export interface KubeconfigDeps extends ServiceDeps {
  /** The channel's command client; without it (no broker) clusters are unreachable. */
  commands?: CommandClient;
}

export interface KubeconfigInput {
  tenant: string;
  project?: string;
  role: Extract<Role, "tenantOwner" | "projectDev" | "readOnly">;
  /** Default: one hour, or the caller's remaining lifetime if shorter (never below TokenRequest's 600 s). */
  ttlSeconds?: number;
  cluster?: string;
}

const ROLE_FOR_SCOPE = {
  tenant: ["tenantOwner", "readOnly"],
  project: ["projectDev", "readOnly"],
} as const;

export async function issueKubeconfig(
  deps: KubeconfigDeps,
  actor: Actor,
  principal: Principal,
  input: KubeconfigInput,
): Promise<{
  kubeconfig: string;
  expiresAt: string;
  cluster: string;
  namespace: string;
  serviceAccount: string;
}> {
  const tenant = await deps.store.tenants.get(input.tenant);
  if (!tenant) throw errors.notFound("tenant", input.tenant);
  const project = input.project ? await deps.store.projects.get(input.tenant, input.project) : null;
  if (input.project && !project) throw errors.notFound("project", input.project);
  const scope = project ? "project" : "tenant";
  if (!(ROLE_FOR_SCOPE[scope] as readonly string[]).includes(input.role)) {
    throw errors.badRequest(`role: a ${scope} kubeconfig is for ${ROLE_FOR_SCOPE[scope].join(" or ")}`, [
      { path: "role", message: `must be ${ROLE_FOR_SCOPE[scope].join(" or ")}` },
    ]);
  }
  const remaining = principal.expiresAt
    ? Math.floor((principal.expiresAt.getTime() - deps.clock().getTime()) / 1000)
    : Number.POSITIVE_INFINITY;
  const ttlSeconds = input.ttlSeconds ?? Math.max(600, Math.min(3600, remaining));
  // A kubeconfig is a credential: the same authority rules as minting an API token for that role.
  const decision = canIssue(
    principal,
    {
      role: input.role,
      tenant: input.tenant,
      ...(input.role === "projectDev" && project ? { project: project.name } : {}),
      ttlSeconds,
    },
    deps.clock(),
  );
  if (!decision.ok) throw new KubeNovaError("KN-403", decision.reason);

  let clusterName = project?.cluster ?? input.cluster;
  if (!clusterName) {
    if (tenant.clusters.length !== 1) {
      throw errors.badRequest("cluster: the tenant is placed on several clusters; say which", [
        { path: "cluster", message: `one of ${tenant.clusters.join(", ")}` },
      ]);
    }
    clusterName = tenant.clusters[0]!;
  }
  if (
    !tenant.clusters.includes(clusterName) ||
    (project && input.cluster && input.cluster !== project.cluster)
  ) {
    throw errors.unprocessable(`cluster: "${input.cluster}" is not where this ${scope} lives`, [
      {
        path: "cluster",
        message: project ? `the project lives on ${project.cluster}` : `one of ${tenant.clusters.join(", ")}`,
      },
    ]);
  }
  const cluster = await deps.store.clusters.get(clusterName);
  if (!cluster) throw errors.notFound("cluster", clusterName);
  if (!cluster.capsuleProxyUrl) {
    throw errors.unprocessable(
      `cluster "${clusterName}" has no capsule-proxy URL; set capsuleProxyUrl on it first`,
      [{ path: "cluster", message: "no capsuleProxyUrl" }],
    );
  }
  if (cluster.status !== "connected" || !deps.commands) {
    const since = cluster.lastSeenAt ? `last seen ${cluster.lastSeenAt}` : "never seen";
    throw new KubeNovaError(
      "KN-503",
      `cluster "${clusterName}" is not connected (${cluster.status}, ${since})`,
      {
        retryable: true,
        context: { cluster: clusterName, since: cluster.lastSeenAt },
      },
    );
  }
  const result = (await deps.commands.request(cluster, "issue-token", {
    tenant: tenant.name,
    role: input.role,
    ...(project ? { project: project.name } : {}),
    ttlSeconds,
  })) as { token?: string; expiresAt?: string; namespace?: string; serviceAccount?: string; caData?: string };
  if (!result.token || !result.expiresAt || !result.namespace || !result.serviceAccount) {
    throw new KubeNovaError("KN-500", `cluster "${clusterName}" answered issue-token without a token`);
  }
  const name = `${clusterName}-${tenant.name}${project ? `-${project.name}` : ""}`;
  const kubeconfig = stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: clusterName,
          cluster: {
            server: cluster.capsuleProxyUrl,
            ...(result.caData ? { "certificate-authority-data": result.caData } : {}),
          },
        },
      ],
      users: [{ name: `${name}-${result.serviceAccount}`, user: { token: result.token } }],
      contexts: [
        {
          name,
          context: {
            cluster: clusterName,
            user: `${name}-${result.serviceAccount}`,
            namespace: result.namespace,
          },
        },
      ],
      "current-context": name,
    },
    { version: "1.1", lineWidth: 0 },
  );
  await audit(deps.store, deps, actor, {
    action: "kubeconfig.issue",
    resource: `tenants/${tenant.name}${project ? `/projects/${project.name}` : ""}/kubeconfig`,
    tenant: tenant.name,
    details: {
      role: input.role,
      cluster: clusterName,
      serviceAccount: result.serviceAccount,
      expiresAt: result.expiresAt,
    },
  });
  return {
    kubeconfig,
    expiresAt: result.expiresAt,
    cluster: clusterName,
    namespace: result.namespace,
    serviceAccount: result.serviceAccount,
  };
}
