/** Small HTTP conventions shared by every route: ETags, If-Match, Idempotency-Key, actors, pages. */
import type { Context } from "hono";
import { DEFAULT_PAGE_LIMIT } from "../../shared/api/common.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Actor, ServiceDeps } from "../services/context.ts";
import type { AppEnv } from "./context.ts";

export function actorOf(c: Context<AppEnv>): Actor {
  const p = c.get("principal");
  return {
    subject: p.subject,
    role: p.role,
    tenant: p.tenant,
    project: p.project,
    requestId: c.get("requestId"),
  };
}

export const etagOf = (version: number) => `"${version}"`;

export function setEtag(c: Context<AppEnv>, version: number): void {
  c.header("ETag", etagOf(version));
}

/**
 * `If-Match` → the version an update must find (RFC 9110 §13.1.1). `*` or absent means any version.
 * A malformed value is a 400 naming the header; a stale one becomes KN-412 in the service.
 */
export function expectedVersion(c: Context<AppEnv>): number | undefined {
  const header = c.req.header("if-match");
  if (header === undefined || header.trim() === "*") return undefined;
  const match = header.trim().match(/^(?:W\/)?"(\d{1,15})"$/);
  if (!match) {
    throw new KubeNovaError("KN-400", 'If-Match: must be an ETag such as "3" as returned by GET', {
      details: [{ path: "header.if-match", message: "malformed ETag" }],
    });
  }
  return Number(match[1]);
}

export function pageRequest(query: { limit?: number; cursor?: string }) {
  return { limit: query.limit ?? DEFAULT_PAGE_LIMIT, ...(query.cursor ? { cursor: query.cursor } : {}) };
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Buffer.from(digest).toString("hex");
}

/**
 * Runs a creating POST at most once per (caller, route, Idempotency-Key): a retry with the same key and body
 * gets the first response again (`Idempotent-Replayed: true`); the same key with another body is a 422.
 */
export async function idempotent<T extends object, S extends 200 | 201 | 202>(
  c: Context<AppEnv>,
  deps: Pick<ServiceDeps, "store" | "clock">,
  run: () => Promise<{ status: S; body: T; etag?: number }>,
) {
  const key = c.req.header("idempotency-key");
  if (key === undefined) {
    const result = await run();
    if (result.etag !== undefined) setEtag(c, result.etag);
    return c.json(result.body, result.status);
  }
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new KubeNovaError("KN-400", "Idempotency-Key: must be 1–255 printable ASCII characters", {
      details: [{ path: "header.idempotency-key", message: "invalid key" }],
    });
  }
  const scope = `${c.get("principal").subject}|${c.req.method} ${c.req.path}`;
  const requestHash = await sha256Hex(await c.req.text());
  const previous = await deps.store.idempotency.get(scope, key);
  const fresh = previous && Date.parse(previous.createdAt) > deps.clock().getTime() - IDEMPOTENCY_TTL_MS;
  if (previous && fresh) {
    if (previous.requestHash !== requestHash) {
      throw new KubeNovaError("KN-422", "Idempotency-Key was already used with a different request body", {
        details: [{ path: "header.idempotency-key", message: "reused with a different body" }],
      });
    }
    c.header("Idempotent-Replayed", "true");
    const replayed = JSON.parse(previous.body) as T;
    // The replay answers exactly like the first response did, ETag included.
    const version = (replayed as { version?: unknown }).version;
    if (typeof version === "number") setEtag(c, version);
    return c.json(replayed, previous.status as S);
  }
  if (previous)
    await deps.store.idempotency.expire(new Date(deps.clock().getTime() - IDEMPOTENCY_TTL_MS).toISOString());
  const result = await run();
  const body = JSON.stringify(result.body);
  await deps.store.idempotency.put({
    scope,
    key,
    requestHash,
    status: result.status,
    body,
    createdAt: deps.clock().toISOString(),
  });
  if (result.etag !== undefined) setEtag(c, result.etag);
  return c.json(result.body, result.status);
}
