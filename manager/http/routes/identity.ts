/** `/api/v1/me`, `/api/v1/tokens`, `/api/v1/audit`: who am I, tokens within my authority, the audit trail. */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { ErrorBody, PageQuery, pageOf, TenantName } from "../../../shared/api/common.ts";
import { AuditEntry, Me, TokenRequest, TokenResponse } from "../../../shared/api/models.ts";
import { KubeNovaError } from "../../../shared/errors.ts";
import { canIssue } from "../../auth/roles.ts";
import { audit } from "../../services/context.ts";
import { requireAccess } from "../authz.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { actorOf, pageRequest } from "../helpers.ts";
import { body, errorResponses, json } from "./shared.ts";

const security = [{ bearerAuth: [] }];
const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** Token issuance per caller subject: a burst of 20, then one every 3 s (a leaked token cannot mint thousands). */
const TOKEN_ISSUE_BURST = 20;
const TOKEN_ISSUE_REFILL_MS = 3000;
/** Bounds the limiter's memory; the oldest subjects are forgotten first (they get a fresh bucket). */
const TOKEN_ISSUE_MAX_SUBJECTS = 10_000;

/** A token bucket per subject on the injected clock; `take` answers the seconds to wait when it is empty. */
function createIssueLimiter(clock: () => Date) {
  const buckets = new Map<string, { tokens: number; atMs: number }>();
  return {
    take(subject: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
      const nowMs = clock().getTime();
      const previous = buckets.get(subject);
      const bucket = previous ?? { tokens: TOKEN_ISSUE_BURST, atMs: nowMs };
      const refilled = Math.max(0, nowMs - bucket.atMs) / TOKEN_ISSUE_REFILL_MS;
      bucket.tokens = Math.min(TOKEN_ISSUE_BURST, bucket.tokens + refilled);
      bucket.atMs = nowMs;
      buckets.delete(subject); // re-insert: Map order is the eviction order (least recently used first)
      buckets.set(subject, bucket);
      if (buckets.size > TOKEN_ISSUE_MAX_SUBJECTS) buckets.delete(buckets.keys().next().value as string);
      if (bucket.tokens < 1) {
        return {
          ok: false,
          retryAfterSeconds: Math.ceil(((1 - bucket.tokens) * TOKEN_ISSUE_REFILL_MS) / 1000),
        };
      }
      bucket.tokens -= 1;
      return { ok: true };
    },
  };
}

export function registerIdentityRoutes(app: ManagerApp, services: AppServices): void {
  const issueLimiter = createIssueLimiter(services.clock);
  app.openapi(
    createRoute({
      operationId: "getMe",
      method: "get",
      path: "/api/v1/me",
      tags: ["identity"],
      security,
      summary: "The caller's identity and scope",
      middleware: [requireAccess("getMe")] as const,
      responses: { 200: json(Me, "Who the token stands for"), ...errorResponses() },
    }),
    async (c) => {
      const p = c.get("principal");
      return c.json(
        {
          subject: p.subject,
          role: p.role,
          tenant: p.tenant,
          project: p.project,
          expiresAt: p.expiresAt?.toISOString() ?? null,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "issueToken",
      method: "post",
      path: "/api/v1/tokens",
      tags: ["identity"],
      security,
      summary: "Issue a token within the caller's own authority",
      description:
        "The role must be one the caller may grant, the scope no wider than the caller's, and the token may not outlive the caller's.",
      middleware: [requireAccess("issueToken")] as const,
      request: body(TokenRequest),
      responses: {
        201: json(TokenResponse, "The new token"),
        ...errorResponses(403, 413, 415),
        429: json(ErrorBody, "Too many tokens issued for this subject (KN-429); wait Retry-After seconds"),
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const principal = c.get("principal");
      const now = services.clock();
      const allowed = issueLimiter.take(principal.subject);
      if (!allowed.ok) {
        throw new KubeNovaError("KN-429", "too many tokens issued for this subject; retry later", {
          context: { retryAfterSeconds: allowed.retryAfterSeconds },
        });
      }
      // Audit records name token subjects, so only admins may mint tokens for someone else.
      if (input.subject !== undefined && input.subject !== principal.subject && principal.role !== "admin") {
        throw new KubeNovaError("KN-403", "subject: only an admin may issue a token for another subject", {
          details: [{ path: "subject", message: "must be the caller's own subject" }],
        });
      }
      const remainingSeconds = principal.expiresAt
        ? Math.floor((principal.expiresAt.getTime() - now.getTime()) / 1000)
        : Number.POSITIVE_INFINITY;
      const ttlSeconds =
        input.ttlSeconds ?? Math.max(60, Math.min(DEFAULT_TOKEN_TTL_SECONDS, remainingSeconds));
      const decision = canIssue(principal, { ...input, ttlSeconds }, now);
      if (!decision.ok) throw new KubeNovaError("KN-403", decision.reason);
      const subject = input.subject ?? principal.subject;
      const signed = await services.signer.sign({
        subject,
        role: input.role,
        tenant: input.tenant,
        project: input.project,
        ttlSeconds,
      });
      await audit(services.store, services, actorOf(c), {
        action: "token.issue",
        resource: `tokens/${subject}`,
        tenant: input.tenant ?? null,
        details: { role: input.role, project: input.project ?? null, ttlSeconds },
      });
      return c.json(
        {
          token: signed.token,
          expiresAt: signed.expiresAt.toISOString(),
          role: input.role,
          tenant: input.tenant ?? null,
          project: input.project ?? null,
        },
        201,
      );
    },
  );

  app.openapi(
    createRoute({
      operationId: "listAudit",
      method: "get",
      path: "/api/v1/audit",
      tags: ["identity"],
      security,
      summary: "The audit trail, newest first",
      middleware: [requireAccess("listAudit")] as const,
      request: {
        query: PageQuery.extend({
          tenant: TenantName.optional(),
          actor: z.string().max(256).optional(),
        }).strict(),
      },
      responses: {
        200: json(pageOf(AuditEntry, "AuditPage"), "A page of audit entries"),
        ...errorResponses(403),
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const page = await services.store.audit.list(
        { ...(query.tenant ? { tenant: query.tenant } : {}), ...(query.actor ? { actor: query.actor } : {}) },
        pageRequest(query),
      );
      return c.json(page, 200);
    },
  );
}
