/**
 * The operator's KubeClient over Bun's `fetch` and the API server's JSON: discovery (cached per group/version),
 * paginated lists, server-side apply, merge-patched status, TokenRequest and watches read line by line.
 *
 * Why not @kubernetes/client-node: importing it costs ~45 MB of RSS (its ~900 generated models and API classes
 * load eagerly), its typed models rename or drop JSON keys, and under Bun its undici dispatcher ignores the
 * kubeconfig's CA. The operator needs the handful of requests below, over plain JSON.
 */
import {
  FIELD_MANAGER,
  KubeApiError,
  type KubeClient,
  type KubeObject,
  type KubeRef,
  type WatchEventType,
} from "./kube.ts";
import { type KubeConnection, loadKubeConnection } from "./kubeconfig.ts";

/** Page size of lists: bounds the memory one list response takes, whatever the number of objects. */
const LIST_PAGE_SIZE = 500;
const WATCH_RETRY_MS = 500;

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

/** The message of a Kubernetes Status body, else the HTTP status line. */
async function errorOf(response: Response): Promise<KubeApiError> {
  const text = await response.text().catch(() => "");
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === "string") message = body.message;
  } catch {
    if (text.trim()) message = text.trim().slice(0, 500);
  }
  return new KubeApiError(response.status, message);
}

function createHttp(connection: KubeConnection) {
  let session: { cert: string | undefined; session: Bun.FetchSession } | null = null;
  const sessionFor = (cert?: string, key?: string): Bun.FetchSession => {
    if (session && session.cert === cert) return session.session;
    session?.session.close();
    const tls = { ...connection.tls, ...(cert && key ? { cert, key } : {}) };
    session = {
      cert,
      session: new Bun.FetchSession({ tls, ...(connection.proxy ? { proxy: connection.proxy } : {}) }),
    };
    return session.session;
  };

  /** The response of a request (any status); network failures become KubeApiError(0). */
  async function send(method: string, path: string, options: RequestOptions = {}, retried = false) {
    const url = new URL(connection.server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const credentials = await connection.credentials();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (credentials.authorization) headers.Authorization = credentials.authorization;
    if (options.contentType) headers["Content-Type"] = options.contentType;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: options.body } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        session: sessionFor(credentials.cert, credentials.key),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new KubeApiError(0, (error as Error).message ?? String(error));
    }
    if (response.status === 401 && !retried) {
      await response.body?.cancel();
      connection.invalidate();
      return send(method, path, options, true);
    }
    return response;
  }

  /** The parsed JSON of a 2xx response; KubeApiError otherwise. */
  async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await send(method, path, options);
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  return { send, request };
}

/** From a kubeconfig (file or text), a prepared connection, else the in-cluster ServiceAccount. */
export function createKubeClient(
  options: { kubeconfigPath?: string; kubeconfig?: string; connection?: KubeConnection } = {},
): KubeClient {
  const http = createHttp(options.connection ?? loadKubeConnection(options));
  const discovered = new Map<string, ApiResource[]>();

  const groupPath = (apiVersion: string) =>
    apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;

  /** The resource serving `kind`; re-asks the server when the cached list lacks it (a CRD added since). */
  async function resourceOf(apiVersion: string, kind: string): Promise<ApiResource> {
    const cached = discovered.get(apiVersion)?.find((r) => r.kind === kind);
    if (cached) return cached;
    let list: { resources?: Array<{ name: string; kind: string; namespaced?: boolean }> };
    try {
      list = await http.request(`GET`, groupPath(apiVersion));
    } catch (error) {
      const e = error as KubeApiError;
      throw new KubeApiError(
        e.status,
        `Failed to fetch resource metadata for ${apiVersion}/${kind}: ${e.message}`,
      );
    }
    const resources = (list.resources ?? [])
      .filter((r) => !r.name.includes("/")) // subresources (status, scale, token)
      .map((r) => ({ name: r.name, kind: r.kind, namespaced: r.namespaced === true }));
    discovered.set(apiVersion, resources);
    const resource = resources.find((r) => r.kind === kind);
    if (!resource) throw new KubeApiError(404, `the API server does not serve ${kind} in ${apiVersion}`);
    return resource;
  }

  /** The collection path; a namespaced resource without a namespace means all namespaces. */
  async function collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    const resource = await resourceOf(apiVersion, kind);
    const ns = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
    return `${groupPath(apiVersion)}${ns}/${resource.name}`;
  }

  /** One object's path; a namespaced object without a namespace is in `default`, as kubectl has it. */
  async function objectPath(ref: KubeRef): Promise<string> {
    const resource = await resourceOf(ref.apiVersion, ref.kind);
    const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace || "default")}` : "";
    return `${groupPath(ref.apiVersion)}${ns}/${resource.name}/${encodeURIComponent(ref.name)}`;
  }

  const typed = (object: KubeObject, apiVersion: string, kind: string): KubeObject => {
    object.apiVersion ??= apiVersion;
    object.kind ??= kind;
    return object;
  };

  /** Every item, page by page, and the resourceVersion of the first page (the list's snapshot). */
  async function listAll(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string },
    each: (object: KubeObject) => void,
  ): Promise<string> {
    const path = await collectionPath(apiVersion, kind, options.namespace);
    let resourceVersion: string | undefined;
    let next: string | undefined;
    do {
      const page = await http.request<{
        metadata?: { resourceVersion?: string; continue?: string };
        items?: KubeObject[];
      }>("GET", path, {
        query: { labelSelector: options.labelSelector, limit: String(LIST_PAGE_SIZE), continue: next },
      });
      resourceVersion ??= page.metadata?.resourceVersion ?? "";
      for (const item of page.items ?? []) each(typed(item, apiVersion, kind));
      next = page.metadata?.continue || undefined;
    } while (next);
    return resourceVersion ?? "";
  }

  return {
    async patchStatus(ref, status) {
      const path = `${await objectPath(ref)}/status`;
      const object = await http.request<KubeObject>("PATCH", path, {
        body: JSON.stringify({ status }),
        contentType: "application/merge-patch+json",
      });
      return typed(object, ref.apiVersion, ref.kind);
    },

    async watch(apiVersion, kind, watchOptions, handler) {
      const path = await collectionPath(apiVersion, kind, watchOptions.namespace);
      /**
       * What the watch remembers per object: its identity and resourceVersion only, enough to tell a relist's
       * changes and to announce a deletion the stream missed. Full objects would grow with the cluster.
       */
      const known = new Map<string, KubeObject>();
      const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      const remember = (object: KubeObject) => {
        const m = object.metadata;
        known.set(keyOf(object), {
          apiVersion,
          kind,
          metadata: {
            name: m.name,
            ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
            ...(m.labels !== undefined ? { labels: m.labels } : {}),
            ...(m.generation !== undefined ? { generation: m.generation } : {}),
            ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
          },
        });
      };
      let stopped = false;
      let abort: AbortController | null = null;
      let resourceVersion = "";
      let retryTimer: ReturnType<typeof setTimeout> | null = null;

      const relist = async () => {
        const seen = new Set<string>();
        resourceVersion = await listAll(apiVersion, kind, watchOptions, (object) => {
          const key = keyOf(object);
          seen.add(key);
          const before = known.get(key);
          remember(object);
          if (!before) handler("ADDED", object);
          else if (before.metadata.resourceVersion !== object.metadata.resourceVersion)
            handler("MODIFIED", object);
        });
        for (const [key, object] of known) {
          if (!seen.has(key)) {
            known.delete(key);
            handler("DELETED", object);
          }
        }
      };

      const onEvent = (line: string) => {
        const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
        const raw = event.object;
        if (event.type === "BOOKMARK") {
          resourceVersion = raw?.metadata?.resourceVersion ?? resourceVersion;
          return;
        }
        if (event.type === "ERROR") {
          if (raw?.code === 410) resourceVersion = ""; // too old: relist on the next start
          return;
        }
        const object = typed(raw, apiVersion, kind);
        resourceVersion = object.metadata.resourceVersion ?? resourceVersion;
        if (event.type === "DELETED") known.delete(keyOf(object));
        else remember(object);
        handler(event.type as WatchEventType, object);
      };

      /** Reads the stream to its end; then (or on any failure) the watch starts again. */
      const follow = async (response: Response, controller: AbortController) => {
        try {
          const reader = (response.body as ReadableStream<Uint8Array>).getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let newline = buffer.indexOf("\n");
            while (newline >= 0) {
              const line = buffer.slice(0, newline).trim();
              buffer = buffer.slice(newline + 1);
              if (line) onEvent(line);
              newline = buffer.indexOf("\n");
            }
          }
        } catch {
          // dropped stream or a handler failure: resume below
        }
        if (abort === controller) schedule();
      };

      const start = async (): Promise<void> => {
        if (stopped) return;
        try {
          if (!resourceVersion) await relist();
          const controller = new AbortController();
          abort = controller;
          const response = await http.send("GET", path, {
            query: {
              watch: "true",
              resourceVersion,
              allowWatchBookmarks: "true",
              labelSelector: watchOptions.labelSelector,
            },
            signal: controller.signal,
          });
          if (!response.ok) {
            await response.body?.cancel();
            if (response.status === 410) resourceVersion = "";
            schedule();
            return;
          }
          if (stopped) {
            controller.abort();
            return;
          }
          void follow(response, controller);
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
        }, WATCH_RETRY_MS);
      };
      await start();
      return {
        stop() {
          stopped = true;
          if (retryTimer) clearTimeout(retryTimer);
          const controller = abort;
          abort = null;
          controller?.abort();
        },
      };
    },

    async createToken(namespace, serviceAccount, expirationSeconds) {
      const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`;
      const result = await http.request<{ status?: { token?: string; expirationTimestamp?: string } }>(
        "POST",
        path,
        {
          body: JSON.stringify({
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: { audiences: [], expirationSeconds },
          }),
          contentType: "application/json",
        },
      );
      return {
        token: result.status?.token ?? "",
        expiresAt: new Date(result.status?.expirationTimestamp ?? Date.now()).toISOString(),
      };
    },

    async apply(object, applyOptions = {}) {
      const ref = {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata.name,
        ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
      };
      const result = await http.request<KubeObject>("PATCH", await objectPath(ref), {
        query: { fieldManager: FIELD_MANAGER, force: String(applyOptions.force ?? true) },
        // JSON is YAML: the apply-patch+yaml content type takes it as it is.
        body: JSON.stringify(object),
        contentType: "application/apply-patch+yaml",
      });
      return typed(result, object.apiVersion, object.kind);
    },

    async get(ref) {
      try {
        return typed(await http.request<KubeObject>("GET", await objectPath(ref)), ref.apiVersion, ref.kind);
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return null;
        throw error;
      }
    },

    async delete(ref) {
      try {
        await http.request("DELETE", await objectPath(ref));
        return true;
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return false;
        throw error;
      }
    },

    async list(apiVersion, kind, listOptions = {}) {
      const items: KubeObject[] = [];
      try {
        await listAll(apiVersion, kind, listOptions, (object) => items.push(object));
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return [];
        throw error;
      }
      return items;
    },

    async kubernetesVersion() {
      try {
        return (await http.request<{ gitVersion?: string }>("GET", "/version")).gitVersion ?? null;
      } catch {
        return null;
      }
    },

    async servedGroups() {
      const groups = await http.request<{
        groups?: Array<{ name: string; versions?: Array<{ version: string }> }>;
      }>("GET", "/apis");
      const out: Record<string, string[]> = {};
      for (const group of groups.groups ?? []) out[group.name] = (group.versions ?? []).map((v) => v.version);
      return out;
    },
  };
}
