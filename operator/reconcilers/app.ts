/**
 * The app reconciler (DESIGN.md §6, §9.6): makes a KubeVela `Application` written by operator/desired.ts true
 * and reports its status upward. The Application itself is the intent: labels `kubenova.io/tenant|project|app`,
 * annotations `app.oam.dev/publishVersion: r<revision>`, `kubenova.io/suspended` and, optionally,
 * `kubenova.io/rollback-to: <N>` (an in-cluster rollback to ApplicationRevision `<app>-v<N>`).
 *
 * Level-based and idempotent: every call reads the Application, writes only what differs, and reports only
 * what changed since the last report for that app. A second call with nothing changed makes no writes.
 *
 * Two ways to roll back, both supported:
 * - the Manager's rollback sends the old spec as a new desired revision; desired.ts applies it like any other
 *   change, and this reconciler only follows its phases;
 * - `kubenova.io/rollback-to: <N>` set in the cluster (kubectl, or the Manager later) copies
 *   `spec.application.spec` of ApplicationRevision `<app>-v<N>` back into the Application with a new
 *   publishVersion `r<revision>-rollback-<N>` and records `kubenova.io/rolled-back-to: <N>`, because KubeVela has
 *   no `vela rollback` (DESIGN.md §9.6).
 */
import type { Logger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { KubeApiError, type KubeClient, type KubeObject } from "../kube/kube.ts";
import type { ReconcileResult } from "./runtime.ts";

export const VELA_API_VERSION = "core.oam.dev/v1beta1";
export const PUBLISH_VERSION = "app.oam.dev/publishVersion";
export const SUSPENDED = "kubenova.io/suspended";
export const ROLLBACK_TO = "kubenova.io/rollback-to";
export const ROLLED_BACK_TO = "kubenova.io/rolled-back-to";
const LABEL_TENANT = "kubenova.io/tenant";
const LABEL_PROJECT = "kubenova.io/project";
const LABEL_APP = "kubenova.io/app";

/** How often an app that has not settled is looked at again when no watch event arrives. */
export const DEFAULT_APP_POLL_MS = 2_000;

/** KubeVela application phases (`status.status`, v1.11) that mean "still working on it". */
const VELA_WORKING = new Set([
  "starting",
  "rendering",
  "policyGenerating",
  "runningWorkflow",
  "workflowSuspending",
  "deleting",
]);
/** KubeVela phases that mean the workflow or the workloads failed. */
const VELA_FAILED = new Set(["workflowFailed", "workflowTerminated", "unhealthy"]);

export interface AppServiceStatus {
  name: string;
  healthy: boolean;
  message: string | null;
}

export interface AppStatusDetail {
  velaPhase: string | null;
  services: AppServiceStatus[];
  latestRevision: string | null;
  suspended: boolean;
}

/** What the reconciler remembers between calls: the last report per app and the rollbacks it performed. */
export interface AppMemory {
  /** `namespace/name` → the app key and the JSON of the last report sent for it. */
  reports: Map<string, { key: string; report: string }>;
  /**
   * `namespace/name` → the `rollback-to` value already carried out. The in-cluster record
   * (`kubenova.io/rolled-back-to`) is removed when desired.ts applies the next Manager revision (same field
   * manager); this keeps that from reading as a fresh request while the process lives.
   */
  rollbacks: Map<string, string>;
  /** `namespace/name` → a rollback the API server refused; reported as Error until the request changes. */
  refusedRollbacks: Map<string, { wanted: string; message: string }>;
}

export function createAppMemory(): AppMemory {
  return { reports: new Map(), rollbacks: new Map(), refusedRollbacks: new Map() };
}

export interface AppReconcileDeps {
  kube: KubeClient;
  logger: Logger;
  /** Sends a status report upward (the operator's outbox). */
  /** `traceparent`: the trace of the change this status answers (the Application's annotation), if any. */
  report: (status: StatusBody, traceparent?: string) => void;
  memory: AppMemory;
  /**
   * Whoever notices edits to managed objects decides `Drifted` (DESIGN.md §6); a string is the reason.
   * Called with the app key `tenant/project/app`.
   */
  drifted?: (key: string) => boolean | string;
  /** Requeue interval while the app has not settled; DEFAULT_APP_POLL_MS when omitted. */
  pollIntervalMs?: number;
}

type Phase = StatusBody["phase"];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `r7` and `r7-rollback-3` both reflect Manager revision 7. */
export function revisionOf(publishVersion: string | undefined): number | undefined {
  const match = /^r(\d+)(?:-|$)/.exec(publishVersion ?? "");
  return match ? Number(match[1]) : undefined;
}

function appKeyOf(app: KubeObject): string | null {
  const labels = app.metadata.labels ?? {};
  const tenant = labels[LABEL_TENANT];
  const project = labels[LABEL_PROJECT];
  const name = labels[LABEL_APP];
  return tenant && project && name ? `${tenant}/${project}/${name}` : null;
}

function refOf(app: { namespace: string; name: string }) {
  return { apiVersion: VELA_API_VERSION, kind: "Application", namespace: app.namespace, name: app.name };
}

/** The phase and detail KubeVela's status implies (DESIGN.md §6 phases; KubeVela's phase rides along). */
export function appPhase(app: KubeObject): { phase: Phase; detail: AppStatusDetail; message?: string } {
  const status = isRecord(app.status) ? app.status : {};
  const workflow = isRecord(status.workflow) ? status.workflow : {};
  const velaPhase = typeof status.status === "string" ? status.status : null;
  const services: AppServiceStatus[] = (Array.isArray(status.services) ? status.services : [])
    .filter(isRecord)
    .map((s) => ({
      name: String(s.name ?? ""),
      healthy: s.healthy === true,
      message: typeof s.message === "string" ? s.message : null,
    }));
  const latest = isRecord(status.latestRevision) ? status.latestRevision : {};
  const detail: AppStatusDetail = {
    velaPhase,
    services,
    latestRevision: typeof latest.name === "string" ? latest.name : null,
    suspended: workflow.suspend === true,
  };
  if (velaPhase === null) return { phase: "Pending", detail };
  if (VELA_FAILED.has(velaPhase)) {
    const reason = typeof workflow.message === "string" && workflow.message ? `: ${workflow.message}` : "";
    return { phase: "Error", detail, message: `KubeVela reports ${velaPhase}${reason}` };
  }
  // A status written for an older spec says nothing about the current one.
  const current = status.observedGeneration === app.metadata.generation;
  if (VELA_WORKING.has(velaPhase) || !current) return { phase: "Applying", detail };
  if (velaPhase === "running") {
    const unhealthy = services.filter((s) => !s.healthy);
    if (unhealthy.length === 0) return { phase: "Deployed", detail };
    return {
      phase: "Error",
      detail,
      message: `unhealthy: ${unhealthy.map((s) => (s.message ? `${s.name} (${s.message})` : s.name)).join(", ")}`,
    };
  }
  // A phase this KubeNova does not know yet: keep following it rather than claim success or failure.
  return { phase: "Applying", detail };
}

function refusal(error: unknown): KubeApiError | null {
  return error instanceof KubeApiError && !error.retryable ? error : null;
}

/**
 * Reconciles one Application (`ref` is its namespace and name). Throws on transient API failures so the
 * runtime retries with backoff; a write the API server refuses for good is reported as `Error` instead.
 */
export async function reconcileApp(
  ref: { namespace: string; name: string },
  deps: AppReconcileDeps,
): Promise<ReconcileResult> {
  const refKey = `${ref.namespace}/${ref.name}`;
  const pollMs = deps.pollIntervalMs ?? DEFAULT_APP_POLL_MS;
  let app = await deps.kube.get(refOf(ref));
  if (!app) {
    // The Manager learns deletions from its own intent; nothing more is reported for this app.
    deps.memory.reports.delete(refKey);
    deps.memory.rollbacks.delete(refKey);
    deps.memory.refusedRollbacks.delete(refKey);
    return {};
  }
  const key = appKeyOf(app);
  if (!key) return {}; // not a KubeNova app
  const log = deps.logger.child({ app: key, namespace: ref.namespace });
  const send = (body: StatusBody) => {
    const json = JSON.stringify(body);
    if (deps.memory.reports.get(refKey)?.report === json) return;
    deps.memory.reports.set(refKey, { key, report: json });
    deps.report(body, app?.metadata.annotations?.["kubenova.io/traceparent"]);
  };
  const base = (object: KubeObject) => {
    const revision = revisionOf(object.metadata.annotations?.[PUBLISH_VERSION]);
    return {
      objectKind: "app" as const,
      key,
      observedGeneration: object.metadata.generation ?? 0,
      ...(revision !== undefined ? { revision } : {}),
    };
  };
  const refused = (object: KubeObject, message: string): ReconcileResult => {
    send({
      ...base(object),
      phase: "Error",
      message: message.slice(0, 4000),
      detail: { ...appPhase(object).detail },
    });
    return {};
  };

  // Step 1: an in-cluster rollback request (DESIGN.md §9.6).
  const rollback = await rollBack(app, deps, refKey, log);
  if (rollback && "refused" in rollback) return refused(app, rollback.refused);
  if (rollback) app = rollback.app;

  // Step 2: suspend/resume — the workflow's suspend flag follows the annotation.
  try {
    const patched = await syncSuspend(app, deps);
    if (patched) app = patched;
  } catch (error) {
    const refusedError = refusal(error);
    if (!refusedError) throw error;
    log.warn("the API server refused the suspend flag", { status: refusedError.status, err: refusedError });
    return refused(app, refusedError.message);
  }

  // Step 3: status upward, only when it changed.
  const computed = appPhase(app);
  let phase = computed.phase;
  let message = computed.message;
  const drift = deps.drifted?.(key);
  if (drift && phase !== "Error") {
    phase = "Drifted";
    message = typeof drift === "string" ? drift : "a managed object was changed outside KubeNova";
  }
  send({
    ...base(app),
    phase,
    ...(message ? { message: message.slice(0, 4000) } : {}),
    detail: { ...computed.detail },
  });
  // A suspended workflow waits for a resume, which arrives as a change (watch event); no need to poll it.
  const settled =
    phase === "Deployed" || (computed.detail.suspended && computed.detail.velaPhase === "workflowSuspending");
  return settled ? {} : { requeueAfterMs: pollMs };
}

async function rollBack(
  app: KubeObject,
  deps: AppReconcileDeps,
  refKey: string,
  log: Logger,
): Promise<{ app: KubeObject } | { refused: string } | null> {
  const annotations = app.metadata.annotations ?? {};
  const wanted = annotations[ROLLBACK_TO];
  if (wanted === undefined) {
    // Removing the request re-arms it: the same N set again later is a new rollback.
    deps.memory.rollbacks.delete(refKey);
    deps.memory.refusedRollbacks.delete(refKey);
    return null;
  }
  if (annotations[ROLLED_BACK_TO] === wanted || deps.memory.rollbacks.get(refKey) === wanted) return null;
  // A refused request is not tried again (each try would be a write) until it changes.
  const failed = deps.memory.refusedRollbacks.get(refKey);
  if (failed?.wanted === wanted) return { refused: failed.message };
  deps.memory.refusedRollbacks.delete(refKey);
  try {
    const applied = await applyRevision(app, wanted, deps, log);
    deps.memory.rollbacks.set(refKey, wanted);
    return { app: applied };
  } catch (error) {
    const refusedError = refusal(error);
    if (!refusedError) throw error;
    log.warn("the rollback was refused", { status: refusedError.status, err: refusedError });
    deps.memory.refusedRollbacks.set(refKey, { wanted, message: refusedError.message });
    return { refused: refusedError.message };
  }
}

async function applyRevision(
  app: KubeObject,
  wanted: string,
  deps: AppReconcileDeps,
  log: Logger,
): Promise<KubeObject> {
  const annotations = app.metadata.annotations ?? {};
  const namespace = app.metadata.namespace ?? "";
  const revisionName = `${app.metadata.name}-v${wanted}`;
  const revision = await deps.kube.get({
    apiVersion: VELA_API_VERSION,
    kind: "ApplicationRevision",
    namespace,
    name: revisionName,
  });
  const application = isRecord(revision?.spec) ? revision.spec.application : undefined;
  const spec = isRecord(application) ? application.spec : undefined;
  if (!isRecord(spec)) {
    // Not retried on its own (a refusal is kept until the request changes): KubeVela writes a revision before
    // it runs it, so a missing one is a wrong request rather than a race.
    throw new KubeApiError(
      404,
      `${ROLLBACK_TO}: ApplicationRevision "${revisionName}" not found in "${namespace}"`,
    );
  }
  const managerRevision = revisionOf(annotations[PUBLISH_VERSION]) ?? 0;
  log.info("rolling back to an ApplicationRevision", { revision: revisionName });
  // The whole object KubeNova owns is applied (same field manager as desired.ts), else SSA would drop the labels
  // and annotations this apply left out. A new publishVersion makes KubeVela run the workflow again.
  return deps.kube.apply({
    apiVersion: VELA_API_VERSION,
    kind: "Application",
    metadata: {
      name: app.metadata.name,
      namespace,
      labels: { ...(app.metadata.labels ?? {}) },
      annotations: {
        [PUBLISH_VERSION]: `r${managerRevision}-rollback-${wanted}`,
        [SUSPENDED]: annotations[SUSPENDED] ?? "false",
        [ROLLED_BACK_TO]: wanted,
      },
    },
    spec,
  });
}

async function syncSuspend(app: KubeObject, deps: AppReconcileDeps): Promise<KubeObject | null> {
  const wanted = app.metadata.annotations?.[SUSPENDED] === "true";
  const status = isRecord(app.status) ? app.status : {};
  const workflow = isRecord(status.workflow) ? status.workflow : null;
  if ((workflow?.suspend === true) === wanted) return null;
  if (!workflow && !wanted) return null; // nothing started, nothing to resume
  // Before KubeVela has written a workflow status, the schema's required fields must come along; KubeVela keeps
  // `suspend` when it starts the workflow.
  const patch = workflow
    ? { workflow: { suspend: wanted } }
    : { workflow: { mode: "StepByStep-DAG", finished: false, terminated: false, suspend: wanted } };
  return deps.kube.patchStatus(
    {
      apiVersion: VELA_API_VERSION,
      kind: "Application",
      namespace: app.metadata.namespace ?? "",
      name: app.metadata.name,
    },
    patch,
  );
}

/** A reconcile function for `createController`, keyed `namespace/name`. */
export function createAppReconciler(
  deps: Omit<AppReconcileDeps, "memory"> & { memory?: AppMemory },
): (key: string) => Promise<ReconcileResult> {
  const full: AppReconcileDeps = { ...deps, memory: deps.memory ?? createAppMemory() };
  return (key) => {
    const slash = key.indexOf("/");
    return reconcileApp({ namespace: key.slice(0, slash), name: key.slice(slash + 1) }, full);
  };
}
