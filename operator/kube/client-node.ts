/**
 * @module operator/kube — the operator's narrow view of Kubernetes, and the one file that imports
 * @kubernetes/client-node. Writes are server-side applies with field manager `kubenova` (DESIGN.md §6).
 */
import * as k8s from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";

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

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface WatchHandle {
  stop(): void;
}

export interface KubeClient {
  apply(object: KubeObject, options?: { force?: boolean }): Promise<KubeObject>;
  /**
   * Writes `status` of a custom resource (JSON merge patch on the status subresource). `object` needs apiVersion,
   * kind, metadata.name (and namespace when namespaced).
   */
  patchStatus(object: KubeRef, status: Record<string, unknown>): Promise<KubeObject>;
  /**
   * Lists, then watches from the list's resourceVersion; on a dropped stream it resumes, on 410 Gone it relists
   * (emitting what changed meanwhile). The handler sees every object at least once after start.
   */
  watch(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string },
    handler: (type: WatchEventType, object: KubeObject) => void,
  ): Promise<WatchHandle>;
  /** TokenRequest for a ServiceAccount (`expirationSeconds` ≥ 600, DESIGN.md §9.7). */
  createToken(
    namespace: string,
    serviceAccount: string,
    expirationSeconds: number,
  ): Promise<{ token: string; expiresAt: string }>;
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

/**
 * client-node hands back typed models whose property names are not the JSON names (`_default`, `_from`, …);
 * its own serializer (through dumpYaml) restores the wire shape, so callers compare like with like.
 */
function wire(object: unknown, apiVersion?: string, kind?: string): KubeObject {
  const typedObject = object as k8s.KubernetesObject;
  const withType = {
    ...typedObject,
    apiVersion: typedObject.apiVersion ?? apiVersion,
    kind: typedObject.kind ?? kind,
  };
  return parseYaml(k8s.dumpYaml(withType)) as KubeObject;
}

/** Exposes discovery (resource names) that KubernetesObjectApi keeps protected; used to build watch paths. */
class DiscoveringObjectApi extends k8s.KubernetesObjectApi {
  async pathOf(
    apiVersion: string,
    kind: string,
    namespace?: string,
  ): Promise<{ path: string; plural: string }> {
    const resource = await this.resource(apiVersion, kind);
    if (!resource) throw new KubeApiError(404, `the API server does not serve ${kind} in ${apiVersion}`);
    const root = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = resource.namespaced && namespace ? `/namespaces/${namespace}` : "";
    return { path: `${root}${ns}/${resource.name}`, plural: resource.name };
  }
}

export function createKubeClient(options: { kubeconfigPath?: string; kubeconfig?: string } = {}): KubeClient {
  const kc = new k8s.KubeConfig();
  if (options.kubeconfig) kc.loadFromString(options.kubeconfig);
  else if (options.kubeconfigPath) kc.loadFromFile(options.kubeconfigPath);
  else kc.loadFromCluster();
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const discovery = kc.makeApiClient(DiscoveringObjectApi);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);

  return {
    async patchStatus(ref, status) {
      try {
        const [group, version] = ref.apiVersion.split("/") as [string, string];
        const { plural } = await discovery.pathOf(ref.apiVersion, ref.kind, ref.namespace);
        const options = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
        const body = { status };
        const result = ref.namespace
          ? await custom.patchNamespacedCustomObjectStatus(
              { group, version, plural, namespace: ref.namespace, name: ref.name, body },
              options,
            )
          : await custom.patchClusterCustomObjectStatus(
              { group, version, plural, name: ref.name, body },
              options,
            );
        return plain(result);
      } catch (error) {
        throw error instanceof KubeApiError ? error : toError(error);
      }
    },
    async watch(apiVersion, kind, watchOptions, handler) {
      const { path } = await discovery.pathOf(apiVersion, kind, watchOptions.namespace);
      const watcher = new k8s.Watch(kc);
      const known = new Map<string, KubeObject>();
      const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      let stopped = false;
      let abort: AbortController | null = null;
      let resourceVersion = "";
      let retryTimer: ReturnType<typeof setTimeout> | null = null;

      const relist = async () => {
        const list = await objects.list(
          apiVersion,
          kind,
          watchOptions.namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          watchOptions.labelSelector,
        );
        resourceVersion = list.metadata?.resourceVersion ?? "";
        const seen = new Set<string>();
        for (const item of list.items ?? []) {
          const object = wire(item, apiVersion, kind);
          const key = keyOf(object);
          seen.add(key);
          const before = known.get(key);
          known.set(key, object);
          if (!before) handler("ADDED", object);
          else if (before.metadata.resourceVersion !== object.metadata.resourceVersion)
            handler("MODIFIED", object);
        }
        for (const [key, object] of known) {
          if (!seen.has(key)) {
            known.delete(key);
            handler("DELETED", object);
          }
        }
      };

      const start = async (): Promise<void> => {
        if (stopped) return;
        try {
          if (!resourceVersion) await relist();
          abort = await watcher.watch(
            path,
            {
              resourceVersion,
              allowWatchBookmarks: true,
              ...(watchOptions.labelSelector ? { labelSelector: watchOptions.labelSelector } : {}),
            },
            (type, raw) => {
              if (type === "BOOKMARK") {
                resourceVersion = raw?.metadata?.resourceVersion ?? resourceVersion;
                return;
              }
              if (type === "ERROR") {
                if (raw?.code === 410) resourceVersion = ""; // too old: relist on the next start
                return;
              }
              const object = { ...plain(raw), apiVersion, kind };
              resourceVersion = object.metadata.resourceVersion ?? resourceVersion;
              if (type === "DELETED") known.delete(keyOf(object));
              else known.set(keyOf(object), object);
              handler(type as WatchEventType, object);
            },
            (error) => {
              const status = (error as { code?: number; statusCode?: number } | null)?.code;
              if (status === 410) resourceVersion = "";
              schedule();
            },
          );
        } catch {
          resourceVersion = "";
          schedule();
        }
      };
      const schedule = () => {
        if (stopped || retryTimer) return;
        retryTimer = setTimeout(() => {
          retryTimer = null;
          void start();
        }, 500);
      };
      await start();
      return {
        stop() {
          stopped = true;
          if (retryTimer) clearTimeout(retryTimer);
          abort?.abort();
        },
      };
    },
    async createToken(namespace, serviceAccount, expirationSeconds) {
      try {
        const core = kc.makeApiClient(k8s.CoreV1Api);
        const result = await core.createNamespacedServiceAccountToken({
          name: serviceAccount,
          namespace,
          body: { spec: { audiences: [], expirationSeconds } } as k8s.AuthenticationV1TokenRequest,
        });
        return {
          token: result.status?.token ?? "",
          expiresAt: new Date(result.status?.expirationTimestamp ?? Date.now()).toISOString(),
        };
      } catch (error) {
        throw toError(error);
      }
    },
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
        return wire(result, object.apiVersion, object.kind);
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
        return wire(await objects.read(spec as Parameters<typeof objects.read>[0]), ref.apiVersion, ref.kind);
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
        return (result.items ?? []).map((item) => wire(item, apiVersion, kind));
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
