/**
 * @module manager/install — installing the KubeNova operator into a cluster (DESIGN.md §4 enrolment): the install
 * manifests (this file, a pure function of the cluster, the Manager's settings and a bootstrap token) and the
 * one-time installer that applies them from a stored kubeconfig (`kube-installer.ts`).
 */
import { parse, stringify } from "yaml";
// Text imports, so `bun build --compile` embeds the chart's CRDs in the single binary.
import novaClusterConfigsCrd from "../../charts/operator/crds/novaclusterconfigs.yaml" with { type: "text" };
import novaTenantsCrd from "../../charts/operator/crds/novatenants.yaml" with { type: "text" };

import {
  BOOTSTRAP_SECRET_NAME,
  OPERATOR_DATA_DIR,
  OPERATOR_HEALTH_PORT,
  OPERATOR_NAME,
  OPERATOR_NAMESPACE,
} from "./names.ts";

export { BOOTSTRAP_SECRET_NAME, OPERATOR_DATA_DIR, OPERATOR_HEALTH_PORT, OPERATOR_NAME, OPERATOR_NAMESPACE };

/** A Kubernetes object as plain JSON. */
export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export interface InstallManifestOptions {
  cluster: { id: string; name: string; capsuleProxyUrl: string | null };
  /** Where the operator reaches the Manager's API (config.publicUrl). */
  managerUrl: string;
  operatorImage: string;
  /** The cluster's one-time bootstrap token (`knb_…`), put in a Secret the operator enrols with. */
  bootstrapToken: string;
  /** Storage class for the operator's data volume and tenants' default (TARGET_STORAGE_CLASS); "" = default. */
  targetStorageClass?: string;
  /** Annotations the operator puts on tenants' LoadBalancer Services (TARGET_LB_ANNOTATIONS), `k=v,k=v`. */
  targetLbAnnotations?: string;
}

const LABELS = {
  "app.kubernetes.io/name": OPERATOR_NAME,
  "app.kubernetes.io/part-of": "kubenova",
  "app.kubernetes.io/managed-by": "kubenova",
};

/** The KubeNova CRDs shipped in charts/operator/crds. */
export function kubenovaCrds(): KubeManifest[] {
  return [novaClusterConfigsCrd, novaTenantsCrd].map((text) => parse(text) as KubeManifest);
}

const ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"];
const READ_VERBS = ["get", "list", "watch"];

/** What the operator does in the cluster (DESIGN.md §6), and nothing more. */
function clusterRoleRules(): Array<Record<string, string[]>> {
  return [
    // Tenant namespaces, their ServiceAccounts (owner/readonly), quotas and limit ranges.
    {
      apiGroups: [""],
      resources: ["namespaces", "serviceaccounts", "resourcequotas", "limitranges"],
      verbs: ALL_VERBS,
    },
    // Tenant kubeconfigs are minted through the TokenRequest API (DESIGN.md §4).
    { apiGroups: [""], resources: ["serviceaccounts/token"], verbs: ["create"] },
    // Usage collection only reads these (DESIGN.md §6 usage collector).
    { apiGroups: [""], resources: ["pods", "persistentvolumeclaims", "services"], verbs: READ_VERBS },
    {
      apiGroups: ["", "events.k8s.io"],
      resources: ["events"],
      verbs: ["get", "list", "watch", "create", "patch"],
    },
    { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ALL_VERBS },
    // The operator grants tenants' ServiceAccounts roles it does not hold itself: bind/escalate are required.
    {
      apiGroups: ["rbac.authorization.k8s.io"],
      resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
      verbs: [...ALL_VERBS, "bind", "escalate"],
    },
    {
      apiGroups: ["capsule.clastix.io"],
      resources: ["tenants", "tenants/status", "capsuleconfigurations"],
      verbs: ALL_VERBS,
    },
    {
      apiGroups: ["core.oam.dev"],
      resources: ["applications", "applications/status", "applicationrevisions"],
      verbs: ALL_VERBS,
    },
    // Capabilities reported in hello come from the installed CRDs (DESIGN.md §7 CRD mismatch).
    { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: READ_VERBS },
    {
      apiGroups: ["kubenova.io"],
      resources: ["novaclusterconfigs", "novaclusterconfigs/status", "novatenants", "novatenants/status"],
      verbs: ALL_VERBS,
    },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ALL_VERBS },
  ];
}

/**
 * Everything the operator needs, in apply order: the namespace and the CRDs first, then identities and RBAC, the
 * bootstrap Secret, a default NovaClusterConfig (needs its CRD), the data volume and the Deployment.
 */
export function buildInstallManifests(options: InstallManifestOptions): KubeManifest[] {
  const ns = OPERATOR_NAMESPACE;
  const storageClass = options.targetStorageClass ?? "";
  const clusterLabels = { ...LABELS, "kubenova.io/cluster-id": options.cluster.id };
  const env = [
    { name: "NOVA_MANAGER_URL", value: options.managerUrl },
    { name: "NOVA_CLUSTER_ID", value: options.cluster.id },
    { name: "NOVA_CLUSTER_NAME", value: options.cluster.name },
    { name: "TARGET_STORAGE_CLASS", value: storageClass },
    { name: "TARGET_LB_ANNOTATIONS", value: options.targetLbAnnotations ?? "" },
    { name: "NOVA_CAPS_PROX_URL", value: options.cluster.capsuleProxyUrl ?? "" },
    {
      name: "NOVA_BOOTSTRAP_TOKEN",
      valueFrom: { secretKeyRef: { name: BOOTSTRAP_SECRET_NAME, key: "token" } },
    },
    { name: "NOVA_DATA_DIR", value: OPERATOR_DATA_DIR },
    { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  ];
  const probe = (path: string, initialDelaySeconds: number) => ({
    httpGet: { path, port: "health" },
    initialDelaySeconds,
    periodSeconds: 10,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: ns,
        labels: { ...LABELS, "pod-security.kubernetes.io/enforce": "restricted" },
      },
    },
    ...kubenovaCrds(),
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: OPERATOR_NAME, namespace: ns, labels: LABELS },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: OPERATOR_NAME, labels: LABELS },
      rules: clusterRoleRules(),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: OPERATOR_NAME, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: OPERATOR_NAME },
      subjects: [{ kind: "ServiceAccount", name: OPERATOR_NAME, namespace: ns }],
    },
    // Its own Secrets (the bootstrap token; the client certificate it keeps in-cluster) only in its namespace.
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: OPERATOR_NAME, namespace: ns, labels: LABELS },
      rules: [{ apiGroups: [""], resources: ["secrets", "configmaps"], verbs: ALL_VERBS }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: OPERATOR_NAME, namespace: ns, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: OPERATOR_NAME },
      subjects: [{ kind: "ServiceAccount", name: OPERATOR_NAME, namespace: ns }],
    },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: BOOTSTRAP_SECRET_NAME, namespace: ns, labels: clusterLabels },
      type: "Opaque",
      stringData: { token: options.bootstrapToken },
    },
    {
      apiVersion: "kubenova.io/v1alpha1",
      kind: "NovaClusterConfig",
      metadata: { name: "kubenova", labels: clusterLabels },
      spec: {
        installCapsule: true,
        installCapsuleProxy: true,
        installKubeVela: true,
        kubeVelaProfile: "standard",
      },
    },
    {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: `${OPERATOR_NAME}-data`, namespace: ns, labels: LABELS },
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: "1Gi" } },
        ...(storageClass ? { storageClassName: storageClass } : {}),
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: OPERATOR_NAME, namespace: ns, labels: clusterLabels },
      spec: {
        replicas: 1,
        // One writer of the outbox volume at a time.
        strategy: { type: "Recreate" },
        selector: { matchLabels: { "app.kubernetes.io/name": OPERATOR_NAME } },
        template: {
          metadata: { labels: LABELS },
          spec: {
            serviceAccountName: OPERATOR_NAME,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              fsGroup: 65532,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "operator",
                image: options.operatorImage,
                imagePullPolicy: "IfNotPresent",
                args: ["operator"],
                env,
                ports: [{ name: "health", containerPort: OPERATOR_HEALTH_PORT, protocol: "TCP" }],
                livenessProbe: probe("/healthz", 10),
                readinessProbe: probe("/readyz", 5),
                resources: {
                  requests: { cpu: "50m", memory: "128Mi" },
                  limits: { memory: "512Mi" },
                },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMounts: [
                  { name: "data", mountPath: OPERATOR_DATA_DIR },
                  { name: "tmp", mountPath: "/tmp" },
                ],
              },
            ],
            volumes: [
              { name: "data", persistentVolumeClaim: { claimName: `${OPERATOR_NAME}-data` } },
              { name: "tmp", emptyDir: {} },
            ],
          },
        },
      },
    },
  ];
}

/** Multi-document YAML in YAML 1.1 mode, so Kubernetes reads `yes`/`on`/dates as strings (NOTES.md). */
export function renderInstallYaml(manifests: readonly KubeManifest[]): string {
  return manifests.map((m) => stringify(m, { version: "1.1", lineWidth: 0 })).join("---\n");
}
