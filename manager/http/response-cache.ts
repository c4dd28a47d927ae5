/**
 * A cache of whole responses to the API's plain reads (a tenant, a project, an app, a project's apps). Such a
 * response is a function of the request's path and query and of a few tables' rows — not of the caller, whose
 * token and authorization are checked on every request — so once it has been answered it can be answered again,
 * byte for byte, until one of those tables' write clocks moves (the same clocks as the store's read cache:
 * `Store.versions`, SQLite only). A hit skips routing, validation, the handler and serialization; a miss, or
 * anything unusual (no remembered token, a refused caller, tracing on), goes the full way through the app,
 * which answers exactly as it would without the cache.
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "../../shared/logger.ts";
import { tracingEnabled } from "../../shared/tracing.ts";
import type { ManagerMetrics } from "../metrics.ts";
import type { TableVersions } from "../store/sql-driver.ts";
import { authorize, type OperationId } from "./authz.ts";
import type { AppEnv, TokenVerifier } from "./context.ts";
import { bearerToken, frozenBodyText, logRequest, requestIdFor } from "./middleware.ts";

/**
 * The operations whose 200 response depends on nothing but the path, the query and these tables (what their
 * handlers read; `tests/http/response-cache.test.ts` writes each table and reads again).
 */
export const CACHEABLE_READS: Partial<Record<OperationId, readonly string[]>> = {
  getTenant: ["tenants"],
  getProject: ["projects"],
  getApp: ["apps"],
  listApps: ["projects", "apps"],
};

interface Entry {
  operation: OperationId;
  params: { tenant?: string; project?: string };
  tables: readonly string[];
  stamp: readonly number[];
  body: string;
  /** Response headers other than X-Request-Id (Content-Type, ETag). */
  headers: Readonly<Record<string, string>>;
  /** What the access line and metrics say: the decoded path and the route template. */
  path: string;
  route: string;
}

/** Path and query of a request URL: the cache key (the host plays no part in a response). */
function keyOf(url: string): string {
  return url.slice(url.indexOf("/", url.indexOf("//") + 2));
}

export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    private readonly versions: TableVersions,
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  /** The tables' clocks now: taken before the handler reads, so a write racing it leaves a stale entry. */
  stamp(tables: readonly string[]): number[] {
    return tables.map((table) => this.versions.version(table));
  }

  lookup(url: string): Entry | undefined {
    const key = keyOf(url);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    for (let i = 0; i < entry.tables.length; i++) {
      if (this.versions.version(entry.tables[i]!) !== entry.stamp[i]) {
        this.remove(key, entry);
        return undefined;
      }
    }
    return entry;
  }

  store(url: string, entry: Entry): void {
    const key = keyOf(url);
    const size = entry.body.length + key.length;
    if (size > this.maxBytes / 16) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) this.remove(key, previous);
    for (const [oldest, old] of this.entries) {
      if (this.bytes + size <= this.maxBytes) break;
      this.remove(oldest, old);
    }
    this.entries.set(key, entry);
    this.bytes += size;
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.body.length + key.length;
  }

  /** Route middleware of a cacheable operation: keeps its 200 response (a frozen body's JSON) for next time. */
  fill(operation: OperationId, tables: readonly string[]): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      const stamp = this.stamp(tables);
      await next();
      if (c.res.status !== 200 || c.req.method !== "GET") return;
      const body = frozenBodyText(c);
      if (body === undefined) return;
      const headers: Record<string, string> = {};
      for (const [name, value] of c.res.headers) if (name !== "x-request-id") headers[name] = value;
      this.store(c.req.url, {
        operation,
        params: { tenant: c.req.param("tenant"), project: c.req.param("project") },
        tables,
        stamp,
        body,
        headers,
        path: c.req.path,
        route: routePath(c),
      });
    };
  }

  /**
   * The cached answer to `request`, with the caller checked as the app checks it (a remembered token, the
   * operation's authorization); undefined whenever the app itself should answer.
   */
  answer(
    request: Request,
    deps: { verifier: TokenVerifier; logger: Logger; metrics?: ManagerMetrics | undefined },
  ): Response | undefined {
    // With a tracing SDK every request gets its server span: the app makes it.
    if (request.method !== "GET" || tracingEnabled()) return undefined;
    const entry = this.lookup(request.url);
    if (entry === undefined) return undefined;
    const started = performance.now();
    const authorization = request.headers.get("authorization");
    const token = authorization === null ? null : bearerToken(authorization);
    const principal = token === null ? undefined : deps.verifier.peek?.(token);
    if (principal === undefined) return undefined;
    try {
      authorize(principal, entry.operation, entry.params);
    } catch {
      return undefined; // the app answers the 403/404, as it always does
    }
    const requestId = requestIdFor(request.headers.get("x-request-id"));
    // A plain object: a Headers instance built per response cost more than the lookup above.
    const response = new Response(entry.body, {
      status: 200,
      headers: { ...entry.headers, "x-request-id": requestId },
    });
    logRequest(deps.logger, deps.metrics, {
      requestId,
      method: "GET",
      route: entry.route,
      path: entry.path,
      status: 200,
      started,
      principal,
    });
    return response;
  }
}
