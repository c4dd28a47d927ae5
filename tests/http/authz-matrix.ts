/**
 * The expected authorization table (DESIGN.md §4), kept apart from the code it checks (manager/http/authz.ts).
 * Every operation in /openapi.json must have a row, or the matrix test fails.
 *
 * Principals: admin, ops, readOnly (global), owner = tenantOwner of acme, dev = projectDev of acme/web,
 * viewer = readOnly scoped to acme. Each cell is three outcomes for the targets own / foreign / missing:
 *   A = allowed (2xx), F = 403 forbidden, N = 404 not found, U = authorized but 422 (content),
 *   O = authorized but 503 (cluster not connected), - = not applicable.
 * own = acme (project web, app site); foreign = globex (same names); missing = the deepest name absent inside
 * acme (tenant "nope", project acme/nope, app acme/web/nope), or a missing name for platform objects.
 */

export const PRINCIPALS = ["admin", "ops", "readOnly", "owner", "dev", "viewer"] as const;
export type PrincipalName = (typeof PRINCIPALS)[number];
export type Target = "own" | "foreign" | "missing";

type Row = Record<PrincipalName, string>;

const row = (
  admin: string,
  ops: string,
  readOnly: string,
  owner: string,
  dev: string,
  viewer: string,
): Row => ({
  admin,
  ops,
  readOnly,
  owner,
  dev,
  viewer,
});

export const MATRIX: Record<string, Row> = {
  //                       admin   ops    readOnly owner  dev    viewer
  getMe: row("A--", "A--", "A--", "A--", "A--", "A--"),
  issueToken: row("AAA", "AFF", "AAA", "AFF", "AFF", "AFF"),

  listClusters: row("A--", "A--", "A--", "F--", "F--", "F--"),
  createCluster: row("A--", "A--", "F--", "F--", "F--", "F--"),
  getCluster: row("A-N", "A-N", "A-N", "F-F", "F-F", "F-F"),
  updateCluster: row("A-N", "A-N", "F-F", "F-F", "F-F", "F-F"),
  // O: authorized, then 503 — the spare cluster is not connected.
  collectClusterUsage: row("O-N", "O-N", "F-F", "F-F", "F-F", "F-F"),
  deleteCluster: row("A-N", "A-N", "F-F", "F-F", "F-F", "F-F"),
  mintBootstrapToken: row("A-N", "A-N", "F-F", "F-F", "F-F", "F-F"),
  revokeCluster: row("A-N", "A-N", "F-F", "F-F", "F-F", "F-F"),
  // U: past authorization, refused for content — the spare cluster has no kubeconfig to install from (422).
  installOperator: row("U-N", "U-N", "F-F", "F-F", "F-F", "F-F"),
  listAudit: row("A--", "A--", "A--", "F--", "F--", "F--"),

  listPlans: row("A--", "A--", "A--", "A--", "A--", "A--"),
  createPlan: row("A--", "F--", "F--", "F--", "F--", "F--"),
  getPlan: row("A-N", "A-N", "A-N", "A-N", "A-N", "A-N"),
  updatePlan: row("A-N", "F-F", "F-F", "F-F", "F-F", "F-F"),
  deletePlan: row("A-N", "F-F", "F-F", "F-F", "F-F", "F-F"),
  listPolicySets: row("A--", "A--", "A--", "A--", "A--", "A--"),
  createPolicySet: row("A--", "F--", "F--", "F--", "F--", "F--"),
  getPolicySet: row("A-N", "A-N", "A-N", "A-N", "A-N", "A-N"),
  updatePolicySet: row("A-N", "F-F", "F-F", "F-F", "F-F", "F-F"),
  deletePolicySet: row("A-N", "F-F", "F-F", "F-F", "F-F", "F-F"),

  listTenants: row("A--", "A--", "A--", "A--", "A--", "A--"),
  createTenant: row("A--", "F--", "F--", "F--", "F--", "F--"),
  getTenant: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  updateTenant: row("AAN", "AAN", "FFF", "ANN", "FNN", "FNN"),
  deleteTenant: row("AAN", "FFF", "FFF", "FNN", "FNN", "FNN"),
  setTenantPlan: row("AAN", "FFF", "FFF", "FNN", "FNN", "FNN"),
  getTenantUsage: row("AAN", "AAN", "AAN", "ANN", "FNN", "ANN"),

  listProjects: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  createProject: row("AAN", "FFF", "FFF", "ANN", "FNN", "FNN"),
  getProject: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  updateProject: row("AAN", "FFF", "FFF", "ANN", "FNN", "FNF"),
  deleteProject: row("AAN", "FFF", "FFF", "ANN", "FNN", "FNF"),
  // U: authorized, then 422 — the seeded clusters have no capsule-proxy URL to point a kubeconfig at.
  issueTenantKubeconfig: row("UUN", "FFF", "UUN", "UNN", "FNN", "UNN"),
  issueProjectKubeconfig: row("UUN", "FFF", "UUN", "UNN", "FNN", "UNN"), // dev: readonly is tenant-wide, beyond its project
  listTenantEvents: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  listEvents: row("A--", "A--", "A--", "F--", "F--", "F--"),
  getPlatformUsage: row("A--", "A--", "A--", "F--", "F--", "F--"),
  getProjectUsage: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),

  listApps: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  createApp: row("AAN", "FFF", "FFF", "ANN", "ANN", "FNF"),
  getApp: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  updateApp: row("AAN", "FFF", "FFF", "ANN", "ANN", "FNF"),
  deleteApp: row("AAN", "FFF", "FFF", "ANN", "ANN", "FNF"),
  deployApp: row("AAN", "AAN", "FFF", "ANN", "ANN", "FNF"),
  suspendApp: row("AAN", "AAN", "FFF", "ANN", "ANN", "FNF"),
  resumeApp: row("AAN", "AAN", "FFF", "ANN", "ANN", "FNF"),
  rollbackApp: row("AAN", "AAN", "FFF", "ANN", "ANN", "FNF"),
  listAppRevisions: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  diffApp: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
  getAppStatus: row("AAN", "AAN", "AAN", "ANN", "ANN", "ANN"),
};

/** Operations anyone may call without a token. */
export const PUBLIC_OPERATIONS = ["healthz", "readyz", "metrics"];

/**
 * Operations the cluster's operator calls without an API token (bootstrap token or proof of possession); they are
 * not in MATRIX, and an API token on them is refused (tests/enrolment).
 */
export const BOOTSTRAP_OPERATIONS = ["getInstallManifest", "enrollCluster", "renewClusterCertificate"];
