/**
 * Desired state into the cluster (DESIGN.md §3, §6): each `desired` change becomes a KubeNova object — a tenant
 * a `NovaTenant`, an app a KubeVela `Application` — written by server-side apply, so the cluster describes its
 * own intent and keeps it when the Manager is away. The reconcilers make those objects true; this layer only
 * records intent. The revision reached is kept in-cluster, in a ConfigMap.
 *
 * An object the API server refuses for good (a 4xx such as a schema violation) is reported as `Error` and does
 * not block later revisions; a transient failure (network, 409, 429, 5xx) throws, and the link retries.
 */
import type { Logger } from "../shared/logger.ts";
import type { BodyOf, DesiredChange } from "../shared/messages.ts";
import { KubeApiError, type KubeClient, type KubeObject } from "./kube/kube.ts";
import type { DesiredApplier, RevisionStore } from "./link/link.ts";

export const NOVA_API_VERSION = "kubenova.io/v1alpha1";
export const VELA_API_VERSION = "core.oam.dev/v1beta1";
export const STATE_CONFIGMAP = "kubenova-state";
export const MANAGED_LABEL = "app.kubernetes.io/managed-by";

type Report = (body: BodyOf<"status">) => void;

/** The revision store as a ConfigMap in the operator's namespace, cached in memory. */
export function configMapRevisionStore(kube: KubeClient, namespace: string): RevisionStore {
  let cached: number | null = null;
  return {
    async get() {
      if (cached !== null) return cached;
      const map = await kube.get({ apiVersion: "v1", kind: "ConfigMap", namespace, name: STATE_CONFIGMAP });
      const value = Number((map?.data as Record<string, string> | undefined)?.lastAppliedRevision ?? 0);
      cached = Number.isSafeInteger(value) && value >= 0 ? value : 0;
      return cached;
    },
    async set(revision) {
      await kube.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: STATE_CONFIGMAP, namespace, labels: { [MANAGED_LABEL]: "kubenova" } },
        data: { lastAppliedRevision: String(revision) },
      });
      cached = revision;
    },
  };
}

/** The apply's trace rides on the object, so the reconciler's status report continues it (DESIGN.md §8). */
export const TRACEPARENT_ANNOTATION = "kubenova.io/traceparent";

const traceAnnotation = (change: DesiredChange): Record<string, string> =>
  change.traceparent ? { [TRACEPARENT_ANNOTATION]: change.traceparent } : {};

function tenantObject(change: DesiredChange): KubeObject {
  return {
    apiVersion: NOVA_API_VERSION,
    kind: "NovaTenant",
    metadata: {
      name: change.key,
      labels: { [MANAGED_LABEL]: "kubenova", "kubenova.io/tenant": change.key },
      annotations: traceAnnotation(change),
    },
    spec: change.body ?? {},
  };
}

function appObject(change: DesiredChange): KubeObject {
  const body = change.body as {
    tenant: string;
    project: string;
    namespace: string;
    name: string;
    labels: Record<string, string>;
    revision: number;
    suspended: boolean;
    spec: Record<string, unknown>;
  };
  return {
    apiVersion: VELA_API_VERSION,
    kind: "Application",
    metadata: {
      name: body.name,
      namespace: body.namespace,
      labels: {
        ...body.labels,
        [MANAGED_LABEL]: "kubenova",
        "kubenova.io/tenant": body.tenant,
        "kubenova.io/project": body.project,
        "kubenova.io/app": body.name,
      },
      // DESIGN.md §9.6: a new publishVersion makes KubeVela run the workflow for this revision.
      annotations: {
        "app.oam.dev/publishVersion": `r${body.revision}`,
        "kubenova.io/suspended": String(body.suspended),
      },
    },
    spec: body.spec,
  };
}

function appRef(key: string) {
  const [tenant, project, name] = key.split("/");
  return { tenant: tenant ?? "", project: project ?? "", name: name ?? "" };
}

/** Revisions remembered to count repeats (`stats().repeatedRevisions`); the oldest are forgotten first. */
const SEEN_REVISIONS = 10_000;

/** How long an app waits for its project's namespace, which the tenant reconciler is creating meanwhile. */
const NAMESPACE_WAIT_MS = 5_000;

export interface DesiredApplierStats {
  applied: number;
  /** Revisions handed to the applier more than once (should stay 0: the link skips what it applied). */
  repeatedRevisions: number;
  refused: number;
}

export function createDesiredApplier(options: {
  kube: KubeClient;
  report: Report;
  logger: Logger;
}): DesiredApplier & { stats(): DesiredApplierStats } {
  const log = options.logger.child({ component: "desired" });
  /** The most recent revisions applied (a window, so it does not grow with every change the cluster ever got). */
  const seen = new Set<number>();
  const stats: DesiredApplierStats = { applied: 0, repeatedRevisions: 0, refused: 0 };

  /**
   * Apps arrive in revision order after their tenant, but the tenant reconciler creates the project namespace
   * asynchronously: a missing namespace is waited for briefly and then reported as retryable, never as a refusal.
   */
  async function applyInNamespace(object: KubeObject): Promise<KubeObject> {
    const namespace = object.metadata.namespace;
    const deadline = Date.now() + NAMESPACE_WAIT_MS;
    for (;;) {
      try {
        return await options.kube.apply(object);
      } catch (error) {
        const missingNamespace =
          error instanceof KubeApiError && error.status === 404 && namespace !== undefined;
        if (!missingNamespace) throw error;
        if (Date.now() >= deadline) {
          throw new KubeApiError(
            503,
            `namespace ${namespace} is not there yet (its tenant is still being set up)`,
          );
        }
        await Bun.sleep(200);
      }
    }
  }

  async function write(change: DesiredChange): Promise<KubeObject | null> {
    switch (change.kind) {
      case "tenant":
        if (change.op === "delete") {
          await options.kube.delete({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: change.key });
          return null;
        }
        return options.kube.apply(tenantObject(change));
      case "app": {
        if (change.op !== "delete") {
          const object = appObject(change);
          // A rollback request the app reconciler already handled must not replay when this apply (same field
          // manager) drops its bookkeeping annotation: the Manager's new revision supersedes the request.
          const live = await options.kube.get({
            apiVersion: VELA_API_VERSION,
            kind: "Application",
            name: object.metadata.name,
            ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
          });
          const requested = live?.metadata.annotations?.["kubenova.io/rollback-to"];
          if (requested !== undefined) {
            object.metadata.annotations = {
              ...object.metadata.annotations,
              "kubenova.io/rollback-to": requested,
              "kubenova.io/rolled-back-to": requested,
            };
          }
          return applyInNamespace(object);
        }
        // Delete whatever carries the app's labels (its namespace is not in the key).
        const ref = appRef(change.key);
        const existing = await options.kube.list(VELA_API_VERSION, "Application", {
          labelSelector: `kubenova.io/tenant=${ref.tenant},kubenova.io/project=${ref.project},kubenova.io/app=${ref.name}`,
        });
        for (const app of existing) {
          await options.kube.delete({
            apiVersion: VELA_API_VERSION,
            kind: "Application",
            name: app.metadata.name,
            ...(app.metadata.namespace ? { namespace: app.metadata.namespace } : {}),
          });
        }
        return null;
      }
      default:
        log.warn("ignoring a desired kind this operator does not know", {
          kind: change.kind,
          key: change.key,
        });
        return null;
    }
  }

  async function applyOne(change: DesiredChange): Promise<void> {
    if (seen.has(change.revision) && change.revision > 0) stats.repeatedRevisions++;
    seen.add(change.revision);
    if (seen.size > SEEN_REVISIONS) seen.delete(seen.values().next().value as number);
    const objectKind = change.kind === "app" ? "app" : "tenant";
    try {
      // Phases come from the reconcilers that make these objects true; this layer reports only refusals.
      await write(change);
      stats.applied++;
    } catch (error) {
      if (error instanceof KubeApiError && !error.retryable) {
        stats.refused++;
        log.warn("the API server refused a desired object", {
          key: change.key,
          status: error.status,
          err: error,
        });
        options.report({
          objectKind,
          key: change.key,
          observedGeneration: 0,
          phase: "Error",
          revision: change.revision,
          message: error.message.slice(0, 4000),
        });
        return;
      }
      throw error;
    }
  }

  return {
    apply: applyOne,
    async applySnapshot(changes) {
      for (const change of changes) await applyOne({ ...change, revision: 0 });
      // Everything KubeNova manages that the snapshot no longer lists is removed.
      const keepTenants = new Set(changes.filter((c) => c.kind === "tenant").map((c) => c.key));
      const keepApps = new Set(changes.filter((c) => c.kind === "app").map((c) => c.key));
      for (const tenant of await options.kube.list(NOVA_API_VERSION, "NovaTenant", {
        labelSelector: `${MANAGED_LABEL}=kubenova`,
      })) {
        if (!keepTenants.has(tenant.metadata.name)) {
          await options.kube.delete({
            apiVersion: NOVA_API_VERSION,
            kind: "NovaTenant",
            name: tenant.metadata.name,
          });
        }
      }
      for (const app of await options.kube.list(VELA_API_VERSION, "Application", {
        labelSelector: `${MANAGED_LABEL}=kubenova`,
      })) {
        const labels = app.metadata.labels ?? {};
        const key = `${labels["kubenova.io/tenant"]}/${labels["kubenova.io/project"]}/${labels["kubenova.io/app"]}`;
        if (!keepApps.has(key)) {
          await options.kube.delete({
            apiVersion: VELA_API_VERSION,
            kind: "Application",
            name: app.metadata.name,
            ...(app.metadata.namespace ? { namespace: app.metadata.namespace } : {}),
          });
        }
      }
    },
    stats: () => ({ ...stats }),
  };
}
