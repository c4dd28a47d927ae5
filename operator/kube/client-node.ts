/**
 * @module operator/kube — the operator's narrow view of Kubernetes, and the one file that imports
 * @kubernetes/client-node. Writes are server-side applies with field manager `kubenova` (DESIGN.md §6).
 */
import * as k8s from "@kubernetes/client-node";

export const FIELD_MANAGER = "kubenova";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    generation?: number;
    resourceVersion?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface KubeRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** What the API server said, reduced to what callers decide on. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  /** 409/429/5xx and network failures are worth retrying; other 4xx are not (DESIGN.md §6). */
  get retryable(): boolean {
    return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

export interface KubeClient {
  apply(object: KubeObject, options?: { force?: boolean }): Promise<KubeObject>;
  get(ref: KubeRef): Promise<KubeObject | null>;
  /** True when something was deleted. */
  delete(ref: KubeRef): Promise<boolean>;
  list(
    apiVersion: string,
    kind: string,
    options?: { namespace?: string; labelSelector?: string },
  ): Promise<KubeObject[]>;
  kubernetesVersion(): Promise<string | null>;
  /** API group → served versions, from discovery. */
  servedGroups(): Promise<Record<string, string[]>>;
}

function toError(error: unknown): KubeApiError {
  const e = error as { code?: number; statusCode?: number; body?: unknown; message?: string };
  const status = typeof e.code === "number" ? e.code : typeof e.statusCode === "number" ? e.statusCode : 0;
  let message = e.message ?? String(error);
  try {
    const body = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
    if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") {
      message = (body as { message: string }).message;
    }
  } catch {
    // keep the client's message
  }
  return new KubeApiError(status, message);
}

/**
 * client-node serializes kinds it knows through typed models and silently drops plain-object keys whose JSON
 * names differ (`enum`, `default`, `x-kubernetes-*`, …). Loading the object the way it loads YAML keeps them.
 */
function typed(object: KubeObject): k8s.KubernetesObject {
  return k8s.loadYaml<k8s.KubernetesObject>(JSON.stringify(object));
}

const plain = (object: unknown): KubeObject => JSON.parse(JSON.stringify(object)) as KubeObject;

export function createKubeClient(options: { kubeconfigPath?: string; kubeconfig?: string } = {}): KubeClient {
  const kc = new k8s.KubeConfig();
  if (options.kubeconfig) kc.loadFromString(options.kubeconfig);
  else if (options.kubeconfigPath) kc.loadFromFile(options.kubeconfigPath);
  else kc.loadFromCluster();
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);

  return {
    async apply(object, applyOptions = {}) {
      try {
        const result = await objects.patch(
          typed(object),
          undefined,
          undefined,
          FIELD_MANAGER,
          applyOptions.force ?? true,
          k8s.PatchStrategy.ServerSideApply,
        );
        return plain(result);
      } catch (error) {
        throw toError(error);
      }
    },
    async get(ref) {
      try {
        const spec = {
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, namespace: ref.namespace },
        };
        return plain(await objects.read(spec as Parameters<typeof objects.read>[0]));
      } catch (error) {
        const e = toError(error);
        if (e.status === 404) return null;
        throw e;
      }
    },
    async delete(ref) {
      try {
        await objects.delete({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, namespace: ref.namespace },
        });
        return true;
      } catch (error) {
        const e = toError(error);
        if (e.status === 404) return false;
        throw e;
      }
    },
    async list(apiVersion, kind, listOptions = {}) {
      try {
        const result = await objects.list(
          apiVersion,
          kind,
          listOptions.namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          listOptions.labelSelector,
        );
        return (result.items ?? []).map((item) => ({ ...plain(item), apiVersion, kind }));
      } catch (error) {
        const e = toError(error);
        if (e.status === 404) return [];
        throw e;
      }
    },
    async kubernetesVersion() {
      try {
        const info = await kc.makeApiClient(k8s.VersionApi).getCode();
        return info.gitVersion ?? null;
      } catch {
        return null;
      }
    },
    async servedGroups() {
      try {
        const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
        const out: Record<string, string[]> = {};
        for (const group of groups.groups ?? [])
          out[group.name] = (group.versions ?? []).map((v) => v.version);
        return out;
      } catch (error) {
        throw toError(error);
      }
    },
  };
}
