/**
 * Kubernetes `Status` errors. Every failure the server returns is one of these, shaped like the real
 * apiserver's `metav1.Status` so clients (`@kubernetes/client-node`, kubectl) parse reason and code.
 */

export type StatusReason =
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "Forbidden"
  | "Unauthorized"
  | "Gone"
  | "Expired"
  | "TooManyRequests"
  | "BadRequest"
  | "MethodNotAllowed"
  | "UnsupportedMediaType"
  | "InternalError";

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusObject {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Failure" | "Success";
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

const CODES: Record<StatusReason, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 422,
  Forbidden: 403,
  Unauthorized: 401,
  Gone: 410,
  Expired: 410,
  TooManyRequests: 429,
  BadRequest: 400,
  MethodNotAllowed: 405,
  UnsupportedMediaType: 415,
  InternalError: 500,
};

/** An error that the HTTP layer turns into a `Status` body with the matching code. */
export class ApiError extends Error {
  readonly reason: StatusReason;
  readonly code: number;
  readonly details: StatusDetails | undefined;

  constructor(reason: StatusReason, message: string, details?: StatusDetails, code?: number) {
    super(message);
    this.reason = reason;
    this.code = code ?? CODES[reason];
    this.details = details;
  }

  toStatus(): StatusObject {
    const status: StatusObject = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    return status;
  }
}

/** Identifies a resource in messages: `pods`, `deployments.apps`, `tenants.capsule.clastix.io`. */
export interface ResourceName {
  group: string;
  resource: string;
  kind: string;
}

function qualified(r: ResourceName): string {
  return r.group === "" ? r.resource : `${r.resource}.${r.group}`;
}

export function notFound(r: ResourceName, name: string): ApiError {
  return new ApiError("NotFound", `${qualified(r)} "${name}" not found`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

export function alreadyExists(r: ResourceName, name: string): ApiError {
  return new ApiError("AlreadyExists", `${qualified(r)} "${name}" already exists`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

export function conflict(r: ResourceName, name: string, why: string): ApiError {
  return new ApiError("Conflict", `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

/** 422 with one cause per field, message formatted like apimachinery's `NewInvalid`. */
export function invalid(r: ResourceName, name: string, causes: StatusCause[]): ApiError {
  const groupKind = r.group === "" ? r.kind : `${r.kind}.${r.group}`;
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const joined = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  return new ApiError("Invalid", `${groupKind} "${name}" is invalid: ${joined}`, {
    name,
    group: r.group,
    kind: r.kind,
    causes,
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError("BadRequest", message);
}
