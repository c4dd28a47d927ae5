/**
 * @module shared/errors — the closed list of KubeNova error codes and the one error type every process throws.
 * Only the HTTP edge (manager/http) maps a code to a status; everything else speaks in codes.
 */

/** Every error code KubeNova can emit. Adding one is a contract change. */
export const ERROR_CODES = {
  "KN-400": { status: 400, title: "Bad request" },
  "KN-401": { status: 401, title: "Unauthenticated" },
  "KN-403": { status: 403, title: "Forbidden" },
  "KN-404": { status: 404, title: "Not found" },
  "KN-405": { status: 405, title: "Method not allowed" },
  "KN-409": { status: 409, title: "Conflict" },
  "KN-412": { status: 412, title: "Precondition failed" },
  "KN-413": { status: 413, title: "Payload too large" },
  "KN-415": { status: 415, title: "Unsupported media type" },
  "KN-422": { status: 422, title: "Unprocessable" },
  "KN-429": { status: 429, title: "Too many requests" },
  "KN-500": { status: 500, title: "Internal error" },
  "KN-503": { status: 503, title: "Unavailable" },
  "KN-504": { status: 504, title: "Timed out" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem with one field of an input, e.g. `{ path: "spec.components.0.name", message: "..." }`. */
export interface FieldIssue {
  path: string;
  message: string;
}

export interface KubeNovaErrorOptions {
  retryable?: boolean;
  context?: Record<string, unknown>;
  details?: FieldIssue[];
  cause?: unknown;
}

export class KubeNovaError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly context: Record<string, unknown>;
  readonly details: FieldIssue[] | undefined;

  constructor(code: ErrorCode, message: string, options: KubeNovaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KubeNovaError";
    this.code = code;
    this.retryable = options.retryable ?? (code === "KN-503" || code === "KN-504" || code === "KN-429");
    this.context = options.context ?? {};
    this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isKubeNovaError(error: unknown): error is KubeNovaError {
  return error instanceof KubeNovaError;
}

/** Shorthands for the codes thrown most often. */
export const errors = {
  badRequest: (message: string, details?: FieldIssue[]) => new KubeNovaError("KN-400", message, { details }),
  notFound: (kind: string, name: string) => new KubeNovaError("KN-404", `${kind} "${name}" not found`),
  conflict: (message: string) => new KubeNovaError("KN-409", message),
  forbidden: (message = "this role may not perform this operation") => new KubeNovaError("KN-403", message),
  unauthenticated: (message = "a valid bearer token is required") => new KubeNovaError("KN-401", message),
  preconditionFailed: (message: string) => new KubeNovaError("KN-412", message),
  unprocessable: (message: string, details?: FieldIssue[]) =>
    new KubeNovaError("KN-422", message, { details }),
  unavailable: (message: string, context?: Record<string, unknown>) =>
    new KubeNovaError("KN-503", message, { retryable: true, context }),
};
