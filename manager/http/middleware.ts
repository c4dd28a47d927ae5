/** Cross-cutting HTTP middleware: request ids and logs, body limits, content types, authentication. */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { Role } from "../../shared/api/models.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import { inSpan, SpanKind, tracingEnabled } from "../../shared/tracing.ts";
import type { ManagerMetrics } from "../metrics.ts";
import type { AppEnv, Principal, TokenVerifier } from "./context.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * JSON text of frozen response bodies. The store's read cache hands out deep-frozen rows and pages that cannot
 * change, so their serialization can be kept with them; it goes when they do (a WeakMap entry).
 */
const serializedBodies = new WeakMap<object, string>();

const originalJson = Symbol("c.json before serializeFrozen");
const answeredText = Symbol("the JSON text frozenJson answered");

/** The JSON text a frozen body was answered with, if the response was one (for the response cache). */
export function frozenBodyText(c: Context<AppEnv>): string | undefined {
  return (c as unknown as Record<symbol, string | undefined>)[answeredText];
}

/** `c.json` that answers a frozen body with its kept JSON text (one shared function: `this` is the context). */
function frozenJson(this: Context<AppEnv>, object: unknown, ...rest: unknown[]): Response {
  if (object === null || typeof object !== "object" || !Object.isFrozen(object)) {
    return (this as unknown as Record<symbol, (...args: unknown[]) => Response>)[originalJson]!(
      object,
      ...rest,
    );
  }
  let text = serializedBodies.get(object);
  if (text === undefined) {
    text = JSON.stringify(object);
    serializedBodies.set(object, text);
  }
  (this as unknown as Record<symbol, string>)[answeredText] = text;
  this.header("Content-Type", "application/json");
  return (this.body as (...args: unknown[]) => Response)(text, ...rest);
}

function serializeFrozen(c: Context<AppEnv>): void {
  (c as unknown as Record<symbol, unknown>)[originalJson] = c.json;
  c.json = frozenJson as typeof c.json;
}

export function requestContext(logger: Logger, metrics?: ManagerMetrics): MiddlewareHandler<AppEnv> {
  const inRequestSpan = (c: Context<AppEnv>, next: () => Promise<void>, requestId: string) =>
    inSpan(
      `${c.req.method} ${c.req.path}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": c.req.method } },
      async (span) => {
        await next();
        // Name by route template, never the raw path (tenant names are not span names).
        span.updateName(`${c.req.method} ${routePath(c) || "unmatched"}`);
        span.setAttribute("http.response.status_code", c.res.status);
        span.setAttribute("kubenova.request_id", requestId);
      },
    );
  return async (c, next) => {
    const requestId = requestIdFor(c.req.header("x-request-id"));
    const log = logger.child({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("logger", log);
    serializeFrozen(c);
    c.header("X-Request-Id", requestId);
    const started = performance.now();
    // Without a tracing SDK there is no span to make: straight on (shared/tracing.ts).
    if (tracingEnabled()) await inRequestSpan(c, next, requestId);
    else await next();
    logRequest(log, metrics, {
      method: c.req.method,
      route: routePath(c),
      path: c.req.path,
      status: c.res.status,
      started,
      principal: c.get("principal"),
    });
  };
}

/** The caller's `X-Request-Id` when it is a sane one, a new UUIDv7 otherwise. */
export function requestIdFor(incoming: string | undefined | null): string {
  return incoming && REQUEST_ID.test(incoming) ? incoming : uuidv7();
}

/**
 * A request's access line (level info) and metrics, by route template: one series per route, not per name.
 * `requestId` is for a logger without it bound (the line is the same as a child logger's with it bound).
 */
export function logRequest(
  log: Logger,
  metrics: ManagerMetrics | undefined,
  request: {
    requestId?: string;
    method: string;
    route: string;
    path: string;
    status: number;
    started: number;
    principal: Principal | undefined;
  },
): void {
  const elapsedMs = performance.now() - request.started;
  metrics?.observeRequest(request.method, request.route || "unmatched", request.status, elapsedMs / 1000);
  log.info("request", {
    request_id: request.requestId,
    method: request.method,
    path: request.path,
    status: request.status,
    duration_ms: Math.round(elapsedMs * 100) / 100,
    subject: request.principal?.subject,
    tenant: request.principal?.tenant ?? undefined,
  });
}

/**
 * The body limit and the JSON check as one step that a GET or HEAD passes straight through: they have no body
 * to read (Bun's `request.body` getter alone makes a stream), and one middleware hop fewer per read.
 */
export function checkBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  const limit = limitBody(maxBytes);
  const json = requireJson();
  return (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return next();
    return limit(c, async () => {
      await json(c, next);
    });
  };
}

export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new KubeNovaError("KN-413", `request body exceeds ${maxBytes} bytes`);
    },
  });
}

const isJsonType = (type: string) =>
  type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);

/**
 * Bodies must be JSON (415 otherwise). An empty body counts as `{}`, so operations that take no input (suspend,
 * resume, deploy) work with or without one. Runs after the body limit, so reading the body here is bounded.
 */
export function requireJson(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (["POST", "PUT", "PATCH"].includes(c.req.method)) {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      const text = await c.req.text();
      if (text.trim() === "") {
        c.req.raw = new Request(c.req.raw.url, {
          method: c.req.method,
          headers: { ...Object.fromEntries(c.req.raw.headers), "content-type": "application/json" },
          body: "{}",
        });
        c.req.bodyCache = {};
      } else if (!isJsonType(type)) {
        throw new KubeNovaError(
          "KN-415",
          `content-type must be application/json, not ${JSON.stringify(type || "(none)")}`,
        );
      }
    }
    await next();
  };
}

function devPrincipal(header: string, subject: string | undefined): Principal {
  // `X-KN-Roles: tenantOwner; tenant=acme; project=web`
  const [roleText, ...pairs] = header.split(";").map((s) => s.trim());
  const role = Role.safeParse(roleText);
  if (!role.success)
    throw new KubeNovaError("KN-401", `X-KN-Roles: unknown role ${JSON.stringify(roleText)}`);
  const attrs = Object.fromEntries(pairs.map((p) => p.split("=").map((s) => s.trim()) as [string, string]));
  return {
    subject: subject ?? "dev",
    role: role.data,
    tenant: attrs.tenant ?? null,
    project: attrs.project ?? null,
    expiresAt: null,
    tokenId: null,
  };
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1); null for any other form. */
export function bearerToken(authorization: string): string | null {
  const match = BEARER.exec(authorization);
  return match ? match[1]! : null;
}

export function authenticate(options: {
  verifier: TokenVerifier;
  insecureDevAuth: boolean;
  logger: Logger;
  /**
   * Routes that authenticate themselves with another credential (the bootstrap token, a proof of possession):
   * no principal is set and no JWT is looked at — those routes refuse one on their own.
   */
  skip?: (method: string, path: string) => boolean;
}): MiddlewareHandler<AppEnv> {
  if (options.insecureDevAuth) {
    options.logger.warn(
      "INSECURE DEV AUTH IS ON: X-KN-Roles headers are trusted without a token; never use in production",
    );
  }
  return async (c, next) => {
    if (options.skip?.(c.req.method, c.req.path)) return next();
    const authorization = c.req.header("authorization");
    if (authorization) {
      const token = bearerToken(authorization);
      if (token === null) throw new KubeNovaError("KN-401", "Authorization header must be 'Bearer <token>'");
      c.set("principal", await options.verifier.verify(token));
    } else if (options.insecureDevAuth && c.req.header("x-kn-roles")) {
      c.get("logger").warn("request authenticated by X-KN-Roles (insecure dev mode)");
      c.set("principal", devPrincipal(c.req.header("x-kn-roles")!, c.req.header("x-kn-subject")));
    } else {
      c.header("WWW-Authenticate", 'Bearer realm="kubenova"');
      throw new KubeNovaError("KN-401", "a bearer token is required (Authorization: Bearer <token>)");
    }
    await next();
  };
}
