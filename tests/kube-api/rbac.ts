/**
 * Authentication (admin token, ServiceAccount tokens issued through TokenRequest) and RBAC authorization
 * from the Role/RoleBinding/ClusterRole/ClusterRoleBinding objects stored in the server.
 *
 * Not emulated: privilege-escalation checks on creating Roles/bindings (`escalate`/`bind`), aggregated
 * ClusterRoles, impersonation, client certificates, and legacy Secret-based ServiceAccount tokens.
 */

import { createHmac, randomBytes } from "node:crypto";
import type { KubeObject, Store } from "./store.ts";

export interface UserInfo {
  name: string;
  groups: string[];
}

export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

interface IssuedToken {
  user: UserInfo;
  expiresAtMs: number;
  serviceAccount: { namespace: string; name: string; uid: string };
}

const SA_TABLE = "/serviceaccounts";

export class Authenticator {
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly signingKey = randomBytes(32);

  constructor(
    private readonly adminToken: string,
    private readonly store: Store,
  ) {}

  /** A signed JWT-shaped token bound to the ServiceAccount's uid, like the real TokenRequest API issues. */
  issue(sa: KubeObject, expirationSeconds: number, audiences: string[]): { token: string; expiresAt: Date } {
    const namespace = sa.metadata.namespace ?? "";
    const name = sa.metadata.name;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const exp = nowSeconds + expirationSeconds;
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const header = b64({ alg: "HS256", typ: "JWT" });
    const payload = b64({
      aud: audiences,
      exp,
      iat: nowSeconds,
      iss: "https://kubernetes.default.svc.cluster.local",
      sub: `system:serviceaccount:${namespace}:${name}`,
      jti: randomBytes(8).toString("hex"),
      "kubernetes.io": { namespace, serviceaccount: { name, uid: sa.metadata.uid } },
    });
    const signature = createHmac("sha256", this.signingKey)
      .update(`${header}.${payload}`)
      .digest("base64url");
    const token = `${header}.${payload}.${signature}`;
    this.tokens.set(token, {
      user: {
        name: `system:serviceaccount:${namespace}:${name}`,
        groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
      },
      expiresAtMs: exp * 1000,
      serviceAccount: { namespace, name, uid: sa.metadata.uid ?? "" },
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /** The user for a bearer token; undefined when unknown, expired, or its ServiceAccount is gone. */
  authenticate(token: string | undefined): UserInfo | undefined {
    if (token === undefined) return undefined;
    if (token === this.adminToken)
      return { name: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] };
    const issued = this.tokens.get(token);
    if (!issued) return undefined;
    if (Date.now() >= issued.expiresAtMs) {
      this.tokens.delete(token);
      return undefined;
    }
    const sa = this.store.get(SA_TABLE, issued.serviceAccount.namespace, issued.serviceAccount.name);
    if (!sa || sa.metadata.uid !== issued.serviceAccount.uid) return undefined;
    return issued.user;
  }
}

function ruleMatches(rule: PolicyRule, a: Attributes): boolean {
  const verbs = rule.verbs ?? [];
  if (!verbs.includes("*") && !verbs.includes(a.verb)) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes("*") && !groups.includes(a.group)) return false;
  const resources = rule.resources ?? [];
  const wanted = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceOk =
    resources.includes("*") ||
    resources.includes(wanted) ||
    (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  if (!resourceOk) return false;
  const names = rule.resourceNames ?? [];
  if (names.length > 0 && (a.name === undefined || !names.includes(a.name))) return false;
  return true;
}

function subjectMatches(
  subjects: Subject[] | undefined,
  user: UserInfo,
  bindingNamespace: string | undefined,
): boolean {
  for (const s of subjects ?? []) {
    if (s.kind === "User" && s.name === user.name) return true;
    if (s.kind === "Group" && user.groups.includes(s.name)) return true;
    if (s.kind === "ServiceAccount") {
      const ns = s.namespace ?? bindingNamespace ?? "";
      if (user.name === `system:serviceaccount:${ns}:${s.name}`) return true;
    }
  }
  return false;
}

const RBAC = "rbac.authorization.k8s.io";

/** RBAC decision from the stored objects; `system:masters` is a superuser, as in a real cluster. */
export function authorize(store: Store, user: UserInfo, a: Attributes): boolean {
  if (user.groups.includes("system:masters")) return true;
  const rulesOf = (kind: string, namespace: string | undefined, name: string): PolicyRule[] => {
    const role =
      kind === "ClusterRole"
        ? store.get(`${RBAC}/clusterroles`, undefined, name)
        : store.get(`${RBAC}/roles`, namespace, name);
    return (role?.rules as PolicyRule[] | undefined) ?? [];
  };
  for (const crb of store.list(`${RBAC}/clusterrolebindings`)) {
    if (!subjectMatches(crb.subjects as Subject[], user, undefined)) continue;
    const ref = crb.roleRef as { kind: string; name: string };
    if (rulesOf("ClusterRole", undefined, ref.name).some((r) => ruleMatches(r, a))) return true;
  }
  if (a.namespace === undefined) return false;
  for (const rb of store.list(`${RBAC}/rolebindings`, a.namespace)) {
    if (!subjectMatches(rb.subjects as Subject[], user, a.namespace)) continue;
    const ref = rb.roleRef as { kind: string; name: string };
    if (rulesOf(ref.kind, a.namespace, ref.name).some((r) => ruleMatches(r, a))) return true;
  }
  return false;
}

/** The message of a real Forbidden error. */
export function forbiddenMessage(user: UserInfo, a: Attributes): string {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const subject = a.name ? `${a.resource} "${a.name}"` : a.group ? `${a.resource}.${a.group}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  return `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
}

const READ = ["get", "list", "watch"];
const WRITE = ["create", "delete", "deletecollection", "patch", "update"];

const COMMON: PolicyRule[] = [
  {
    apiGroups: [""],
    resources: [
      "configmaps",
      "endpoints",
      "persistentvolumeclaims",
      "persistentvolumeclaims/status",
      "pods",
      "pods/log",
      "pods/status",
      "replicationcontrollers",
      "services",
      "services/status",
      "serviceaccounts",
      "events",
      "limitranges",
      "resourcequotas",
      "resourcequotas/status",
    ],
  },
  {
    apiGroups: ["apps"],
    resources: ["deployments", "deployments/status", "replicasets", "statefulsets", "daemonsets"],
  },
  { apiGroups: ["batch"], resources: ["jobs", "cronjobs"] },
  { apiGroups: ["networking.k8s.io"], resources: ["ingresses", "networkpolicies"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"] },
  { apiGroups: ["core.oam.dev"], resources: ["applications", "applications/status", "applicationrevisions"] },
];

function withVerbs(rules: PolicyRule[], verbs: string[]): PolicyRule[] {
  return rules.map((r) => ({ ...r, verbs }));
}

/** The default ClusterRoles a cluster ships (simplified rule sets) and the system:masters binding. */
export function defaultRbacObjects(): KubeObject[] {
  const role = (name: string, rules: PolicyRule[]): KubeObject => ({
    apiVersion: `${RBAC}/v1`,
    kind: "ClusterRole",
    metadata: { name, labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } },
    rules,
  });
  const secretsRule: PolicyRule = { apiGroups: [""], resources: ["secrets"] };
  const rbacRule: PolicyRule = { apiGroups: [RBAC], resources: ["roles", "rolebindings"] };
  return [
    role("cluster-admin", [
      { apiGroups: ["*"], resources: ["*"], verbs: ["*"] },
      { nonResourceURLs: ["*"], verbs: ["*"] },
    ]),
    role("view", [...withVerbs(COMMON, READ), { apiGroups: [""], resources: ["namespaces"], verbs: READ }]),
    role("edit", [
      ...withVerbs(COMMON, [...READ, ...WRITE]),
      ...withVerbs([secretsRule], [...READ, ...WRITE]),
      { apiGroups: [""], resources: ["namespaces"], verbs: READ },
      { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"] },
    ]),
    role("admin", [
      ...withVerbs(COMMON, [...READ, ...WRITE]),
      ...withVerbs([secretsRule, rbacRule], [...READ, ...WRITE]),
      { apiGroups: [""], resources: ["namespaces"], verbs: READ },
      { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"] },
    ]),
    {
      apiVersion: `${RBAC}/v1`,
      kind: "ClusterRoleBinding",
      metadata: { name: "cluster-admin", labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } },
      roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: RBAC, kind: "Group", name: "system:masters" }],
    },
  ];
}
