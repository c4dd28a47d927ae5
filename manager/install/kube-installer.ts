/**
 * The one place the Manager talks to a cluster's Kubernetes API (DESIGN.md §1, §4), and the only Manager file that
 * imports @kubernetes/client-node: installing the operator once from the kubeconfig the user handed over. The
 * kubeconfig is decrypted only for this call; the outcome is recorded on the cluster (`bootstrapping`, or `error`
 * with `statusReason`) and audited. The user may delete the kubeconfig afterwards (PATCH `kubeconfig: null`).
 */
import * as k8s from "@kubernetes/client-node";
import { errors, KubeNovaError } from "../../shared/errors.ts";
import { kubeconfigAad } from "../services/clusters.ts";
import { type Actor, audit, nowIso } from "../services/context.ts";
import { type EnrolmentServiceDeps, issueBootstrapToken, operatorManifests } from "../services/enrolment.ts";
import type { ClusterRow } from "../store/store.ts";
import type { KubeManifest } from "./manifests.ts";

export const FIELD_MANAGER = "kubenova";
const DEFAULT_TIMEOUT_MS = 60_000;
const CRD_ESTABLISHED_TIMEOUT_MS = 15_000;

export interface AppliedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface InstallResult {
  cluster: ClusterRow;
  applied: AppliedObject[];
}

const refOf = (m: KubeManifest): AppliedObject => ({
  apiVersion: m.apiVersion,
  kind: m.kind,
  name: m.metadata.name,
  ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}),
});

const describeRef = (ref: AppliedObject) =>
  `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;

/** A short, secret-free reason from a client-node or network error. */
function reasonOf(error: unknown): string {
  const e = error as { code?: unknown; body?: unknown; message?: unknown; cause?: { message?: unknown } };
  if (typeof e.code === "number") {
    let message = "";
    try {
      const body = typeof e.body === "string" ? (JSON.parse(e.body) as { message?: string }) : e.body;
      message = (body as { message?: string } | undefined)?.message ?? "";
    } catch {
      message = String(e.body ?? "");
    }
    return `HTTP ${e.code}${message ? `: ${message}` : ""}`;
  }
  const cause = typeof e.cause?.message === "string" ? ` (${e.cause.message})` : "";
  return `${typeof e.message === "string" ? e.message : String(error)}${cause}`.slice(0, 500);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * client-node serializes the kinds it knows from its typed models: a plain object's `enum`, `default` and
 * `x-kubernetes-*` schema keys (and other renamed fields) are silently dropped. Loading the manifest the way
 * client-node loads YAML gives it the typed shape, so a CRD arrives with its whole schema.
 */
export function toClientObject(manifest: { apiVersion: string; kind: string }): k8s.KubernetesObject {
  return k8s.loadYaml<k8s.KubernetesObject>(JSON.stringify(manifest));
}

async function waitForEstablished(objects: k8s.KubernetesObjectApi, name: string): Promise<void> {
  const deadline = Date.now() + CRD_ESTABLISHED_TIMEOUT_MS;
  for (;;) {
    const crd = (await objects.read({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name },
    })) as { status?: { conditions?: Array<{ type: string; status: string }> } };
    const conditions = crd.status?.conditions;
    // A server that reports no conditions at all (no CRD controller) serves the CRD at once.
    if (!conditions || conditions.some((c) => c.type === "Established" && c.status === "True")) return;
    if (Date.now() > deadline)
      throw new Error(`CustomResourceDefinition ${name} was not established in time`);
    await Bun.sleep(250);
  }
}

/**
 * Server-side applies `manifests` in order with field manager `kubenova` (force: the installer owns these
 * fields). Discovery first, so an unreachable or unauthorized API fails before anything is written; each CRD is
 * waited on until established before the objects that need it are applied.
 */
export async function applyManifests(
  kubeconfig: string,
  manifests: readonly KubeManifest[],
): Promise<AppliedObject[]> {
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromString(kubeconfig);
  } catch (error) {
    throw new Error(`kubeconfig cannot be parsed: ${reasonOf(error)}`);
  }
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig has no current cluster");
  try {
    await kc.makeApiClient(k8s.CoreApi).getAPIVersions();
  } catch (error) {
    throw new Error(`discovery failed: ${reasonOf(error)}`);
  }
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const applied: AppliedObject[] = [];
  for (const manifest of manifests) {
    const ref = refOf(manifest);
    try {
      await objects.patch(
        toClientObject(manifest),
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        k8s.PatchStrategy.ServerSideApply,
      );
      if (manifest.kind === "CustomResourceDefinition")
        await waitForEstablished(objects, manifest.metadata.name);
    } catch (error) {
      throw new Error(`${describeRef(ref)}: ${reasonOf(error)}`);
    }
    applied.push(ref);
  }
  return applied;
}

async function recordOutcome(
  deps: EnrolmentServiceDeps,
  actor: Actor,
  clusterId: string,
  outcome: { ok: true; applied: number } | { ok: false; reason: string },
): Promise<ClusterRow | null> {
  return deps.store.transaction(async (tx) => {
    const current = await tx.clusters.getById(clusterId);
    if (!current) return null;
    const next: ClusterRow = outcome.ok
      ? {
          ...current,
          // An operator that already connected keeps its status; the install only moves a pending cluster on.
          status: ["pending_bootstrap", "error"].includes(current.status) ? "bootstrapping" : current.status,
          statusReason: null,
        }
      : { ...current, status: "error", statusReason: `operator install failed: ${outcome.reason}` };
    const updated = await tx.clusters.update({ ...next, updatedAt: nowIso(deps) });
    await audit(tx, deps, actor, {
      action: "cluster.install",
      resource: `clusters/${current.name}`,
      details: outcome.ok
        ? { result: "applied", objects: outcome.applied }
        : { result: "failed", reason: outcome.reason },
    });
    return updated;
  });
}

/**
 * Installs the operator from the cluster's stored kubeconfig. `bootstrapToken` is the plaintext token to put in
 * the install Secret (registration hands its fresh one over); without it a new one is minted, which invalidates
 * the cluster's older unused tokens. A failed install is recorded on the cluster and then thrown as KN-503.
 */
export async function installOperator(
  deps: EnrolmentServiceDeps,
  actor: Actor,
  name: string,
  options: { bootstrapToken?: string; timeoutMs?: number } = {},
): Promise<InstallResult> {
  const cluster = await deps.store.clusters.get(name);
  if (!cluster) throw errors.notFound("cluster", name);
  if (cluster.kubeconfigCiphertext === null) {
    throw errors.unprocessable(
      `cluster "${name}" has no stored kubeconfig; PATCH one or install with install.yaml`,
      [{ path: "kubeconfig", message: "no kubeconfig stored for this cluster" }],
    );
  }
  const kubeconfig = await deps.secrets.decryptString(
    cluster.kubeconfigCiphertext,
    kubeconfigAad(cluster.id),
  );
  const token =
    options.bootstrapToken ??
    (await deps.store.transaction((tx) => issueBootstrapToken(tx, deps, cluster))).token;
  const manifests = operatorManifests(deps.enrolment.settings, cluster, token);
  const log = deps.logger.child({ cluster: cluster.id, adapter: "kube-installer" });
  try {
    const applied = await withTimeout(
      applyManifests(kubeconfig, manifests),
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      "operator install",
    );
    const updated = await recordOutcome(deps, actor, cluster.id, { ok: true, applied: applied.length });
    log.info("operator installed from kubeconfig", { objects: applied.length });
    return { cluster: updated ?? cluster, applied };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    log.warn("operator install failed", { reason });
    await recordOutcome(deps, actor, cluster.id, { ok: false, reason });
    throw new KubeNovaError("KN-503", `operator install failed: ${reason}`, {
      retryable: true,
      context: { cluster: name },
    });
  }
}

/**
 * Runs `installOperator` without awaiting it (after registration): the outcome lands on the cluster and in the
 * log, never as an unhandled rejection. Returns the promise for callers (tests) that want to wait.
 */
export function installOperatorInBackground(
  deps: EnrolmentServiceDeps,
  actor: Actor,
  name: string,
  options: { bootstrapToken?: string; timeoutMs?: number } = {},
): Promise<void> {
  return installOperator(deps, actor, name, options).then(
    () => undefined,
    (error: unknown) => {
      // Already recorded on the cluster by installOperator; a store outage while recording lands here too.
      deps.logger.warn("background operator install ended with an error", {
        cluster: name,
        err: error as Error,
      });
    },
  );
}
