/**
 * Route authorization (DESIGN.md §4): every operation names the roles that may call it; tenant- and
 * project-scoped callers are confined to their tenant/project, and anything outside answers 404 — exactly what a
 * missing object answers — so nothing about other tenants leaks. The table below is the single source the
 * authorization-matrix test checks against `tests/http/authz-matrix.ts`.
 */
import type { MiddlewareHandler } from "hono";
import { ROLES, type Role } from "../../shared/api/models.ts";
import { errors } from "../../shared/errors.ts";
import type { AppEnv, Principal } from "./context.ts";

const ALL: readonly Role[] = ROLES;
const WRITERS_OF_TENANT: readonly Role[] = ["admin", "tenantOwner"];
const APP_WRITERS: readonly Role[] = ["admin", "tenantOwner", "projectDev"];
const APP_OPERATORS: readonly Role[] = ["admin", "ops", "tenantOwner", "projectDev"];

interface Rule {
  roles: readonly Role[];
  /** Platform-wide objects (clusters, audit): tenant-scoped callers are refused even with an allowed role. */
  platformOnly?: boolean;
}

export const ACCESS = {
  getMe: { roles: ALL },
  issueToken: { roles: ALL },
  listClusters: { roles: ["admin", "ops", "readOnly"], platformOnly: true },
  createCluster: { roles: ["admin", "ops"] },
  getCluster: { roles: ["admin", "ops", "readOnly"], platformOnly: true },
  updateCluster: { roles: ["admin", "ops"] },
  deleteCluster: { roles: ["admin", "ops"] },
  collectClusterUsage: { roles: ["admin", "ops"] },
  mintBootstrapToken: { roles: ["admin", "ops"], platformOnly: true },
  revokeCluster: { roles: ["admin", "ops"], platformOnly: true },
  installOperator: { roles: ["admin", "ops"], platformOnly: true },
  listPlans: { roles: ALL },
  createPlan: { roles: ["admin"] },
  getPlan: { roles: ALL },
  updatePlan: { roles: ["admin"] },
  deletePlan: { roles: ["admin"] },
  listPolicySets: { roles: ALL },
  createPolicySet: { roles: ["admin"] },
  getPolicySet: { roles: ALL },
  updatePolicySet: { roles: ["admin"] },
  deletePolicySet: { roles: ["admin"] },
  listTenants: { roles: ALL },
  createTenant: { roles: ["admin"] },
  getTenant: { roles: ALL },
  updateTenant: { roles: ["admin", "ops", "tenantOwner"] },
  deleteTenant: { roles: ["admin"] },
  setTenantPlan: { roles: ["admin"] },
  listProjects: { roles: ALL },
  createProject: { roles: WRITERS_OF_TENANT },
  getProject: { roles: ALL },
  updateProject: { roles: WRITERS_OF_TENANT },
  deleteProject: { roles: WRITERS_OF_TENANT },
  listApps: { roles: ALL },
  createApp: { roles: APP_WRITERS },
  getApp: { roles: ALL },
  updateApp: { roles: APP_WRITERS },
  deleteApp: { roles: APP_WRITERS },
  deployApp: { roles: APP_OPERATORS },
  suspendApp: { roles: APP_OPERATORS },
  resumeApp: { roles: APP_OPERATORS },
  rollbackApp: { roles: APP_OPERATORS },
  listAppRevisions: { roles: ALL },
  diffApp: { roles: ALL },
  getAppStatus: { roles: ALL },
  getTenantUsage: { roles: ["admin", "ops", "tenantOwner", "readOnly"] },
  getProjectUsage: { roles: ALL },
  issueTenantKubeconfig: { roles: ["admin", "tenantOwner", "readOnly"] },
  issueProjectKubeconfig: { roles: ["admin", "tenantOwner", "projectDev", "readOnly"] },
  listTenantEvents: { roles: ALL },
  listEvents: { roles: ["admin", "ops", "readOnly"], platformOnly: true },
  getPlatformUsage: { roles: ["admin", "ops", "readOnly"], platformOnly: true },
  listAudit: { roles: ["admin", "ops", "readOnly"], platformOnly: true },
} as const satisfies Record<string, Rule>;

export type OperationId = keyof typeof ACCESS;

/**
 * Operations that take no API token and are therefore not in ACCESS: the cluster's operator calls them with its
 * bootstrap token (install manifests, first enrolment) or a proof of possession of its certificate (renewal).
 * `routes/enrolment.ts` authenticates them; the JWT middleware lets exactly these paths through.
 */
export const BOOTSTRAP_OPERATIONS = [
  "getInstallManifest",
  "enrollCluster",
  "renewClusterCertificate",
] as const;

/** Whether a principal may see objects of this tenant (and project) at all. */
export function inScope(principal: Principal, tenant?: string, project?: string): boolean {
  if (principal.tenant === null) return true;
  if (tenant !== undefined && tenant !== principal.tenant) return false;
  if (project !== undefined && principal.project !== null && project !== principal.project) return false;
  return true;
}

/** Throws KN-404 outside the caller's scope, KN-403 for a role the operation does not allow. */
export function authorize(
  principal: Principal,
  operation: OperationId,
  params: { tenant?: string; project?: string },
) {
  if (!inScope(principal, params.tenant)) throw errors.notFound("tenant", params.tenant ?? "");
  if (!inScope(principal, params.tenant, params.project))
    throw errors.notFound("project", params.project ?? "");
  const rule: Rule = ACCESS[operation];
  if (!rule.roles.includes(principal.role)) {
    throw errors.forbidden(`role ${principal.role} may not ${operation}`);
  }
  if (rule.platformOnly && principal.tenant !== null) {
    throw errors.forbidden(`a ${principal.role} token scoped to a tenant may not ${operation}`);
  }
}

/** Route middleware: authorize before validating the body, so a refused caller learns nothing from 400s. */
export function requireAccess(operation: OperationId): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tenant = c.req.param("tenant");
    const project = c.req.param("project");
    authorize(c.get("principal"), operation, { tenant, project });
    await next();
  };
}
