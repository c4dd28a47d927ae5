/**
 * The tenant reconciler (DESIGN.md §6): makes one NovaTenant true in the cluster — Capsule Tenant, namespaces,
 * ServiceAccounts, RBAC, quotas, limit ranges, default NetworkPolicy (built in tenant-objects.ts) — and removes
 * what it made once the NovaTenant is gone.
 *
 * Level-based and idempotent: each pass lists what it manages (by label), compares it field by field with the
 * desired objects and server-side applies (field manager `kubenova`) only what differs, in order. A pass with
 * nothing to do makes no write at all, not even a no-op apply or status patch.
 *
 * Drift (DESIGN.md §6, §7): when the NovaTenant's own status says `Deployed` for the current generation and the
 * live objects no longer match, someone else changed them. The reconciler then writes and reports `Drifted`
 * before repairing and `Deployed` after. Keeping that judgement here, against the persisted status, means it
 * survives operator restarts and needs no shared memory with the watch in drift.ts, which only enqueues.
 */
import type { Logger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { NOVA_API_VERSION } from "../desired.ts";
import { KubeApiError, type KubeClient, type KubeObject, type KubeRef } from "../kube/kube.ts";
import { type ReconcileResult, TerminalError } from "./runtime.ts";
import {
  CAPSULE_API_VERSION,
  capsuleTenant,
  contains,
  MANAGED_KINDS,
  managedSelector,
  namespacedObjects,
  namespaceObject,
  readTenantSpec,
  tenantNamespaces,
} from "./tenant-objects.ts";

export interface TenantReconcilerDeps {
  kube: KubeClient;
  logger: Logger;
  /**
   * The operator's Kubernetes user (`system:serviceaccount:<ns>:<sa>`). Logged with each pass; the operator
   * writes namespace ownerReferences itself, so it need not be a Capsule administrator (DESIGN.md §9.4).
   */
  operatorIdentity: string;
  /** Sends a status report upward; called only when phase, generation or message changed. */
  /** `traceparent`: the trace of the change this status answers (the object's annotation), if any. */
  report(status: StatusBody, traceparent?: string): void;
}

type Phase = StatusBody["phase"];

/** While Capsule has not marked the Tenant Active, look again after this long (its status change also enqueues). */
const CAPSULE_PENDING_REQUEUE_MS = 2000;

const keyOf = (o: { kind: string; metadata: { name: string; namespace?: string } }) =>
  `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

const refOf = (o: KubeObject): KubeRef => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
  ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
});

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Everything labelled as this tenant's (all managed kinds, cluster-wide), keyed by kind/namespace/name. */
async function listManaged(kube: KubeClient, tenant: string): Promise<Map<string, KubeObject>> {
  const lists = await Promise.all(
    MANAGED_KINDS.map((k) => kube.list(k.apiVersion, k.kind, { labelSelector: managedSelector(tenant) })),
  );
  const live = new Map<string, KubeObject>();
  for (const object of lists.flat()) live.set(keyOf(object), object);
  return live;
}

interface NovaStatus {
  phase?: Phase;
  observedGeneration?: number;
  namespaces?: string[];
  conditions?: Array<Record<string, unknown>>;
}

const DEFAULT_MESSAGES: Record<Phase, string> = {
  Pending: "waiting to be applied",
  Applying: "applying the tenant's objects",
  Deployed: "all objects applied",
  Drifted: "managed objects were changed outside KubeNova; repairing",
  Error: "the API server refused an object",
};

/**
 * Writes the NovaTenant status and reports upward, each only when something changed. The previously written
 * status is the memory of what was last reported, so nothing is re-sent after a restart.
 */
function statusWriter(
  name: string,
  generation: number,
  initial: NovaStatus,
  namespaces: string[],
  deps: TenantReconcilerDeps,
  traceparent?: string,
) {
  let current = initial;
  const readyOf = (s: NovaStatus) => s.conditions?.find((c) => c.type === "Ready");
  return {
    current: () => current,
    async write(phase: Phase, message?: string, detail?: Record<string, unknown>): Promise<void> {
      const previousReady = readyOf(current);
      const readyStatus = phase === "Deployed" ? "True" : "False";
      const conditionMessage = message ?? DEFAULT_MESSAGES[phase];
      const next: NovaStatus = {
        phase,
        observedGeneration: generation,
        namespaces,
        conditions: [
          {
            type: "Ready",
            status: readyStatus,
            reason: phase,
            message: conditionMessage,
            // Only a change of the condition's status moves its transition time (Kubernetes API conventions).
            lastTransitionTime:
              previousReady?.status === readyStatus && typeof previousReady.lastTransitionTime === "string"
                ? previousReady.lastTransitionTime
                : new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            observedGeneration: generation,
          },
        ],
      };
      if (contains(current, next)) return;
      await deps.kube.patchStatus(
        { apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name },
        next as Record<string, unknown>,
      );
      const changed =
        current.phase !== phase ||
        current.observedGeneration !== generation ||
        previousReady?.message !== conditionMessage;
      current = next;
      if (changed) {
        deps.report(
          {
            objectKind: "tenant",
            key: name,
            observedGeneration: generation,
            phase,
            ...(message !== undefined ? { message: message.slice(0, 4000) } : {}),
            ...(detail ? { detail } : {}),
          },
          traceparent,
        );
      }
    },
  };
}

/**
 * Reconciles the NovaTenant `name`. Non-retryable API errors (e.g. a 422 from the Capsule Tenant schema) end as
 * phase `Error` with the server's message and a `TerminalError`; retryable ones are rethrown for the runtime's
 * backoff.
 */
export async function reconcileTenant(name: string, deps: TenantReconcilerDeps): Promise<ReconcileResult> {
  const log = deps.logger.child({ tenant: name, operator: deps.operatorIdentity });
  const nova = await deps.kube.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name });
  if (!nova || nova.metadata.deletionTimestamp) return removeTenant(name, deps, log);

  const generation = nova.metadata.generation ?? 0;
  const spec = readTenantSpec(nova.spec);
  const namespaces = tenantNamespaces(name, spec);
  const previous: NovaStatus = isRecord(nova.status) ? (nova.status as NovaStatus) : {};
  const status = statusWriter(
    name,
    generation,
    previous,
    namespaces.map((ns) => ns.name),
    deps,
    nova.metadata.annotations?.["kubenova.io/traceparent"],
  );

  try {
    const live = await listManaged(deps.kube, name);
    const tenantObject = capsuleTenant(name, spec);
    let liveTenant = live.get(keyOf(tenantObject));
    const inner = namespacedObjects(name, spec);
    // Namespaces point at the live Tenant's uid, known only once it exists: rebuilt after it is applied.
    const build = (uid: string) => [
      tenantObject,
      ...namespaces.map((ns) => namespaceObject(name, ns, uid)),
      ...inner,
    ];
    const planned = build(String(liveTenant?.metadata.uid ?? ""));
    const wanted = new Set(planned.map(keyOf));
    const stale = staleObjects(live, wanted, new Set(namespaces.map((ns) => ns.name)));
    const pending = planned.filter((o) => !contains(live.get(keyOf(o)), o));

    if (pending.length === 0 && stale.length === 0) return finish(status, liveTenant);

    const wasDeployed = previous.phase === "Deployed" && previous.observedGeneration === generation;
    if (wasDeployed) {
      log.info("managed objects drifted; repairing", {
        changed: pending.map(keyOf),
        unexpected: stale.map(keyOf),
      });
      await status.write("Drifted", undefined, {
        changed: pending.map(keyOf).slice(0, 50),
        unexpected: stale.map(keyOf).slice(0, 50),
      });
    }

    let applied = 0;
    for (const object of planned) {
      const desired =
        object.kind === "Namespace" && liveTenant
          ? namespaceObject(
              name,
              namespaces.find((ns) => ns.name === object.metadata.name)!,
              String(liveTenant.metadata.uid),
            )
          : object;
      if (contains(live.get(keyOf(desired)), desired)) continue;
      const result = await deps.kube.apply(desired);
      applied++;
      if (desired.kind === "Tenant") liveTenant = result;
    }
    for (const object of stale) {
      // Removed projects' namespaces go with everything inside them (DESIGN.md §6).
      await deps.kube.delete(refOf(object));
    }
    log.debug("tenant applied", { applied, deleted: stale.length });
    return finish(status, liveTenant, { applied, deleted: stale.length });
  } catch (error) {
    if (error instanceof KubeApiError && !error.retryable) {
      log.warn("the API server refused a tenant object", { status: error.status, err: error });
      await status.write("Error", error.message);
      throw new TerminalError(error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * Objects labelled as this tenant's that the spec no longer wants: whole namespaces (not already terminating),
 * other Capsule Tenants, and objects inside namespaces that stay (e.g. a LimitRange the plan dropped). Objects
 * inside namespaces being removed are left to namespace deletion.
 */
function staleObjects(
  live: Map<string, KubeObject>,
  wanted: Set<string>,
  keptNamespaces: Set<string>,
): KubeObject[] {
  const out: KubeObject[] = [];
  for (const [key, object] of live) {
    if (wanted.has(key) || object.metadata.deletionTimestamp) continue;
    const ns = object.metadata.namespace;
    if (ns && !keptNamespaces.has(ns)) continue;
    out.push(object);
  }
  // Namespaces last, so nothing is deleted twice through them.
  return out.sort((a, b) => Number(a.kind === "Namespace") - Number(b.kind === "Namespace"));
}

async function finish(
  status: ReturnType<typeof statusWriter>,
  liveTenant: KubeObject | undefined,
  detail?: { applied: number; deleted: number },
): Promise<ReconcileResult> {
  // Deployed needs Capsule's agreement when a Capsule controller reports at all (status.state).
  const state = isRecord(liveTenant?.status) ? liveTenant.status.state : undefined;
  if (state !== undefined && state !== "Active") {
    await status.write("Applying", `the Capsule Tenant is ${String(state)}`, detail);
    return { requeueAfterMs: CAPSULE_PENDING_REQUEUE_MS };
  }
  await status.write("Deployed", undefined, detail);
  return {};
}

/**
 * The NovaTenant is gone (or going): delete what carries this tenant's labels and nothing else — the Capsule
 * Tenant, its namespaces (with their contents) and labelled objects left elsewhere. Reports once, when something
 * was removed. This reconciler creates no cluster-scoped RBAC, so there is none to remove.
 */
async function removeTenant(name: string, deps: TenantReconcilerDeps, log: Logger): Promise<ReconcileResult> {
  const live = await listManaged(deps.kube, name);
  const doomed = new Set(
    [...live.values()].filter((o) => o.kind === "Namespace").map((o) => o.metadata.name),
  );
  let deleted = 0;
  for (const object of live.values()) {
    if (object.metadata.deletionTimestamp) continue;
    if (object.metadata.namespace && doomed.has(object.metadata.namespace)) continue;
    if (object.kind === "Tenant" && object.apiVersion !== CAPSULE_API_VERSION) continue;
    if (await deps.kube.delete(refOf(object))) deleted++;
  }
  if (deleted > 0) {
    log.info("tenant removed", { deleted });
    deps.report({
      objectKind: "tenant",
      key: name,
      observedGeneration: 0,
      phase: "Deployed",
      message: "removed from this cluster",
      detail: { removed: true, objects: deleted },
    });
  }
  return {};
}
