/**
 * @module shared/api/models — zod schemas of every API model (DESIGN.md §5). The Manager validates requests and
 * documents its OpenAPI from these; clients may import them to validate what they receive.
 */
import { z } from "zod";
import { DisplayName, dnsLabel, Labels, ProjectName, ResourceName, TenantName, Timestamp } from "./common.ts";

// ── Clusters ────────────────────────────────────────────────────────────────────────────────────────────────────

export const CLUSTER_STATUSES = [
  "pending_bootstrap",
  "bootstrapping",
  "connected",
  "stale",
  "offline",
  "certificate_expired",
  "error",
] as const;
export const ClusterStatus = z.enum(CLUSTER_STATUSES);
export type ClusterStatus = z.infer<typeof ClusterStatus>;

const HttpsUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
  .max(2048)
  .meta({ format: "uri" });

export const ClusterCreate = z
  .object({
    name: ResourceName,
    displayName: DisplayName.optional(),
    datacenter: dnsLabel(63).meta({ description: "Datacenter this cluster runs in" }),
    labels: Labels.optional(),
    capsuleProxyUrl: HttpsUrl.optional().meta({ description: "URL tenants reach capsule-proxy at" }),
    kubeconfig: z
      .string()
      .min(1)
      .max(256 * 1024)
      .optional()
      .meta({
        description: "Admin kubeconfig for a one-time operator install; encrypted at rest, never returned",
      }),
  })
  .strict()
  .meta({ id: "ClusterCreate" });

export const ClusterUpdate = z
  .object({
    displayName: DisplayName.optional(),
    datacenter: dnsLabel(63).optional(),
    labels: Labels.optional(),
    capsuleProxyUrl: HttpsUrl.nullable().optional(),
    kubeconfig: z
      .string()
      .min(1)
      .max(256 * 1024)
      .nullable()
      .optional()
      .meta({ description: "Replace the stored kubeconfig, or null to delete it" }),
  })
  .strict()
  .meta({ id: "ClusterUpdate" });

export const Cluster = z
  .object({
    id: z.string().meta({ description: "Immutable id; the operator's certificate CN and MQTT identity" }),
    name: z.string(),
    displayName: z.string().nullable(),
    datacenter: z.string(),
    labels: z.record(z.string(), z.string()),
    capsuleProxyUrl: z.string().nullable(),
    status: ClusterStatus,
    statusReason: z.string().nullable(),
    versions: z.record(z.string(), z.string()),
    capabilities: z.record(z.string(), z.array(z.string())),
    hasKubeconfig: z.boolean(),
    lastSeenAt: Timestamp.nullable(),
    revokedAt: Timestamp.nullable().meta({
      description:
        "Set while the cluster is revoked: it cannot connect until re-enrolled with a new bootstrap token",
    }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "Cluster" });
export type Cluster = z.infer<typeof Cluster>;

// ── Enrolment (DESIGN.md §4) ────────────────────────────────────────────────────────────────────────────────────

const Pem = z
  .string()
  .min(1)
  .max(16 * 1024);

export const BootstrapToken = z
  .object({
    token: z
      .string()
      .meta({ description: "One-time bootstrap token (`knb_…`); shown once, stored only hashed" }),
    expiresAt: Timestamp,
    installUrl: z
      .string()
      .meta({ description: "GET with `Authorization: Bearer <token>` for the install manifests" }),
    instructions: z.object({
      kubectl: z.string().meta({ description: "Install with kubectl" }),
      helm: z.string().meta({ description: "Install with the operator's Helm chart" }),
    }),
  })
  .meta({ id: "BootstrapToken" });

export const ClusterRegistration = z
  .object({ cluster: Cluster, bootstrap: BootstrapToken })
  .meta({ id: "ClusterRegistration" });

export const EnrolmentRequest = z
  .object({
    csr: Pem.meta({ description: "PEM PKCS#10 request, ECDSA P-256, subject CN = the cluster id" }),
  })
  .strict()
  .meta({ id: "EnrolmentRequest" });

export const RenewalRequest = z
  .object({
    csr: Pem.meta({ description: "PEM PKCS#10 request for the new key, subject CN = the cluster id" }),
    proof: z
      .string()
      .min(1)
      .max(16 * 1024)
      .meta({
        description:
          "Compact JWS (ES256) signed with the current key; header x5c = [current certificate, DER base64]; " +
          "claims sub = cluster id, csr_sha256 = hex SHA-256 of `csr`, iat, exp (≤ 300 s after iat)",
      }),
  })
  .strict()
  .meta({ id: "RenewalRequest" });

export const ClusterIdentity = z
  .object({
    clusterId: z.string().meta({ description: "The certificate's CN and the MQTT client id" }),
    certificate: z.string().meta({ description: "Client certificate (PEM)" }),
    caBundle: z.string().meta({ description: "CA certificate (PEM) the broker's certificate chains to" }),
    brokerUrl: z.string().meta({ description: "mqtts:// URL of the broker" }),
    renewAfter: Timestamp.meta({ description: "Renew from here on (70–90% of the lifetime, jittered)" }),
    expiresAt: Timestamp,
  })
  .meta({ id: "ClusterIdentity" });

export const OperatorInstall = z
  .object({
    cluster: Cluster,
    applied: z.array(
      z.object({
        apiVersion: z.string(),
        kind: z.string(),
        name: z.string(),
        namespace: z.string().optional(),
      }),
    ),
  })
  .meta({ id: "OperatorInstall" });

// ── Plans and policy sets ───────────────────────────────────────────────────────────────────────────────────────

/** Kubernetes quantity, e.g. `500m`, `2`, `4Gi`, `1.5`. */
export const Quantity = z
  .string()
  .max(64)
  .regex(
    /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[mkMGTPE])?$/,
    "must be a Kubernetes quantity",
  )
  .meta({ description: "Kubernetes quantity such as 500m, 2, 4Gi" });

export const PlanQuotas = z
  .object({
    cpu: Quantity.optional().meta({ description: "Total CPU requests" }),
    memory: Quantity.optional().meta({ description: "Total memory requests" }),
    storage: Quantity.optional().meta({ description: "Total PVC capacity" }),
    pods: z.number().int().min(0).max(1_000_000).optional(),
    services: z.number().int().min(0).max(1_000_000).optional(),
    loadBalancers: z.number().int().min(0).max(100_000).optional(),
    namespaces: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .meta({ description: "Capsule namespace quota" }),
  })
  .strict()
  .meta({ id: "PlanQuotas" });

export const PlanLimitRange = z
  .object({
    defaultCpu: Quantity.optional(),
    defaultMemory: Quantity.optional(),
    defaultRequestCpu: Quantity.optional(),
    defaultRequestMemory: Quantity.optional(),
    maxCpu: Quantity.optional(),
    maxMemory: Quantity.optional(),
  })
  .strict()
  .meta({ id: "PlanLimitRange" });

/** A KubeVela trait: `{ type, properties }`. */
export const Trait = z
  .object({
    type: dnsLabel(63),
    properties: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .meta({ id: "Trait" });

/** A KubeVela policy: `{ name, type, properties }`. */
export const Policy = z
  .object({
    name: dnsLabel(63),
    type: dnsLabel(63),
    properties: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .meta({ id: "Policy" });

export const PlanCreate = z
  .object({
    name: ResourceName,
    displayName: DisplayName.optional(),
    description: z.string().max(1024).optional(),
    quotas: PlanQuotas.default({}),
    limitRange: PlanLimitRange.optional(),
    allowLoadBalancers: z.boolean().default(false),
    traits: z.array(Trait).max(32).default([]),
    policies: z.array(Policy).max(32).default([]),
  })
  .strict()
  .meta({ id: "PlanCreate" });

// Explicit, without PlanCreate's defaults: `.partial()` keeps a field's `.default()`, so a PATCH that names only
// `displayName` would otherwise reset quotas, traits, policies and allowLoadBalancers.
export const PlanUpdate = z
  .object({
    displayName: DisplayName.optional(),
    description: z.string().max(1024).optional(),
    quotas: PlanQuotas.optional(),
    limitRange: PlanLimitRange.optional(),
    allowLoadBalancers: z.boolean().optional(),
    traits: z.array(Trait).max(32).optional(),
    policies: z.array(Policy).max(32).optional(),
  })
  .strict()
  .meta({ id: "PlanUpdate" });

export const Plan = z
  .object({
    name: z.string(),
    displayName: z.string().nullable(),
    description: z.string().nullable(),
    quotas: PlanQuotas,
    limitRange: PlanLimitRange.nullable(),
    allowLoadBalancers: z.boolean(),
    traits: z.array(Trait),
    policies: z.array(Policy),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "Plan" });
export type Plan = z.infer<typeof Plan>;

export const PolicySetCreate = z
  .object({
    name: ResourceName,
    description: z.string().max(1024).optional(),
    traits: z.array(Trait).max(32).default([]),
    policies: z.array(Policy).max(32).default([]),
    allowedComponentTypes: z
      .array(dnsLabel(63))
      .max(64)
      .optional()
      .meta({ description: "If set, apps under this set may only use these component types" }),
  })
  .strict()
  .meta({ id: "PolicySetCreate" });

// Explicit for the same reason as PlanUpdate: no defaults, so omitted fields stay as they are.
export const PolicySetUpdate = z
  .object({
    description: z.string().max(1024).optional(),
    traits: z.array(Trait).max(32).optional(),
    policies: z.array(Policy).max(32).optional(),
    allowedComponentTypes: PolicySetCreate.shape.allowedComponentTypes,
  })
  .strict()
  .meta({ id: "PolicySetUpdate" });

export const PolicySet = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    traits: z.array(Trait),
    policies: z.array(Policy),
    allowedComponentTypes: z.array(z.string()).nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "PolicySet" });
export type PolicySet = z.infer<typeof PolicySet>;

// ── Tenants and projects ────────────────────────────────────────────────────────────────────────────────────────

export const Owner = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\s]+$/, "must not contain white space")
  .meta({ description: "User subject (JWT `sub`) that owns the tenant" });

export const TenantCreate = z
  .object({
    name: TenantName,
    displayName: DisplayName.optional(),
    owners: z.array(Owner).max(64).default([]),
    plan: ResourceName.optional().meta({ description: "Plan name; the default plan applies when omitted" }),
    clusters: z
      .array(ResourceName)
      .min(1, "a tenant must be placed on at least one cluster")
      .max(64)
      .refine((names) => new Set(names).size === names.length, "cluster names must be unique")
      .meta({ description: "Clusters (by name) the tenant is placed on" }),
    labels: Labels.optional(),
    policySets: z.array(ResourceName).max(32).optional(),
  })
  .strict()
  .meta({ id: "TenantCreate" });

export const TenantUpdate = z
  .object({
    displayName: DisplayName.optional(),
    owners: z.array(Owner).max(64).optional(),
    clusters: TenantCreate.shape.clusters.optional(),
    labels: Labels.optional(),
    policySets: z.array(ResourceName).max(32).optional(),
  })
  .strict()
  .meta({ id: "TenantUpdate" });

export const TenantPlanUpdate = z.object({ plan: ResourceName }).strict().meta({ id: "TenantPlanUpdate" });

export const Tenant = z
  .object({
    name: z.string(),
    displayName: z.string().nullable(),
    owners: z.array(z.string()),
    plan: z.string().nullable(),
    clusters: z.array(z.string()),
    labels: z.record(z.string(), z.string()),
    policySets: z.array(z.string()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "Tenant" });
export type Tenant = z.infer<typeof Tenant>;

export const ProjectCreate = z
  .object({
    name: ProjectName,
    displayName: DisplayName.optional(),
    cluster: ResourceName.meta({ description: "One of the tenant's clusters" }),
    labels: Labels.optional(),
    policySets: z.array(ResourceName).max(32).optional(),
  })
  .strict()
  .meta({ id: "ProjectCreate" });

export const ProjectUpdate = z
  .object({
    displayName: DisplayName.optional(),
    labels: Labels.optional(),
    policySets: z.array(ResourceName).max(32).optional(),
  })
  .strict()
  .meta({ id: "ProjectUpdate" });

export const Project = z
  .object({
    tenant: z.string(),
    name: z.string(),
    displayName: z.string().nullable(),
    cluster: z.string(),
    namespace: z.string(),
    labels: z.record(z.string(), z.string()),
    policySets: z.array(z.string()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "Project" });
export type Project = z.infer<typeof Project>;

/** The namespace a project owns in its cluster (DESIGN.md §6). */
export function projectNamespace(tenant: string, project: string): string {
  return `${tenant}-${project}`;
}

// ── Apps (KubeVela Application spec) ────────────────────────────────────────────────────────────────────────────

export const Component = z
  .object({
    name: dnsLabel(63),
    type: dnsLabel(63).meta({ description: "ComponentDefinition name, e.g. webservice" }),
    properties: z.record(z.string(), z.unknown()).optional(),
    traits: z.array(Trait).max(32).optional(),
    dependsOn: z.array(dnsLabel(63)).max(32).optional(),
    inputs: z.array(z.record(z.string(), z.unknown())).max(32).optional(),
    outputs: z.array(z.record(z.string(), z.unknown())).max(32).optional(),
    externalRevision: z.string().max(253).optional(),
  })
  .strict()
  .meta({ id: "Component" });

export const WorkflowStep = z
  .object({
    name: dnsLabel(63),
    type: dnsLabel(63),
    properties: z.record(z.string(), z.unknown()).optional(),
    dependsOn: z.array(dnsLabel(63)).max(32).optional(),
    if: z.string().max(1024).optional(),
    timeout: z.string().max(32).optional(),
    subSteps: z.array(z.record(z.string(), z.unknown())).max(32).optional(),
  })
  .strict()
  .meta({ id: "WorkflowStep" });

export const AppSpec = z
  .object({
    components: z
      .array(Component)
      .min(1, "an app needs at least one component")
      .max(64)
      .refine(
        (components) => new Set(components.map((c) => c.name)).size === components.length,
        "component names must be unique",
      ),
    policies: z.array(Policy).max(32).optional(),
    workflow: z
      .object({
        steps: z.array(WorkflowStep).max(64).optional(),
        mode: z
          .object({
            steps: z.enum(["StepByStep", "DAG"]).optional(),
            subSteps: z.enum(["StepByStep", "DAG"]).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .meta({ id: "AppSpec", description: "A KubeVela Application spec (core.oam.dev/v1beta1)" });
export type AppSpec = z.infer<typeof AppSpec>;

export const AppCreate = z
  .object({
    name: ResourceName,
    spec: AppSpec,
    deploy: z.boolean().default(true).meta({ description: "Deploy revision 1 at once (default true)" }),
    labels: Labels.optional(),
  })
  .strict()
  .meta({ id: "AppCreate" });

export const AppUpdate = z
  .object({
    spec: AppSpec.optional(),
    deploy: z.boolean().default(true).meta({ description: "Deploy the new revision at once (default true)" }),
    labels: Labels.optional(),
  })
  .strict()
  .meta({ id: "AppUpdate" });

export const AppDeployRequest = z
  .object({ revision: z.number().int().min(1).optional().meta({ description: "Defaults to the latest" }) })
  .strict()
  .meta({ id: "AppDeployRequest" });

export const AppRollbackRequest = z
  .object({
    revision: z.number().int().min(1).meta({ description: "Revision whose spec becomes a new revision" }),
  })
  .strict()
  .meta({ id: "AppRollbackRequest" });

export const APP_PHASES = ["Pending", "Applying", "Deployed", "Drifted", "Error"] as const;

export const App = z
  .object({
    tenant: z.string(),
    project: z.string(),
    name: z.string(),
    cluster: z.string(),
    namespace: z.string(),
    labels: z.record(z.string(), z.string()),
    spec: AppSpec,
    revision: z.number().int().meta({ description: "Latest revision" }),
    deployedRevision: z.number().int().nullable().meta({ description: "Revision the cluster should run" }),
    suspended: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "App" });
export type App = z.infer<typeof App>;

export const AppRevision = z
  .object({
    revision: z.number().int(),
    spec: AppSpec,
    createdAt: Timestamp,
    createdBy: z.string(),
    note: z.string().nullable(),
  })
  .meta({ id: "AppRevision" });
export type AppRevision = z.infer<typeof AppRevision>;

export const AppDiffEntry = z
  .object({
    op: z.enum(["add", "remove", "replace"]),
    path: z.string().meta({ description: "JSON Pointer (RFC 6901)" }),
    from: z.unknown().optional(),
    value: z.unknown().optional(),
  })
  .meta({ id: "AppDiffEntry" });

export const AppDiff = z
  .object({ from: z.number().int(), to: z.number().int(), changes: z.array(AppDiffEntry) })
  .meta({ id: "AppDiff" });

export const AppStatus = z
  .object({
    cluster: z.string(),
    phase: z.enum(APP_PHASES).nullable(),
    observedGeneration: z.number().int().nullable(),
    observedRevision: z.number().int().nullable(),
    report: z.record(z.string(), z.unknown()).nullable(),
    updatedAt: Timestamp.nullable(),
  })
  .meta({ id: "AppStatus", description: "Latest status reported by the cluster (empty until it reports)" });

// ── Usage ───────────────────────────────────────────────────────────────────────────────────────────────────────

export const UsageMetrics = z
  .object({
    cpuRequestMillicores: z.number().min(0),
    memoryRequestBytes: z.number().min(0),
    storageBytes: z.number().min(0),
    loadBalancers: z.number().int().min(0),
    pods: z.number().int().min(0),
    namespaces: z.number().int().min(0),
    applications: z.number().int().min(0),
    quotaViolations: z.number().int().min(0),
  })
  .meta({ id: "UsageMetrics" });
export type UsageMetrics = z.infer<typeof UsageMetrics>;

export const UsageRecord = z
  .object({
    id: z.string(),
    clusterId: z.string(),
    tenant: z.string(),
    windowStart: Timestamp,
    windowEnd: Timestamp,
    metrics: UsageMetrics,
    byProject: z.record(z.string(), UsageMetrics),
    adjustment: z.boolean(),
    receivedAt: Timestamp,
  })
  .meta({ id: "UsageRecord" });
export type UsageRecord = z.infer<typeof UsageRecord>;

export const USAGE_GRANULARITIES = ["hour", "day", "month"] as const;

export const UsageQuery = z
  .object({
    from: z.iso
      .datetime({ offset: true, error: "must be an RFC 3339 timestamp" })
      .optional()
      .meta({ description: "Window starts ≥ from (default: the start of the current UTC month)" }),
    to: z.iso
      .datetime({ offset: true, error: "must be an RFC 3339 timestamp" })
      .optional()
      .meta({ description: "Window starts < to (default: now); at most 366 days after `from`" }),
    granularity: z
      .enum(USAGE_GRANULARITIES)
      .default("day")
      .meta({ description: "UTC hour, day or month buckets" }),
    cluster: ResourceName.optional(),
    format: z
      .enum(["json", "csv"])
      .default("json")
      .meta({ description: "csv: the raw records, stable columns" }),
  })
  .strict();

export const AdminUsageQuery = UsageQuery.extend({ tenant: TenantName.optional() }).strict();

export const UsageBucket = z
  .object({
    start: Timestamp,
    end: Timestamp,
    records: z.number().int(),
    /** Sums over the bucket's hourly records, adjustments included (e.g. cpuRequestMillicores = millicore-hours). */
    metrics: UsageMetrics,
    /** The part of `metrics` that came from adjustment rows (late records for closed periods). */
    adjustments: UsageMetrics,
  })
  .meta({ id: "UsageBucket" });

export const UsageReport = z
  .object({
    tenant: z.string().nullable(),
    project: z.string().nullable(),
    cluster: z.string().nullable(),
    from: Timestamp,
    to: Timestamp,
    granularity: z.enum(USAGE_GRANULARITIES),
    records: z.number().int(),
    totals: UsageMetrics,
    adjustments: UsageMetrics,
    buckets: z.array(UsageBucket),
    /** Admin reports: totals per tenant. */
    byTenant: z.record(z.string(), UsageMetrics).optional(),
  })
  .meta({ id: "UsageReport", description: "Usage summed from hourly records into UTC buckets" });
export type UsageReport = z.infer<typeof UsageReport>;

// ── Events ──────────────────────────────────────────────────────────────────────────────────────────────────────

export const Event = z
  .object({
    id: z.string(),
    cluster: z
      .string()
      .nullable()
      .meta({ description: "Cluster name (null if the cluster was deleted since)" }),
    tenant: z.string().nullable(),
    at: Timestamp,
    type: z.enum(["Normal", "Warning"]),
    reason: z.string(),
    message: z.string(),
    object: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: "Event" });

// ── Kubeconfigs ─────────────────────────────────────────────────────────────────────────────────────────────────

export const KubeconfigRequest = z
  .object({
    role: z.enum(["tenantOwner", "projectDev", "readOnly"]),
    ttlSeconds: z
      .number()
      .int()
      .min(600, "must be at least 600 (the Kubernetes TokenRequest minimum)")
      .max(7 * 86400)
      .optional()
      .meta({ description: "Default: one hour, or the caller's remaining lifetime if shorter" }),
    cluster: ResourceName.optional().meta({
      description: "Which of the tenant's clusters (required when it has several)",
    }),
  })
  .strict()
  .meta({ id: "KubeconfigRequest" });

export const KubeconfigResponse = z
  .object({
    kubeconfig: z.string().meta({ description: "YAML; the token inside is not stored by KubeNova" }),
    expiresAt: Timestamp,
    cluster: z.string(),
    namespace: z.string(),
    serviceAccount: z.string(),
  })
  .meta({ id: "KubeconfigResponse" });

// ── Identity ────────────────────────────────────────────────────────────────────────────────────────────────────

export const ROLES = ["admin", "ops", "tenantOwner", "projectDev", "readOnly"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

export const Me = z
  .object({
    subject: z.string(),
    role: Role,
    tenant: z.string().nullable(),
    project: z.string().nullable(),
    expiresAt: Timestamp.nullable(),
  })
  .meta({ id: "Me" });

export const TokenRequest = z
  .object({
    subject: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .meta({ description: "Defaults to the caller's subject; only admins may name another subject" }),
    role: Role,
    tenant: TenantName.optional(),
    project: ProjectName.optional(),
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(90 * 24 * 3600)
      .optional()
      .meta({ description: "Default: one hour, or the caller's remaining lifetime if shorter" }),
  })
  .strict()
  .meta({ id: "TokenRequest" });

export const TokenResponse = z
  .object({
    token: z.string(),
    expiresAt: Timestamp,
    role: Role,
    tenant: z.string().nullable(),
    project: z.string().nullable(),
  })
  .meta({ id: "TokenResponse" });

export const AuditEntry = z
  .object({
    id: z.string(),
    at: Timestamp,
    actor: z.string(),
    role: z.string(),
    action: z.string(),
    resource: z.string(),
    tenant: z.string().nullable(),
    requestId: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: "AuditEntry" });
export type AuditEntry = z.infer<typeof AuditEntry>;
