/**
 * SIMULATIONS — stand-ins for the Capsule and KubeVela controllers, off unless a test switches them on.
 * They write status as those controllers would (schema-valid for the real CRDs), nothing more: no admission
 * webhooks, no rendering of components into Deployments, no real health checks.
 *
 * - Capsule: a Namespace whose ownerReferences point at a capsule.clastix.io Tenant is listed in that
 *   Tenant's `status.namespaces`, with `status.size` and `status.state` (`Active`, or `Cordoned` when
 *   `spec.cordoned`) and a `Ready` condition.
 * - KubeVela: on every spec change (new `metadata.generation`) an Application gets an ApplicationRevision
 *   `<app>-v<N>` holding the whole app, then `status.status` moves `rendering` → `runningWorkflow` →
 *   `running` with one healthy `status.services[]` entry per component and `status.observedGeneration`;
 *   while `status.workflow.suspend` is true it stays (or moves to) `workflowSuspending`.
 */

import type { ApiCore } from "./api.ts";
import type { KubeObject, StoredEvent } from "./store.ts";

export interface SimulationOptions {
  capsule?: boolean;
  kubevela?: boolean;
  /** Delay before each simulated controller step; a few ms by default. */
  stepDelayMs?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

const TENANTS = "capsule.clastix.io/tenants";
const APPS = "core.oam.dev/applications";

/** Starts the requested simulations; returns a function that stops them. */
export function startSimulations(core: ApiCore, options: SimulationOptions): () => void {
  const delay = options.stepDelayMs ?? 5;
  const stops: (() => void)[] = [];
  if (options.capsule) {
    const tenantsOf = (ns: KubeObject | undefined): string[] =>
      (ns?.metadata.ownerReferences ?? [])
        .filter((r) => r.kind === "Tenant" && r.apiVersion.startsWith("capsule.clastix.io/"))
        .map((r) => r.name);
    const onNamespace = (e: StoredEvent) => {
      const names = new Set([...tenantsOf(e.object), ...tenantsOf(e.previous)]);
      for (const name of names) core.schedule(() => reconcileTenant(core, name), delay);
    };
    const onTenant = (e: StoredEvent) => {
      if (e.type !== "DELETED") core.schedule(() => reconcileTenant(core, e.object.metadata.name), delay);
    };
    stops.push(core.store.subscribe({ table: "/namespaces", onEvent: onNamespace }));
    stops.push(core.store.subscribe({ table: TENANTS, onEvent: onTenant }));
  }
  if (options.kubevela) {
    const onApp = (e: StoredEvent) => {
      if (e.type === "DELETED") return;
      const { namespace, name } = e.object.metadata;
      core.schedule(() => stepApplication(core, namespace ?? "", name), delay);
    };
    stops.push(core.store.subscribe({ table: APPS, onEvent: onApp }));
  }
  return () => {
    for (const stop of stops) stop();
  };
}

function reconcileTenant(core: ApiCore, name: string): void {
  const tenant = core.store.get(TENANTS, undefined, name);
  if (!tenant || tenant.metadata.deletionTimestamp) return;
  const namespaces = core.store
    .list("/namespaces")
    .filter((ns) => ns.metadata.ownerReferences?.some((r) => r.uid === tenant.metadata.uid))
    .map((ns) => ns.metadata.name)
    .sort();
  const spec = isObject(tenant.spec) ? tenant.spec : {};
  const old = isObject(tenant.status) ? tenant.status : {};
  const status: Record<string, unknown> = {
    ...old,
    namespaces,
    size: namespaces.length,
    state: spec.cordoned === true ? "Cordoned" : "Active",
    observedGeneration: tenant.metadata.generation ?? 1,
  };
  if (!Array.isArray(old.conditions) || old.conditions.length === 0) {
    status.conditions = [
      {
        type: "Ready",
        status: "True",
        reason: "Succeeded",
        message: "reconciled (simulated Capsule controller)",
        lastTransitionTime: timestamp(),
        observedGeneration: tenant.metadata.generation ?? 1,
      },
    ];
  }
  core.putDirect({ ...tenant, status });
}

function stepApplication(core: ApiCore, namespace: string, name: string): void {
  const app = core.store.get(APPS, namespace, name);
  if (!app || app.metadata.deletionTimestamp) return;
  const generation = app.metadata.generation ?? 1;
  const st = isObject(app.status) ? app.status : {};
  const workflow = isObject(st.workflow) ? st.workflow : {};
  const suspended = workflow.suspend === true;
  const latest = isObject(st.latestRevision) ? st.latestRevision : {};
  const spec = isObject(app.spec) ? app.spec : {};
  const components = Array.isArray(spec.components) ? (spec.components as Record<string, unknown>[]) : [];
  const baseWorkflow = {
    mode: "StepByStep-DAG",
    finished: false,
    suspend: suspended,
    terminated: false,
    ...workflow,
  };
  let next: Record<string, unknown> | undefined;
  if (st.observedGeneration !== generation) {
    const revision = (typeof latest.revision === "number" ? latest.revision : 0) + 1;
    const revisionName = `${name}-v${revision}`;
    const { status: _status, ...appCopy } = app;
    core.putDirect({
      apiVersion: "core.oam.dev/v1beta1",
      kind: "ApplicationRevision",
      metadata: {
        name: revisionName,
        namespace,
        labels: { "app.oam.dev/name": name, "app.oam.dev/revision": revisionName },
        ownerReferences: [
          {
            apiVersion: app.apiVersion,
            kind: "Application",
            name,
            uid: app.metadata.uid ?? "",
            controller: true,
          },
        ],
      },
      spec: {
        application: {
          ...appCopy,
          metadata: { name, namespace, generation, labels: app.metadata.labels ?? {} },
          status: {},
        },
      },
    });
    next = {
      ...st,
      status: "rendering",
      observedGeneration: generation,
      latestRevision: { name: revisionName, revision },
      services: [],
      workflow: { ...baseWorkflow, appRevision: revisionName, finished: false },
    };
  } else if (st.status === "rendering") {
    next = { ...st, status: "runningWorkflow", workflow: { ...baseWorkflow, startTime: timestamp() } };
  } else if (suspended) {
    if (st.status !== "workflowSuspending")
      next = { ...st, status: "workflowSuspending", workflow: baseWorkflow };
  } else if (st.status === "runningWorkflow" || st.status === "workflowSuspending") {
    next = {
      ...st,
      status: "running",
      services: components.map((c) => ({
        name: String(c.name ?? ""),
        namespace,
        healthy: true,
        message: "Ready:1/1 (simulated KubeVela controller)",
        workloadDefinition: { apiVersion: "apps/v1", kind: "Deployment" },
      })),
      workflow: { ...baseWorkflow, finished: true, endTime: timestamp() },
    };
  }
  if (next) core.putDirect({ ...app, status: next });
}
