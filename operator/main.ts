/**
 * @module operator — `kubenova operator`: enrols (or loads its identity), connects outbound to the Manager over
 * mutual TLS, records desired state in its cluster, keeps reports in its outbox until acknowledged, renews its
 * certificate, and serves /healthz, /readyz and /stats. Dependencies are built here once and passed in.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { OPERATOR_NAME } from "../manager/install/names.ts";
import type { OperatorEnv } from "../shared/operator-config.ts";
import type { Logger } from "../shared/logger.ts";
import type { BodyOf } from "../shared/messages.ts";
import { KUBENOVA_VERSION } from "../shared/version.ts";
import { detectCapabilities } from "./capabilities.ts";
import { createCommandHandler } from "./commands.ts";
import { configMapRevisionStore, createDesiredApplier } from "./desired.ts";
import { createBurstCollector } from "./gc.ts";
import { createHelm } from "./helm.ts";
import { loadOrEnroll, type OperatorIdentity, scheduleRenewal } from "./identity.ts";
import { createKubeClient } from "./kube/http-client.ts";
import { KubeApiError } from "./kube/kube.ts";
import { createOperatorLink, type OperatorLink } from "./link/link.ts";
import { openOutbox } from "./link/outbox.ts";
import { createOperatorMetrics } from "./metrics.ts";
import { reconcileAddons } from "./reconcilers/addons.ts";
import { createAppReconciler } from "./reconcilers/app.ts";
import { createController, type ReconcileOutcome } from "./reconcilers/runtime.ts";
import { reconcileTenant } from "./reconcilers/tenant.ts";
import { createUsageCollector } from "./usage.ts";
import { startWatches } from "./watches.ts";

/** A full GC once this many reconciles have run and the controllers have been quiet this long (operator/gc.ts). */
const BURST_RECONCILES = 50;
const BURST_QUIET_MS = 2_000;

export interface RunningOperator {
  link: OperatorLink;
  healthUrl: string;
  stop(): Promise<void>;
}

async function bootstrapToken(config: OperatorEnv): Promise<string | null> {
  if (config.NOVA_BOOTSTRAP_TOKEN) return config.NOVA_BOOTSTRAP_TOKEN.trim();
  if (config.NOVA_BOOTSTRAP_TOKEN_FILE) {
    try {
      return (await readFile(config.NOVA_BOOTSTRAP_TOKEN_FILE, "utf8")).trim() || null;
    } catch {
      return null;
    }
  }
  return null;
}

export async function runOperator(config: OperatorEnv, logger: Logger): Promise<RunningOperator> {
  const log = logger.child({ cluster: config.NOVA_CLUSTER_ID });
  await mkdir(config.NOVA_DATA_DIR, { recursive: true, mode: 0o700 });
  const kube = createKubeClient(config.KUBECONFIG ? { kubeconfigPath: config.KUBECONFIG } : {});
  let identity: OperatorIdentity = await loadOrEnroll({
    dir: join(config.NOVA_DATA_DIR, "identity"),
    managerUrl: config.NOVA_MANAGER_URL,
    clusterId: config.NOVA_CLUSTER_ID,
    bootstrapToken: await bootstrapToken(config),
    logger: log,
  });
  const outbox = openOutbox({
    path: join(config.NOVA_DATA_DIR, "outbox.db"),
    maxRows: config.NOVA_OUTBOX_MAX_ROWS,
  });
  const metrics = createOperatorMetrics();
  const operatorIdentity = `system:serviceaccount:${config.POD_NAMESPACE}:${OPERATOR_NAME}`;
  let link: OperatorLink | null = null;
  const report = (body: BodyOf<"status">, traceparent?: string) => {
    metrics.event("status_report");
    link?.report("status", body, {
      coalesceKey: `${body.objectKind}/${body.key}`,
      ...(traceparent ? { traceparent } : {}),
    });
  };
  const applier = createDesiredApplier({ kube, logger: log, report });
  const collector = createBurstCollector({ minWork: BURST_RECONCILES, quietMs: BURST_QUIET_MS });
  const observe = (controller: string, seconds: number, outcome: ReconcileOutcome) => {
    metrics.observeReconcile(controller, seconds, outcome);
    collector.worked();
  };
  // Failures talking to the cluster's API server count as adapter errors, whatever controller met them.
  const onError = (_key: string, error: unknown) => {
    if (error instanceof KubeApiError || (error as { cause?: unknown })?.cause instanceof KubeApiError) {
      metrics.adapterError("kubernetes");
    }
  };
  const tenants = createController({
    name: "tenant",
    logger: log,
    observe,
    onError,
    reconcile: (name) => reconcileTenant(name, { kube, logger: log, operatorIdentity, report }),
  });
  const apps = createController({
    name: "app",
    logger: log,
    observe,
    onError,
    reconcile: createAppReconciler({ kube, logger: log, report }),
  });
  const addons = createController({
    name: "addons",
    logger: log,
    observe,
    onError,
    reconcile: (name) =>
      reconcileAddons(name, {
        kube,
        helm: createHelm({ logger: log }),
        logger: log,
        operatorIdentity,
        report,
      }),
  });
  const usage = createUsageCollector({
    kube,
    logger: log,
    report: (bodies) => {
      for (const _ of bodies) metrics.event("usage_report");
      link?.reportMany(
        "usage",
        bodies.map((body) => ({ body })),
      );
    },
  });
  const watches = startWatches({ kube, logger: log, tenants, apps, addons });
  link = createOperatorLink({
    clusterId: config.NOVA_CLUSTER_ID,
    brokerUrl: identity.brokerUrl,
    tls: () => ({ caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem }),
    outbox,
    applier,
    revisions: configMapRevisionStore(kube, config.POD_NAMESPACE),
    commands: createCommandHandler({
      kube,
      logger: log,
      collectUsageNow: () => usage.collectNow(),
      resync: async () => watches.resync(),
    }),
    hello: async () => ({
      operatorVersion: KUBENOVA_VERSION,
      kubernetesVersion: await kube.kubernetesVersion(),
      capabilities: (await detectCapabilities(kube).catch(() => null))?.groups ?? {},
    }),
    logger: log,
    heartbeatIntervalMs: config.NOVA_HEARTBEAT_INTERVAL_MS,
    resendAfterMs: config.NOVA_RESEND_AFTER_MS,
  });
  metrics.setSources({ outbox: () => outbox.stats(), connected: () => link?.stats().connected ?? false });
  const renewal = scheduleRenewal({
    dir: join(config.NOVA_DATA_DIR, "identity"),
    managerUrl: config.NOVA_MANAGER_URL,
    current: () => identity,
    onRenewed: (next) => {
      identity = next; // the next connection presents it; the broker ends the old session at its expiry
    },
    logger: log,
  });
  const running = link;
  running.start();
  usage.start();
  const health = Bun.serve({
    hostname: config.NOVA_HEALTH_HOST,
    port: config.NOVA_HEALTH_PORT,
    fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === "/healthz")
        return Response.json({ status: "ok", version: KUBENOVA_VERSION, cluster: config.NOVA_CLUSTER_ID });
      if (path === "/readyz") {
        const connected = running.stats().connected;
        return Response.json(
          { status: connected ? "ready" : "not_ready" },
          { status: connected ? 200 : 503 },
        );
      }
      if (path === "/stats") {
        return Response.json({
          link: running.stats(),
          outbox: outbox.stats(),
          desired: applier.stats(),
          controllers: { tenant: tenants.stats(), app: apps.stats(), addons: addons.stats() },
        });
      }
      if (path === "/metrics") {
        return metrics
          .render()
          .then((body) => new Response(body, { headers: { "Content-Type": metrics.contentType } }));
      }
      return new Response("not found", { status: 404 });
    },
  });
  const healthUrl = `http://${config.NOVA_HEALTH_HOST === "0.0.0.0" ? "127.0.0.1" : config.NOVA_HEALTH_HOST}:${health.port}`;
  log.info("operator running", {
    manager: config.NOVA_MANAGER_URL,
    broker: identity.brokerUrl,
    health: healthUrl,
  });
  return {
    link: running,
    healthUrl,
    async stop() {
      renewal.stop();
      collector.stop();
      usage.stop();
      watches.stop();
      tenants.stop();
      apps.stop();
      addons.stop();
      await running.stop();
      await health.stop();
      outbox.close();
      log.info("operator stopped");
    },
  };
}
