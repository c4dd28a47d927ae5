/**
 * @module operator/kube — the operator's narrow view of Kubernetes (this file, the port) and its one
 * implementation over Bun's `fetch` (`http-client.ts`, with connection settings from `kubeconfig.ts`). Writes are
 * server-side applies with field manager `kubenova` (DESIGN.md §6).
 */

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
   * (emitting what changed meanwhile). The handler sees every object at least once after start. A DELETED found
   * by a relist carries only the object's identity (apiVersion, kind, name, namespace, labels, generation,
   * resourceVersion): the watch keeps no more than that per object.
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
