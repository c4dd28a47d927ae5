/**
 * The operator's watches: NovaTenants and everything a tenant owns (drift), KubeNova-managed Applications, and
 * NovaClusterConfigs. A kind the cluster does not serve yet (KubeVela or Capsule before their add-ons are ready)
 * is retried until it is, so an operator starts on a bare cluster and catches up.
 */
import type { Logger } from "../shared/logger.ts";
import type { KubeClient, WatchHandle } from "./kube/kube.ts";
import { VELA_API_VERSION } from "./reconcilers/app.ts";
import { watchTenantDrift } from "./reconcilers/drift.ts";
import type { Controller } from "./reconcilers/runtime.ts";

const RETRY_MS = 10_000;

export interface OperatorWatches {
  /** Re-enqueues everything known (the `resync` command). */
  resync(): void;
  stop(): void;
}

export function startWatches(options: {
  kube: KubeClient;
  logger: Logger;
  tenants: Controller;
  apps: Controller;
  addons: Controller;
}): OperatorWatches {
  const log = options.logger.child({ component: "watches" });
  const handles: WatchHandle[] = [];
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  const known = { tenants: new Set<string>(), apps: new Set<string>(), configs: new Set<string>() };
  let stopped = false;

  const keep = (name: string, open: () => Promise<WatchHandle>) => {
    const attempt = () => {
      if (stopped) return;
      open().then(
        (handle) => {
          if (stopped) handle.stop();
          else handles.push(handle);
        },
        (error: unknown) => {
          log.info("watch not available yet; retrying", { watch: name, err: error as Error });
          timers.push(setTimeout(attempt, RETRY_MS));
        },
      );
    };
    attempt();
  };

  keep("tenants", () =>
    watchTenantDrift({
      kube: options.kube,
      logger: options.logger,
      enqueue: (tenant) => {
        known.tenants.add(tenant);
        options.tenants.enqueue(tenant);
      },
      // Its removal is the controller's to finish (with retries); a resync need not look for it again.
      deleted: (tenant) => known.tenants.delete(tenant),
    }),
  );
  keep("apps", () =>
    options.kube.watch(
      VELA_API_VERSION,
      "Application",
      { labelSelector: "app.kubernetes.io/managed-by=kubenova" },
      (type, app) => {
        const key = `${app.metadata.namespace}/${app.metadata.name}`;
        if (type === "DELETED") known.apps.delete(key);
        else known.apps.add(key);
        options.apps.enqueue(key); // DELETED too: the reconciler forgets it
      },
    ),
  );
  keep("clusterconfigs", () =>
    options.kube.watch("kubenova.io/v1alpha1", "NovaClusterConfig", {}, (type, config) => {
      if (type === "DELETED") {
        known.configs.delete(config.metadata.name);
        return;
      }
      known.configs.add(config.metadata.name);
      options.addons.enqueue(config.metadata.name);
    }),
  );

  return {
    resync() {
      for (const tenant of known.tenants) options.tenants.enqueue(tenant);
      for (const app of known.apps) options.apps.enqueue(app);
      for (const config of known.configs) options.addons.enqueue(config);
    },
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      for (const handle of handles) handle.stop();
    },
  };
}
