/**
 * Add-on bootstrap for the cluster-scoped `NovaClusterConfig` (DESIGN.md §6): installs Capsule, capsule-proxy and
 * KubeVela with the Helm CLI at pinned chart versions, then checks readiness against the API server (CRDs served
 * through discovery, Deployments Available) and makes the operator a Capsule administrator (DESIGN.md §9.4).
 *
 * The charts must be reachable from the operator: the image either runs `helm repo add projectcapsule
 * https://projectcapsule.github.io/charts` and `helm repo add kubevela https://kubevela.github.io/charts` at build
 * time (with network access at install time), or vendors the chart archives and passes their paths as `charts`.
 */
import { z } from "../../shared/zod.ts";
import type { Logger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import type { Helm } from "../helm.ts";
import { HelmError } from "../helm.ts";
import type { KubeClient, KubeObject } from "../kube/kube.ts";
import { type ReconcileResult, TerminalError } from "./runtime.ts";

export const NOVA_CLUSTER_CONFIG = { apiVersion: "kubenova.io/v1alpha1", kind: "NovaClusterConfig" } as const;

export type AddonKey = "capsule" | "capsuleProxy" | "kubeVela";

interface Addon {
  key: AddonKey;
  enabledBy: "installCapsule" | "installCapsuleProxy" | "installKubeVela";
  condition: string;
  release: string;
  /** The chart's own name, as `helm list` reports it in `<name>-<version>`. */
  chartName: string;
  defaultChart: string;
  defaultVersion: string;
  namespace: string;
  /** A kind whose CRD must be served before the add-on counts as ready. */
  servedKind?: { crd: string; group: string; version: string; kind: string };
}

/**
 * Pinned defaults, the versions whose CRDs are in shared/crds (SOURCES.md). KubeVela's 1.11 line exists only as
 * pre-releases there; `1.11.0-alpha.4` is the exact tag those CRDs come from.
 */
export const ADDONS: readonly Addon[] = [
  {
    key: "capsule",
    enabledBy: "installCapsule",
    condition: "CapsuleReady",
    release: "capsule",
    chartName: "capsule",
    defaultChart: "projectcapsule/capsule",
    defaultVersion: "0.14.0",
    namespace: "capsule-system",
    servedKind: {
      crd: "tenants.capsule.clastix.io",
      group: "capsule.clastix.io",
      version: "v1beta2",
      kind: "Tenant",
    },
  },
  {
    key: "capsuleProxy",
    enabledBy: "installCapsuleProxy",
    condition: "CapsuleProxyReady",
    release: "capsule-proxy",
    chartName: "capsule-proxy",
    defaultChart: "projectcapsule/capsule-proxy",
    defaultVersion: "0.14.0",
    namespace: "capsule-system",
  },
  {
    key: "kubeVela",
    enabledBy: "installKubeVela",
    condition: "KubeVelaReady",
    release: "kubevela",
    chartName: "vela-core",
    defaultChart: "kubevela/vela-core",
    defaultVersion: "1.11.0-alpha.4",
    namespace: "vela-system",
    servedKind: {
      crd: "applications.core.oam.dev",
      group: "core.oam.dev",
      version: "v1beta1",
      kind: "Application",
    },
  },
];

const ADMIN_CONDITION = "CapsuleAdministrator";
const OWN_CONDITIONS = new Set([...ADDONS.map((a) => a.condition), ADMIN_CONDITION, "Ready"]);

// Built on first use (z.lazy), like the message schemas (shared/messages.ts): not at the operator's start-up.
const ClusterConfigSpec = z.lazy(() => {
  // A chart version goes into argv; anything but a SemVer string is refused rather than passed on.
  const ChartPin = z.optional(
    z.object({
      version: z.optional(
        z
          .string()
          .check(
            z.regex(
              /^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/,
              "must be a SemVer chart version",
            ),
          ),
      ),
      values: z.optional(z.record(z.string(), z.unknown())),
    }),
  );
  return z.object({
    installCapsule: z._default(z.boolean(), true),
    installCapsuleProxy: z._default(z.boolean(), true),
    installKubeVela: z._default(z.boolean(), true),
    kubeVelaProfile: z._default(z.enum(["minimal", "standard", "full"]), "standard"),
    charts: z._default(z.object({ capsule: ChartPin, capsuleProxy: ChartPin, kubeVela: ChartPin }), {}),
  });
});

export type ClusterConfigPhase = "Pending" | "Installing" | "Ready" | "Error";

interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export interface AddonsDeps {
  kube: KubeClient;
  helm: Helm;
  logger: Logger;
  /**
   * The operator's Kubernetes username, e.g. `system:serviceaccount:kubenova-system:kubenova-operator`; listed in
   * `CapsuleConfiguration.spec.administrators` so Capsule lets it attach namespaces to tenants (DESIGN.md §9.4).
   */
  operatorIdentity: string;
  /** Status upward to the Manager; called only when the status changed. */
  report: (body: StatusBody) => void;
  /** Chart references per add-on (a vendored archive path, an OCI reference); defaults in `ADDONS`. */
  charts?: Partial<Record<AddonKey, string>>;
  /** Helm `--wait --timeout` per install. Default 300 s. */
  waitTimeoutSeconds?: number;
  /** Re-check interval while add-ons are not ready yet. Default 10 s. */
  pollIntervalMs?: number;
  /** Re-check interval once everything is ready, to notice an add-on that went away. Default 10 min. */
  resyncIntervalMs?: number;
  now?: () => Date;
}

/** `system:serviceaccount:<ns>:<name>` is a ServiceAccount entry (DESIGN.md §9.5); anything else a User. */
export function administratorEntry(identity: string): { kind: "User" | "ServiceAccount"; name: string } {
  return { kind: identity.startsWith("system:serviceaccount:") ? "ServiceAccount" : "User", name: identity };
}

/** Object keys sorted, so two JSON values compare equal regardless of key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

interface Observation {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/**
 * Reconciles the NovaClusterConfig `name`: installs what is enabled and not yet at its pin, checks readiness,
 * writes `status` (only when it changed). A Helm failure is written as an Error condition and thrown so the
 * runtime retries with backoff; an invalid spec is a `TerminalError`.
 */
export async function reconcileAddons(name: string, deps: AddonsDeps): Promise<ReconcileResult> {
  const log = deps.logger.child({ reconciler: "addons", object: name });
  const now = deps.now ?? (() => new Date());
  const ref = { ...NOVA_CLUSTER_CONFIG, name };
  const config = await deps.kube.get(ref);
  if (!config) return {};
  const generation = config.metadata.generation ?? 0;
  const current = (config.status ?? {}) as {
    phase?: string;
    observedGeneration?: number;
    conditions?: Condition[];
  };

  const conditions = new Map<string, Observation>();
  // Seeded from the last status so a write in the middle of a long install keeps what is known about the rest.
  for (const c of current.conditions ?? []) {
    if (OWN_CONDITIONS.has(c.type))
      conditions.set(c.type, { status: c.status, reason: c.reason, message: c.message });
  }
  const writeStatus = async (phase: ClusterConfigPhase, message: string) => {
    const previous = new Map((current.conditions ?? []).map((c) => [c.type, c]));
    const at = now().toISOString();
    const ours: Condition[] = [...conditions].map(([type, o]) => {
      const before = previous.get(type);
      return {
        type,
        ...o,
        // Kubernetes convention: the time changes only when the status does.
        lastTransitionTime: before && before.status === o.status ? before.lastTransitionTime : at,
        observedGeneration: generation,
      };
    });
    // Conditions other writers own survive; ours that no longer apply (a disabled add-on) are dropped.
    const foreign = (current.conditions ?? []).filter((c) => !OWN_CONDITIONS.has(c.type));
    const next = { phase, observedGeneration: generation, conditions: [...ours, ...foreign] };
    const sortByType = (list: Condition[]) => [...list].sort((a, b) => a.type.localeCompare(b.type));
    const unchanged =
      current.phase === next.phase &&
      current.observedGeneration === next.observedGeneration &&
      canonical(sortByType(current.conditions ?? [])) === canonical(sortByType(next.conditions));
    if (unchanged) return;
    await deps.kube.patchStatus(ref, next);
    current.phase = next.phase;
    current.observedGeneration = next.observedGeneration;
    current.conditions = next.conditions;
    deps.report({
      objectKind: "clusterConfig",
      key: name,
      observedGeneration: generation,
      phase: phase === "Ready" ? "Deployed" : phase === "Installing" ? "Applying" : phase,
      message,
      detail: { phase, conditions: next.conditions },
    });
  };

  const parsed = z.safeParse(ClusterConfigSpec, config.spec ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const message = `spec.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`;
    conditions.set("Ready", { status: "False", reason: "InvalidSpec", message });
    await writeStatus("Error", message);
    throw new TerminalError(`NovaClusterConfig ${name}: ${message}`);
  }
  const spec = parsed.data;
  const enabled = ADDONS.filter((addon) => spec[addon.enabledBy]);
  for (const addon of ADDONS) if (!spec[addon.enabledBy]) conditions.delete(addon.condition);
  if (!spec.installCapsule) conditions.delete(ADMIN_CONDITION);
  const waitTimeoutSeconds = deps.waitTimeoutSeconds ?? 300;

  // 1. Install what is not at its pin (in order: capsule-proxy needs Capsule's CRDs).
  const releases = new Map<string, Awaited<ReturnType<Helm["list"]>>>();
  const failures: string[] = [];
  const skipped = new Set<AddonKey>();
  for (const addon of enabled) {
    const pin = spec.charts[addon.key];
    const version = pin?.version ?? addon.defaultVersion;
    const values = pin?.values ?? {};
    if (addon.key === "capsuleProxy" && conditions.get("CapsuleReady")?.reason === "InstallFailed") {
      skipped.add(addon.key);
      conditions.set(addon.condition, {
        status: "False",
        reason: "WaitingForCapsule",
        message: "capsule-proxy is installed after Capsule",
      });
      continue;
    }
    try {
      let inNamespace = releases.get(addon.namespace);
      if (!inNamespace) {
        inNamespace = await deps.helm.list(addon.namespace);
        releases.set(addon.namespace, inNamespace);
      }
      const release = inNamespace.find((r) => r.name === addon.release);
      const atPin =
        release?.status === "deployed" &&
        release.chart === `${addon.chartName}-${version.replace(/^v/, "")}` &&
        canonical(await deps.helm.getValues(addon.release, addon.namespace)) === canonical(values);
      if (atPin) continue;
      conditions.set(addon.condition, {
        status: "False",
        reason: "Installing",
        message: `helm upgrade --install ${addon.release} ${version}`,
      });
      await writeStatus("Installing", `installing ${addon.release} ${version}`);
      log.info("installing add-on", { release: addon.release, version, namespace: addon.namespace });
      await deps.helm.upgradeInstall({
        release: addon.release,
        chart: deps.charts?.[addon.key] ?? addon.defaultChart,
        version,
        namespace: addon.namespace,
        waitTimeoutSeconds,
        values,
      });
    } catch (error) {
      const message =
        error instanceof HelmError ? error.message : `helm could not run: ${(error as Error).message}`;
      failures.push(`${addon.release}: ${message}`);
      skipped.add(addon.key);
      conditions.set(addon.condition, { status: "False", reason: "InstallFailed", message });
      log.warn("add-on install failed", { release: addon.release, err: error as Error });
    }
  }

  // 2. Readiness, judged by the API server rather than by Helm's word.
  const served = await deps.kube.servedGroups();
  let allReady = true;
  for (const addon of enabled) {
    if (skipped.has(addon.key)) {
      allReady = false;
      continue;
    }
    const missing = await missingFor(addon, served, deps.kube);
    if (missing.length === 0) {
      conditions.set(addon.condition, {
        status: "True",
        reason: "Ready",
        message: `${addon.release} ${spec.charts[addon.key]?.version ?? addon.defaultVersion} is ready`,
      });
    } else {
      allReady = false;
      conditions.set(addon.condition, { status: "False", reason: "NotReady", message: missing.join("; ") });
    }
  }

  // 3. The operator as a Capsule administrator, once Capsule runs (its CapsuleConfiguration exists then).
  if (enabled.some((a) => a.key === "capsule") && conditions.get("CapsuleReady")?.status === "True") {
    const admin = await ensureAdministrator(deps.kube, deps.operatorIdentity);
    conditions.set(ADMIN_CONDITION, admin);
    if (admin.status !== "True") allReady = false;
  }

  if (failures.length > 0) {
    conditions.set("Ready", { status: "False", reason: "InstallFailed", message: failures.join("; ") });
    await writeStatus("Error", failures.join("; "));
    throw new Error(`add-on install failed: ${failures.join("; ")}`);
  }
  if (!allReady) {
    const waiting = [...conditions.values()].filter((c) => c.status !== "True").map((c) => c.message);
    conditions.set("Ready", { status: "False", reason: "Installing", message: waiting.join("; ") });
    await writeStatus("Installing", waiting.join("; "));
    return { requeueAfterMs: deps.pollIntervalMs ?? 10_000 };
  }
  conditions.set("Ready", {
    status: "True",
    reason: "Ready",
    message: enabled.length > 0 ? `ready: ${enabled.map((a) => a.release).join(", ")}` : "no add-ons enabled",
  });
  await writeStatus("Ready", "add-ons ready");
  return { requeueAfterMs: deps.resyncIntervalMs ?? 600_000 };
}

function isTrue(object: KubeObject, type: string): boolean {
  const list = ((object.status as { conditions?: Array<{ type?: string; status?: string }> } | undefined)
    ?.conditions ?? []) as Array<{ type?: string; status?: string }>;
  return list.some((c) => c.type === type && c.status === "True");
}

/** What keeps an add-on from being ready, in words for the condition message; empty when it is ready. */
async function missingFor(
  addon: Addon,
  served: Record<string, string[]>,
  kube: KubeClient,
): Promise<string[]> {
  const missing: string[] = [];
  if (addon.servedKind) {
    const { crd, group, version, kind } = addon.servedKind;
    const object = await kube.get({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      name: crd,
    });
    const versions = (object?.spec as { versions?: Array<{ name?: string; served?: boolean }> } | undefined)
      ?.versions;
    const crdServes = versions?.some((v) => v.name === version && v.served === true) ?? false;
    if (!crdServes || !served[group]?.includes(version)) {
      missing.push(`${kind} (${group}/${version}) is not served yet`);
    }
  }
  // Helm labels what a release installs with app.kubernetes.io/instance=<release>.
  const deployments = await kube.list("apps/v1", "Deployment", {
    namespace: addon.namespace,
    labelSelector: `app.kubernetes.io/instance=${addon.release}`,
  });
  if (deployments.length === 0)
    missing.push(`no Deployment of release ${addon.release} in ${addon.namespace}`);
  for (const deployment of deployments) {
    if (!isTrue(deployment, "Available")) {
      missing.push(`Deployment ${addon.namespace}/${deployment.metadata.name} is not Available`);
    }
  }
  return missing;
}

/**
 * `spec.administrators` is an atomic list in Capsule's schema, so a server-side apply owns it whole: the entries
 * already there are read and applied together with the operator's, or they would be dropped.
 */
async function ensureAdministrator(kube: KubeClient, identity: string): Promise<Observation> {
  const ref = { apiVersion: "capsule.clastix.io/v1beta2", kind: "CapsuleConfiguration", name: "default" };
  const existing = await kube.get(ref);
  if (!existing) {
    // Capsule's chart creates it; creating it here would make Helm refuse the next upgrade (not its object).
    return { status: "False", reason: "Waiting", message: "CapsuleConfiguration default does not exist yet" };
  }
  const entry = administratorEntry(identity);
  const administrators = ((
    existing.spec as { administrators?: Array<{ kind: string; name: string }> } | undefined
  )?.administrators ?? []) as Array<{ kind: string; name: string }>;
  if (!administrators.some((a) => a.kind === entry.kind && a.name === entry.name)) {
    await kube.apply({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      // resourceVersion makes the apply conditional: an entry added meanwhile by someone else is not lost.
      metadata: { name: ref.name, resourceVersion: existing.metadata.resourceVersion },
      spec: { administrators: [...administrators, entry] },
    });
  }
  return {
    status: "True",
    reason: "Listed",
    message: `${entry.kind} ${entry.name} is a Capsule administrator`,
  };
}
