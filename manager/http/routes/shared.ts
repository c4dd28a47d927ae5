/** Helpers for declaring routes: JSON responses, the error responses, row → API model mappers. */
import { z } from "zod";
import { ErrorBody } from "../../../shared/api/common.ts";
import type { ERROR_CODES } from "../../../shared/errors.ts";
import type { AppRow, ClusterRow, PlanRow, PolicySetRow, ProjectRow, TenantRow } from "../../store/store.ts";

export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

export function body<T extends z.ZodType>(schema: T, description = "JSON body") {
  return { body: { required: true, description, content: { "application/json": { schema } } } };
}

/** An optional body: operations such as suspend/resume accept `{}` or nothing. */
export function optionalBody<T extends z.ZodType>(schema: T, description = "JSON body (optional)") {
  return { body: { required: false, description, content: { "application/json": { schema } } } };
}

type Status = (typeof ERROR_CODES)[keyof typeof ERROR_CODES]["status"];

const ERROR_DESCRIPTIONS: Partial<Record<Status, string>> = {
  400: "Invalid input (KN-400); `details` names each field",
  401: "Missing or invalid token (KN-401)",
  403: "Role not allowed (KN-403)",
  404: "Not found, or outside the caller's tenant (KN-404)",
  409: "Conflict (KN-409)",
  412: "If-Match does not match the current ETag (KN-412)",
  413: "Body too large (KN-413)",
  415: "Body is not JSON (KN-415)",
  422: "Semantically invalid: unknown references, revisions, capabilities (KN-422)",
  503: "Store unavailable (KN-503)",
};

export function errorResponses<S extends Status>(...statuses: S[]) {
  const base = [400, 401, 500] as const;
  const out: Record<
    number,
    { description: string; content: { "application/json": { schema: typeof ErrorBody } } }
  > = {};
  for (const status of [...base, ...statuses]) {
    out[status] = json(ErrorBody, ERROR_DESCRIPTIONS[status as Status] ?? "Internal error (KN-500)");
  }
  return out as Record<S | 400 | 401 | 500, ReturnType<typeof json<typeof ErrorBody>>>;
}

export const WRITE_ERRORS = [403, 404, 409, 412, 413, 415, 422] as const;

export const IfMatchHeader = z.object({
  "if-match": z
    .string()
    .optional()
    .meta({ description: 'ETag from a previous GET (e.g. "3"); 412 if stale' }),
});
export const IdempotencyHeader = z.object({
  "idempotency-key": z
    .string()
    .optional()
    .meta({ description: "Retry-safe creation: the same key and body answer the first response again" }),
});

export function toCluster(row: ClusterRow) {
  const { kubeconfigCiphertext, ...rest } = row;
  return { ...rest, hasKubeconfig: kubeconfigCiphertext !== null };
}

export const toTenant = (row: TenantRow) => row;
export const toProject = (row: ProjectRow) => row;
export const toApp = (row: AppRow) => row;
export const toPlan = (row: PlanRow) => row;
export const toPolicySet = (row: PolicySetRow) => row;
