/**
 * HTTP routing: discovery, resource paths (`/api/v1/...`, `/apis/{group}/{version}/...`), authentication,
 * RBAC authorization, fault injection, the request log, and watch streams (JSON lines, chunked).
 */

import { type ApiCore, type DeleteOptions, PATCH_TYPES, type Target, tableOf } from "./api.ts";
import { ApiError } from "./errors.ts";
import type { Faults } from "./faults.ts";
import { type Attributes, authorize, forbiddenMessage, type UserInfo } from "./rbac.ts";
import { apiVersionOf } from "./registry.ts";
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import type { KubeObject, StoredEvent } from "./store.ts";

export interface RequestLogEntry {
  method: string;
  path: string;
  query: string;
  /** Authenticated user name, or undefined for rejected credentials. */
  user: string | undefined;
  /** RBAC verb (`get`, `list`, `watch`, `create`, `patch`, …) for resource requests. */
  verb?: string;
  status: number;
}

export interface HttpContext {
  core: ApiCore;
  faults: Faults;
  requests: RequestLogEntry[];
  bookmarkIntervalMs: number;
}

const JSON_HEADERS = { "content-type": "application/json" };

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

function errorResponse(err: ApiError): Response {
  const headers: Record<string, string> = {};
  if (err.details?.retryAfterSeconds) headers["retry-after"] = String(err.details.retryAfterSeconds);
  return json(err.toStatus(), err.code, headers);
}

const NOT_FOUND = () =>
  new ApiError("NotFound", "the server could not find the requested resource", { causes: [] }, 404);

interface Route {
  target: Target;
  collection: boolean;
}

function route(core: ApiCore, segs: string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === "api") {
    group = "";
    version = segs[1] ?? "";
    rest = segs.slice(2);
  } else if (segs[0] === "apis") {
    group = segs[1] ?? "";
    version = segs[2] ?? "";
    rest = segs.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3 && rest[2] !== "status" && rest[2] !== "finalize") {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  if (!resource || extra.length > 0) return undefined;
  const type = core.registry.byResource(group, version, resource);
  if (!type) return undefined;
  if (!type.namespaced && namespace !== undefined) return undefined;
  if (subresource !== undefined && !type.subresources.includes(subresource)) return undefined;
  const target: Target = { type, version };
  if (namespace !== undefined) target.namespace = namespace;
  if (name !== undefined) target.name = decodeURIComponent(name);
  if (subresource !== undefined) target.subresource = subresource;
  return { target, collection: name === undefined };
}

function verbOf(method: string, r: Route, watch: boolean): string {
  switch (method) {
    case "GET":
      return watch ? "watch" : r.collection ? "list" : "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return r.collection ? "deletecollection" : "delete";
    default:
      return method.toLowerCase();
  }
}

function bearer(req: Request): string | undefined {
  const h = req.headers.get("authorization");
  if (!h?.toLowerCase().startsWith("bearer ")) return undefined;
  return h.slice(7).trim();
}

/** Handles one request; never throws (errors become Status responses). */
export async function handle(ctx: HttpContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const entry: RequestLogEntry = {
    method: req.method,
    path: url.pathname,
    query: url.search.replace(/^\?/, ""),
    user: undefined,
    status: 0,
  };
  ctx.requests.push(entry);
  let response: Response;
  try {
    if (ctx.faults.latencyMs > 0) await Bun.sleep(ctx.faults.latencyMs);
    const injected = ctx.faults.takeFailure();
    if (injected) throw injected;
    const user = ctx.core.auth.authenticate(bearer(req));
    if (!user) throw new ApiError("Unauthorized", "Unauthorized");
    entry.user = user.name;
    response = await dispatch(ctx, req, url, user, entry);
  } catch (err) {
    if (err instanceof ApiError) response = errorResponse(err);
    else {
      const message = err instanceof Error ? err.message : String(err);
      response = errorResponse(new ApiError("InternalError", `internal error: ${message}`));
    }
  }
  entry.status = response.status;
  return response;
}

async function dispatch(
  ctx: HttpContext,
  req: Request,
  url: URL,
  user: UserInfo,
  entry: RequestLogEntry,
): Promise<Response> {
  const core = ctx.core;
  const segs = url.pathname.split("/").filter((s) => s !== "");
  const path = url.pathname.replace(/\/+$/, "");
  if (req.method === "GET") {
    if (path === "/version") {
      return json({
        major: "1",
        minor: "31",
        gitVersion: "v1.31.0+kubenova-kube-api",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.22.0",
        compiler: "gc",
        platform: "linux/amd64",
      });
    }
    if (path === "/healthz" || path === "/readyz" || path === "/livez") {
      return new Response("ok", { headers: { "content-type": "text/plain" } });
    }
    if (path === "/api") {
      return json({
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: url.host }],
      });
    }
    if (path === "/apis") return json(core.registry.apiGroupList());
    if (segs.length === 2 && segs[0] === "api") {
      const list = core.registry.resourceList("", segs[1]!);
      if (!list) throw NOT_FOUND();
      return json(list);
    }
    if (segs.length === 2 && segs[0] === "apis") {
      const group = core.registry.apiGroup(segs[1]!);
      if (!group) throw NOT_FOUND();
      return json(group);
    }
    if (segs.length === 3 && segs[0] === "apis") {
      const list = core.registry.resourceList(segs[1]!, segs[2]!);
      if (!list) throw NOT_FOUND();
      return json(list);
    }
  }
  const r = route(core, segs);
  if (!r) throw NOT_FOUND();
  const q = url.searchParams;
  const watch = q.get("watch") === "true" || q.get("watch") === "1";
  const verb = verbOf(req.method, r, watch);
  entry.verb = verb;
  const attrs: Attributes = { verb, group: r.target.type.group, resource: r.target.type.resource };
  if (r.target.subresource) attrs.subresource = r.target.subresource;
  if (r.target.namespace) attrs.namespace = r.target.namespace;
  if (r.target.name) attrs.name = r.target.name;
  if (!authorize(core.store, user, attrs)) {
    throw new ApiError("Forbidden", forbiddenMessage(user, attrs), {
      ...(attrs.name ? { name: attrs.name } : {}),
      group: attrs.group,
      kind: attrs.resource,
    });
  }
  const t = r.target;
  const write = {
    dryRun: q.getAll("dryRun").includes("All"),
    fieldManager: q.get("fieldManager") ?? undefined,
    fieldValidation: q.get("fieldValidation") ?? undefined,
    force: q.get("force") === "true",
  };
  const manager =
    write.fieldManager ?? (req.headers.get("user-agent") ?? "unknown").split("/")[0] ?? "unknown";
  switch (verb) {
    case "get":
      return json(core.get(t));
    case "list":
      return json(
        core.list(t, {
          labelSelector: q.get("labelSelector"),
          fieldSelector: q.get("fieldSelector"),
          limit: q.has("limit") ? Number(q.get("limit")) : undefined,
          continue: q.get("continue"),
        }),
      );
    case "watch":
      return watchResponse(ctx, t, q);
    case "create": {
      const body = await readJson(req);
      if (t.subresource === "token") return json(core.createToken(t, body), 201);
      if (t.subresource || !r.collection)
        throw new ApiError(
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
        );
      return json(core.create(t, body, write, manager), write.dryRun ? 200 : 201);
    }
    case "update":
      return json(core.update(t, await readJson(req), write, manager));
    case "patch": {
      const contentType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
      const patchType = PATCH_TYPES[contentType];
      if (!patchType) {
        throw new ApiError(
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_TYPES).join(", ")}`,
        );
      }
      return json(core.patch(t, await req.text(), patchType, write, manager));
    }
    case "delete": {
      const options = await deleteOptions(req, q);
      const result = core.delete(t, options);
      if (result.pending) return json(result.object);
      return json({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Success",
        details: {
          name: t.name,
          group: t.type.group,
          kind: t.type.resource,
          uid: result.object.metadata.uid,
        },
      });
    }
    case "deletecollection": {
      const options = await deleteOptions(req, q);
      return json(
        core.deleteCollection(
          t,
          { labelSelector: q.get("labelSelector"), fieldSelector: q.get("fieldSelector") },
          options,
        ),
      );
    }
    default:
      throw new ApiError(
        "MethodNotAllowed",
        `the server does not allow this method on the requested resource`,
      );
  }
}

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(
      "BadRequest",
      `couldn't get version/kind; json parse error: ${(err as Error).message}`,
    );
  }
}

async function deleteOptions(req: Request, q: URLSearchParams): Promise<DeleteOptions> {
  const text = await req.text();
  let body: Record<string, unknown> = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ApiError("BadRequest", "invalid DeleteOptions body");
    }
  }
  const options: DeleteOptions = {};
  const policy = (q.get("propagationPolicy") ?? body.propagationPolicy) as DeleteOptions["propagationPolicy"];
  if (policy) options.propagationPolicy = policy;
  if (body.preconditions) options.preconditions = body.preconditions as DeleteOptions["preconditions"];
  const dryRun =
    q.getAll("dryRun").includes("All") || (Array.isArray(body.dryRun) && body.dryRun.includes("All"));
  if (dryRun) options.dryRun = true;
  return options;
}

/**
 * A watch: synthetic ADDED events for the current state when no resourceVersion is given (or "0"), else the
 * retained history after it (an ERROR event with a 410 Expired Status when it is too old), then live events.
 */
function watchResponse(ctx: HttpContext, t: Target, q: URLSearchParams): Response {
  const core = ctx.core;
  const type = t.type;
  const table = tableOf(type);
  const labels = parseLabelSelector(q.get("labelSelector"));
  const fields = parseFieldSelector(q.get("fieldSelector"));
  const matches = (o: KubeObject | undefined): boolean =>
    o !== undefined &&
    (t.namespace === undefined || o.metadata.namespace === t.namespace) &&
    (t.name === undefined || o.metadata.name === t.name) &&
    labels(o.metadata.labels) &&
    fields(o.metadata);
  const rvParam = q.get("resourceVersion") ?? "";
  const bookmarks = q.get("allowWatchBookmarks") === "true";
  const timeoutSeconds = q.has("timeoutSeconds") ? Number(q.get("timeoutSeconds")) : undefined;
  const encoder = new TextEncoder();
  let cleanup = () => {};

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const send = (evType: string, object: unknown) => {
        if (closed) return;
        controller.enqueue(encoder.encode(`${JSON.stringify({ type: evType, object })}\n`));
      };
      const present = (o: KubeObject) => core.present(structuredClone(o), type, t.version);
      const timers = new Set<ReturnType<typeof setTimeout>>();
      const later = (fn: () => void, ms: number) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          fn();
        }, ms);
        timers.add(timer);
      };
      let unsubscribe = () => {};
      let untrack = () => {};
      const close = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        untrack();
        for (const timer of timers) clearTimeout(timer);
        try {
          controller.close();
        } catch {
          // The client may already have gone away; nothing left to close.
        }
      };
      cleanup = close;
      // Bun sends response headers with the first chunk; a watch with nothing to report yet must still
      // answer 200 at once (clients await the headers). Whitespace between JSON events is valid framing.
      controller.enqueue(encoder.encode("\n"));
      const onEvent = (e: StoredEvent) => {
        const now = matches(e.object);
        if (e.type === "ADDED") {
          if (now) send("ADDED", present(e.object));
        } else if (e.type === "DELETED") {
          if (now) send("DELETED", present(e.object));
        } else {
          const before = matches(e.previous);
          if (now && before) send("MODIFIED", present(e.object));
          else if (now) send("ADDED", present(e.object));
          else if (before) send("DELETED", present(e.object));
        }
      };
      if (rvParam === "" || rvParam === "0") {
        for (const o of core.store.list(table, t.namespace)) if (matches(o)) send("ADDED", present(o));
      } else {
        const rv = Number(rvParam);
        const events = Number.isFinite(rv) ? core.store.eventsSince(table, rv) : "gone";
        if (events === "gone") {
          send("ERROR", {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: `too old resource version: ${rvParam} (${core.store.oldestWatchableRevision})`,
            reason: "Expired",
            code: 410,
          });
          close();
          return;
        }
        for (const e of events) onEvent(e);
      }
      unsubscribe = core.store.subscribe({ table, onEvent });
      untrack = ctx.faults.trackWatch(close);
      if (bookmarks) {
        const tick = () => {
          send("BOOKMARK", {
            kind: type.kind,
            apiVersion: apiVersionOf(type.group, t.version),
            metadata: {
              resourceVersion: String(core.store.currentRevision),
              annotations: { "k8s.io/initial-events-end": "true" },
            },
          });
          later(tick, ctx.bookmarkIntervalMs);
        };
        later(tick, ctx.bookmarkIntervalMs);
      }
      if (timeoutSeconds !== undefined && timeoutSeconds > 0) later(close, timeoutSeconds * 1000);
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, { status: 200, headers: { ...JSON_HEADERS, "transfer-encoding": "chunked" } });
}
