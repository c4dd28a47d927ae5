/**
 * Drift detection for tenants (DESIGN.md §6, §7 "namespace / object drift"): watches every kind the tenant
 * reconciler manages (labelled `app.kubernetes.io/managed-by=kubenova`) and the NovaTenants, and enqueues the
 * tenant an event concerns.
 *
 * The watch only says "look again". Whether a change was drift is decided by reconcileTenant, which compares the
 * live objects with the desired ones and, when the NovaTenant was `Deployed` for its current generation, reports
 * `Drifted` before repairing. Our own writes also come back as events; they reconcile to no change and no write,
 * so the watch needs neither to know who wrote nor to share a "drifted" set with the reconciler.
 */
import type { Logger } from "../../shared/logger.ts";
import { NOVA_API_VERSION } from "../desired.ts";
import type { KubeClient, WatchHandle } from "../kube/kube.ts";
import { MANAGED_KINDS, managedSelector, TENANT_LABEL } from "./tenant-objects.ts";

export interface TenantDriftWatchOptions {
  kube: KubeClient;
  /** Usually the tenant controller's `enqueue`. */
  enqueue(tenantName: string): void;
  /** Called when the NovaTenant is deleted (after its last `enqueue`). */
  deleted?(tenantName: string): void;
  logger: Logger;
}

/** Starts the watches; `stop()` ends them all. */
export async function watchTenantDrift(options: TenantDriftWatchOptions): Promise<WatchHandle> {
  const log = options.logger.child({ component: "tenant-drift" });
  const handles: WatchHandle[] = [];
  const stopAll = () => {
    for (const handle of handles) handle.stop();
  };
  try {
    // A NovaTenant's status writes (ours) do not change its generation: only spec changes, creation and
    // deletion are worth a pass.
    const generations = new Map<string, number | undefined>();
    handles.push(
      await options.kube.watch(NOVA_API_VERSION, "NovaTenant", {}, (type, object) => {
        const name = object.metadata.name;
        if (type === "DELETED") generations.delete(name);
        else if (type === "MODIFIED" && generations.get(name) === object.metadata.generation) return;
        else generations.set(name, object.metadata.generation);
        options.enqueue(name);
        if (type === "DELETED") options.deleted?.(name);
      }),
    );
    for (const managed of MANAGED_KINDS) {
      handles.push(
        await options.kube.watch(
          managed.apiVersion,
          managed.kind,
          { labelSelector: managedSelector() },
          (type, object) => {
            const tenant = object.metadata.labels?.[TENANT_LABEL];
            if (!tenant) return;
            // ADDED is the initial listing or our own create — except for Capsule Tenants, where it also finds
            // tenants whose NovaTenant vanished while the operator was down, so they get cleaned up.
            if (type === "ADDED" && managed.kind !== "Tenant") return;
            if (type !== "ADDED") {
              log.debug("managed object changed", {
                tenant,
                type,
                kind: object.kind,
                namespace: object.metadata.namespace,
                name: object.metadata.name,
              });
            }
            options.enqueue(tenant);
          },
        ),
      );
    }
  } catch (error) {
    stopAll();
    throw error;
  }
  return { stop: stopAll };
}
