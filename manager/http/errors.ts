/**
 * The one place KubeNova error codes become HTTP: `{ error: { code, message, requestId, details? } }`.
 * Covers zod validation (defaultHook), Hono's own HTTPExceptions (malformed JSON, body limit) and crashes.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import {
  ERROR_CODES,
  type ErrorCode,
  type FieldIssue,
  isKubeNovaError,
  KubeNovaError,
} from "../../shared/errors.ts";
import type { AppEnv } from "./context.ts";

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: FieldIssue[]) {
  return { error: { code, message, requestId, ...(details && details.length > 0 ? { details } : {}) } };
}

export function respondError(c: Context<AppEnv>, error: KubeNovaError): Response {
  const status = ERROR_CODES[error.code].status;
  // RFC 9110 §11.6.1: every 401 carries a challenge, also for a token that was present but invalid (RFC 6750 §3).
  if (error.code === "KN-401") {
    const presented = c.req.header("authorization") !== undefined;
    c.header("WWW-Authenticate", `Bearer realm="kubenova"${presented ? ', error="invalid_token"' : ""}`);
  }
  if (error.code === "KN-429" && typeof error.context.retryAfterSeconds === "number") {
    c.header("Retry-After", String(error.context.retryAfterSeconds));
  }
  return c.json(
    errorBody(error.code, error.message, c.get("requestId") ?? "unknown", error.details),
    status as 400,
  );
}

const TARGET_PREFIX: Record<string, string> = {
  query: "query.",
  param: "path.",
  header: "header.",
  json: "",
};

/** Zod issues → field paths a user can act on (`spec.components.0.name`, `query.limit`). */
export function zodIssues(error: ZodError, target: string): FieldIssue[] {
  const prefix = TARGET_PREFIX[target] ?? "";
  return error.issues.flatMap((issue) => {
    const base = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: `${prefix}${base ? `${base}.` : ""}${key}`,
        message: "unknown field",
      }));
    }
    return [{ path: `${prefix}${base}` || (target === "json" ? "body" : target), message: issue.message }];
  });
}

export function validationError(error: ZodError, target: string): KubeNovaError {
  const details = zodIssues(error, target);
  const summary = details
    .slice(0, 5)
    .map((d) => `${d.path}: ${d.message}`)
    .join("; ");
  const what = target === "json" ? "request body" : target === "param" ? "path" : target;
  return new KubeNovaError("KN-400", `invalid ${what}: ${summary}`, { details });
}

/** `app.onError`: every thrown thing becomes a KubeNova error body; unknown errors are logged, never leaked. */
export function handleError(error: Error, c: Context<AppEnv>): Response {
  if (isKubeNovaError(error)) return respondError(c, error);
  if (error instanceof HTTPException) {
    const status = error.status;
    if (status === 413) {
      return respondError(c, new KubeNovaError("KN-413", "request body exceeds the size limit"));
    }
    if (status === 415) {
      return respondError(c, new KubeNovaError("KN-415", "request body must be application/json"));
    }
    if (status === 400) {
      return respondError(
        c,
        new KubeNovaError("KN-400", `body: malformed JSON (${error.message})`, {
          details: [{ path: "body", message: "malformed JSON" }],
        }),
      );
    }
    if (status === 401) return respondError(c, new KubeNovaError("KN-401", error.message));
    const code = `KN-${status}` as ErrorCode;
    if (code in ERROR_CODES) return respondError(c, new KubeNovaError(code, error.message));
  }
  c.get("logger")?.error("unhandled error", { err: error });
  return respondError(
    c,
    new KubeNovaError("KN-500", "internal error; see the Manager log for this request id"),
  );
}
