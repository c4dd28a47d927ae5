/**
 * Pure builders for what one NovaTenant becomes in the cluster (DESIGN.md §6): the Capsule Tenant, the tenant's
 * namespaces, ServiceAccounts, RoleBindings, ResourceQuotas, LimitRanges and a default NetworkPolicy. No I/O, no
 * clocks, sorted keys and lists: the same spec always yields byte-identical objects, so re-applying them is a no-op
 * and a reconciler can compare them with the live state to decide whether to write at all.
 */
import type { KubeObject } from "../kube/kube.ts";

export const MANAGED_BY = "app.kubernetes.io/managed-by";
export const TENANT_LABEL = "kubenova.io/tenant";
export const PROJECT_LABEL = "kubenova.io/project";
/** DESIGN.md §9.4: a namespace joins a tenant through this label plus an ownerReference to the Tenant. */
export const CAPSULE_TENANT_LABEL = "capsule.clastix.io/tenant";
export const CAPSULE_API_VERSION = "capsule.clastix.io/v1beta2";

/** Names of the objects created in every tenant namespace (fixed, so they can be found and repaired). */
export const OBJECT_NAMES = {
  ownerBinding: "kubenova-owner",
  readonlyBinding: "kubenova-readonly",
  devBinding: "kubenova-dev",
  quota: "kubenova-quota",
  limits: "kubenova-limits",
  networkPolicy: "kubenova-tenant-isolation",
} as const;

/**
 * KubeNova roles → Kubernetes identities (DESIGN.md §6):
 * - tenantOwner → ServiceAccount `owner` in `<tenant>-owner`, ClusterRole `admin` in every tenant namespace, and
 *   the Capsule Tenant owner (so capsule-proxy and Capsule admission treat it as the tenant's owner);
 * - readOnly → ServiceAccount `readonly` in `<tenant>-owner`, ClusterRole `view` in every tenant namespace;
 * - projectDev → ServiceAccount `dev` in the project's namespace, ClusterRole `edit` in that namespace only.
 */
export const ROLE_MAPPING = {
  tenantOwner: { serviceAccount: "owner", clusterRole: "admin", scope: "tenant" },
  readOnly: { serviceAccount: "readonly", clusterRole: "view", scope: "tenant" },
  projectDev: { serviceAccount: "dev", clusterRole: "edit", scope: "project" },
} as const;

/** The NovaTenant spec as the reconciler reads it (shared/desired.ts DesiredTenant without `name`). */
export interface TenantSpec {
  displayName: string | null;
  owners: string[];
  labels: Record<string, string>;
  plan: {
    name: string | null;
    quotas: {
      cpu?: string;
      memory?: string;
      storage?: string;
      pods?: number;
      services?: number;
      loadBalancers?: number;
      namespaces?: number;
    };
    limitRange: {
      defaultCpu?: string;
      defaultMemory?: string;
      defaultRequestCpu?: string;
      defaultRequestMemory?: string;
      maxCpu?: string;
      maxMemory?: string;
    } | null;
    allowLoadBalancers: boolean;
  };
  projects: Array<{ name: string; namespace: string; labels: Record<string, string> }>;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const int = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) ? v : undefined;
const stringMap = (v: unknown): Record<string, string> =>
  isRecord(v)
    ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};

/**
 * Reads a NovaTenant spec leniently. Deliberately no value validation here: the API server (the NovaTenant CRD,
 * then the Capsule Tenant schema) is the judge, so what a real cluster would refuse is refused the same way
 * (DESIGN.md §10).
 */
export function readTenantSpec(spec: unknown): TenantSpec {
  const s = isRecord(spec) ? spec : {};
  const plan = isRecord(s.plan) ? s.plan : {};
  const q = isRecord(plan.quotas) ? plan.quotas : {};
  const lr = isRecord(plan.limitRange) ? plan.limitRange : null;
  const quotas: TenantSpec["plan"]["quotas"] = {};
  for (const key of ["cpu", "memory", "storage"] as const) {
    const value = str(q[key]);
    if (value !== undefined) quotas[key] = value;
  }
  for (const key of ["pods", "services", "loadBalancers", "namespaces"] as const) {
    const value = int(q[key]);
    if (value !== undefined) quotas[key] = value;
  }
  let limitRange: TenantSpec["plan"]["limitRange"] = null;
  if (lr) {
    limitRange = {};
    for (const key of [
      "defaultCpu",
      "defaultMemory",
      "defaultRequestCpu",
      "defaultRequestMemory",
      "maxCpu",
      "maxMemory",
    ] as const) {
      const value = str(lr[key]);
      if (value !== undefined) limitRange[key] = value;
    }
  }
  const projects = (Array.isArray(s.projects) ? s.projects : []).filter(isRecord).flatMap((p) => {
    const name = str(p.name);
    const namespace = str(p.namespace);
    return name && namespace ? [{ name, namespace, labels: stringMap(p.labels) }] : [];
  });
  return {
    displayName: str(s.displayName) ?? null,
    owners: (Array.isArray(s.owners) ? s.owners : []).filter((o): o is string => typeof o === "string"),
    labels: stringMap(s.labels),
    plan: {
      name: str(plan.name) ?? null,
      quotas,
      limitRange,
      allowLoadBalancers: plan.allowLoadBalancers === true,
    },
    projects,
  };
}

export const ownerNamespace = (tenant: string) => `${tenant}-owner`;
export const appsNamespace = (tenant: string) => `${tenant}-apps`;
/** DESIGN.md §9.5: Capsule names ServiceAccount owners `system:serviceaccount:<ns>:<name>`. */
export const ownerServiceAccountName = (tenant: string) =>
  `system:serviceaccount:${ownerNamespace(tenant)}:${ROLE_MAPPING.tenantOwner.serviceAccount}`;

const sortedRecord = (record: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function labelsFor(tenant: string, extra: Record<string, string> = {}): Record<string, string> {
  return sortedRecord({ ...extra, [MANAGED_BY]: "kubenova", [TENANT_LABEL]: tenant });
}

/**
 * ResourceQuota `hard` from the plan. When the plan forbids LoadBalancers the quota pins
 * `services.loadbalancers` to 0 as well: Capsule's admission (DESIGN.md §9.1) is the primary control, the quota
 * keeps it true where that webhook is absent or lagging.
 */
export function quotaHard(spec: TenantSpec): Record<string, string> {
  const q = spec.plan.quotas;
  const hard: Record<string, string> = {};
  if (q.cpu !== undefined) hard["requests.cpu"] = q.cpu;
  if (q.memory !== undefined) hard["requests.memory"] = q.memory;
  if (q.storage !== undefined) hard["requests.storage"] = q.storage;
  if (q.pods !== undefined) hard.pods = String(q.pods);
  if (q.services !== undefined) hard.services = String(q.services);
  if (!spec.plan.allowLoadBalancers) hard["services.loadbalancers"] = "0";
  else if (q.loadBalancers !== undefined) hard["services.loadbalancers"] = String(q.loadBalancers);
  return sortedRecord(hard);
}

/** One `Container` limit from plan.limitRange, or null when the plan sets none. */
export function containerLimit(spec: TenantSpec): Record<string, unknown> | null {
  const lr = spec.plan.limitRange;
  if (!lr) return null;
  const pick = (cpu?: string, memory?: string) => {
    const out: Record<string, string> = {};
    if (cpu !== undefined) out.cpu = cpu;
    if (memory !== undefined) out.memory = memory;
    return Object.keys(out).length > 0 ? out : undefined;
  };
  const limit: Record<string, unknown> = { type: "Container" };
  const def = pick(lr.defaultCpu, lr.defaultMemory);
  const defReq = pick(lr.defaultRequestCpu, lr.defaultRequestMemory);
  const max = pick(lr.maxCpu, lr.maxMemory);
  if (def) limit.default = def;
  if (defReq) limit.defaultRequest = defReq;
  if (max) limit.max = max;
  return Object.keys(limit).length > 1 ? limit : null;
}

/**
 * The Capsule Tenant (v1beta2 only, DESIGN.md §6). Quotas and LoadBalancer permission use the deprecated but
 * accepted `resourceQuotas` and `serviceOptions.allowedServices.loadBalancer` (§9.1, §9.5): in the v0.14 schema
 * `spec.rules[].enforce.services.loadBalancers` only narrows CIDRs and has no on/off switch, and
 * `spec.rules[].quota` has no Tenant-wide scope. `resourceQuotas.scope: Tenant` makes the plan's quotas totals
 * over all the tenant's namespaces, as the plan means them.
 */
export function capsuleTenant(tenant: string, spec: TenantSpec): KubeObject {
  const body: Record<string, unknown> = {
    owners: [
      {
        kind: "ServiceAccount",
        name: ownerServiceAccountName(tenant),
        // The schema's default, written out so the applied object is what the server stores.
        clusterRoles: ["admin", "capsule-namespace-deleter"],
      },
    ],
    serviceOptions: { allowedServices: { loadBalancer: spec.plan.allowLoadBalancers } },
  };
  if (spec.plan.quotas.namespaces !== undefined) {
    body.namespaceOptions = { quota: spec.plan.quotas.namespaces };
  }
  const hard = quotaHard(spec);
  if (Object.keys(hard).length > 0) body.resourceQuotas = { scope: "Tenant", items: [{ hard }] };
  const limit = containerLimit(spec);
  if (limit) body.limitRanges = { items: [{ limits: [limit] }] };
  return {
    apiVersion: CAPSULE_API_VERSION,
    kind: "Tenant",
    metadata: { name: tenant, labels: labelsFor(tenant) },
    spec: body,
  };
}

export interface TenantNamespace {
  name: string;
  /** The project living in it, if any (`<tenant>-owner` and `<tenant>-apps` have none unless a project maps there). */
  project: string | null;
  labels: Record<string, string>;
}

/** `<tenant>-owner`, `<tenant>-apps`, then each project's namespace; sorted by name, without duplicates. */
export function tenantNamespaces(tenant: string, spec: TenantSpec): TenantNamespace[] {
  const byName = new Map<string, TenantNamespace>();
  for (const name of [ownerNamespace(tenant), appsNamespace(tenant)]) {
    byName.set(name, { name, project: null, labels: {} });
  }
  for (const project of spec.projects) {
    byName.set(project.namespace, { name: project.namespace, project: project.name, labels: project.labels });
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A namespace of the tenant, attached to the Capsule Tenant by ownerReference (DESIGN.md §9.4). */
export function namespaceObject(tenant: string, ns: TenantNamespace, tenantUid: string): KubeObject {
  const extra: Record<string, string> = { ...ns.labels, [CAPSULE_TENANT_LABEL]: tenant };
  if (ns.project) extra[PROJECT_LABEL] = ns.project;
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: ns.name,
      labels: labelsFor(tenant, extra),
      ownerReferences: [
        { apiVersion: CAPSULE_API_VERSION, kind: "Tenant", name: tenant, uid: tenantUid, controller: true },
      ],
    },
  };
}

const serviceAccount = (tenant: string, namespace: string, name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: { name, namespace, labels: labelsFor(tenant) },
});

const roleBinding = (
  tenant: string,
  namespace: string,
  name: string,
  clusterRole: string,
  subject: { namespace: string; name: string },
): KubeObject => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name, namespace, labels: labelsFor(tenant) },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
  subjects: [{ kind: "ServiceAccount", name: subject.name, namespace: subject.namespace }],
});

/** Allows ingress only from the tenant's own namespaces (which includes this one); egress stays open. */
const networkPolicy = (tenant: string, namespace: string): KubeObject => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: OBJECT_NAMES.networkPolicy, namespace, labels: labelsFor(tenant) },
  spec: {
    podSelector: {},
    policyTypes: ["Ingress"],
    ingress: [
      {
        from: [
          { namespaceSelector: { matchLabels: { [CAPSULE_TENANT_LABEL]: tenant } } },
          { podSelector: {} },
        ],
      },
    ],
  },
});

/**
 * Everything inside the tenant's namespaces, in apply order: ServiceAccounts before the RoleBindings naming
 * them, then quotas, limit ranges and network policies.
 */
export function namespacedObjects(tenant: string, spec: TenantSpec): KubeObject[] {
  const namespaces = tenantNamespaces(tenant, spec);
  const owner = ownerNamespace(tenant);
  const accounts: KubeObject[] = [
    serviceAccount(tenant, owner, ROLE_MAPPING.tenantOwner.serviceAccount),
    serviceAccount(tenant, owner, ROLE_MAPPING.readOnly.serviceAccount),
  ];
  const bindings: KubeObject[] = [];
  const quotas: KubeObject[] = [];
  const limits: KubeObject[] = [];
  const policies: KubeObject[] = [];
  const hard = quotaHard(spec);
  const limit = containerLimit(spec);
  for (const ns of namespaces) {
    bindings.push(
      roleBinding(tenant, ns.name, OBJECT_NAMES.ownerBinding, ROLE_MAPPING.tenantOwner.clusterRole, {
        namespace: owner,
        name: ROLE_MAPPING.tenantOwner.serviceAccount,
      }),
      roleBinding(tenant, ns.name, OBJECT_NAMES.readonlyBinding, ROLE_MAPPING.readOnly.clusterRole, {
        namespace: owner,
        name: ROLE_MAPPING.readOnly.serviceAccount,
      }),
    );
    if (ns.project) {
      accounts.push(serviceAccount(tenant, ns.name, ROLE_MAPPING.projectDev.serviceAccount));
      bindings.push(
        roleBinding(tenant, ns.name, OBJECT_NAMES.devBinding, ROLE_MAPPING.projectDev.clusterRole, {
          namespace: ns.name,
          name: ROLE_MAPPING.projectDev.serviceAccount,
        }),
      );
    }
    // The plan's totals also cap each namespace: Capsule enforces the tenant-wide sum (scope Tenant); this
    // operator-owned quota holds even where the Capsule controller is absent or behind.
    if (Object.keys(hard).length > 0) {
      quotas.push({
        apiVersion: "v1",
        kind: "ResourceQuota",
        metadata: { name: OBJECT_NAMES.quota, namespace: ns.name, labels: labelsFor(tenant) },
        spec: { hard },
      });
    }
    if (limit) {
      limits.push({
        apiVersion: "v1",
        kind: "LimitRange",
        metadata: { name: OBJECT_NAMES.limits, namespace: ns.name, labels: labelsFor(tenant) },
        spec: { limits: [limit] },
      });
    }
    policies.push(networkPolicy(tenant, ns.name));
  }
  return [...accounts, ...bindings, ...quotas, ...limits, ...policies];
}

/** The kinds this reconciler manages, in apply order (also what the drift watch observes). */
export const MANAGED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string; namespaced: boolean }> = [
  { apiVersion: CAPSULE_API_VERSION, kind: "Tenant", namespaced: false },
  { apiVersion: "v1", kind: "Namespace", namespaced: false },
  { apiVersion: "v1", kind: "ServiceAccount", namespaced: true },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", namespaced: true },
  { apiVersion: "v1", kind: "ResourceQuota", namespaced: true },
  { apiVersion: "v1", kind: "LimitRange", namespaced: true },
  { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", namespaced: true },
];

export const managedSelector = (tenant?: string) =>
  tenant ? `${MANAGED_BY}=kubenova,${TENANT_LABEL}=${tenant}` : `${MANAGED_BY}=kubenova`;

/**
 * True when every field `desired` sets has that value in `live` (server defaults and other managers' extra
 * fields are ignored). Lists must match element-wise and in length: they are applied atomically.
 */
export function contains(live: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) && live.length === desired.length && desired.every((d, i) => contains(live[i], d))
    );
  }
  if (isRecord(desired)) {
    return isRecord(live) && Object.entries(desired).every(([k, v]) => contains(live[k], v));
  }
  return live === desired;
}
