/** Cross-cutting HTTP middleware: request ids and logs, body limits, content types, authentication. */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { Role } from "../../shared/api/models.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import { inSpan, SpanKind } from "../../shared/tracing.ts";
import type { ManagerMetrics } from "../metrics.ts";
import type { AppEnv, Principal, TokenVerifier } from "./context.ts";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * JSON text of frozen response bodies. The store's read cache hands out deep-frozen rows and pages that cannot
 * change, so their serialization can be kept with them; it goes when they do (a WeakMap entry).
 */
const serializedBodies = new WeakMap<object, string>();

function serializeFrozen(c: Context<AppEnv>): void {
  const json = c.json.bind(c);
  c.json = ((object: unknown, ...rest: unknown[]) => {
    if (object === null || typeof object !== "object" || !Object.isFrozen(object)) {
      return (json as (...args: unknown[]) => Response)(object, ...rest);
    }
    let text = serializedBodies.get(object);
    if (text === undefined) {
      text = JSON.stringify(object);
      serializedBodies.set(object, text);
    }
    c.header("Content-Type", "application/json");
    return (c.body as (...args: unknown[]) => Response)(text, ...rest);
  }) as typeof c.json;
}

export function requestContext(logger: Logger, metrics?: ManagerMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : uuidv7();
    const log = logger.child({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("logger", log);
    serializeFrozen(c);
    c.header("X-Request-Id", requestId);
    const started = performance.now();
    await inSpan(
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
    const principal = c.get("principal");
    // The route template, never the raw path: one series per route, not per tenant name.
    metrics?.observeRequest(
      c.req.method,
      routePath(c) || "unmatched",
      c.res.status,
      (performance.now() - started) / 1000,
    );
    log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      subject: principal?.subject,
      tenant: principal?.tenant ?? undefined,
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
      const match = authorization.match(/^Bearer\s+(\S+)\s*$/i);
      if (!match) throw new KubeNovaError("KN-401", "Authorization header must be 'Bearer <token>'");
      c.set("principal", await options.verifier.verify(match[1]!));
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
