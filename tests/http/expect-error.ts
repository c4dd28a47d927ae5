/** Assertions on KubeNova error responses, shared by the HTTP suites. */
import { expect } from "bun:test";

interface Response {
  status: number;
  body: unknown;
  headers: Headers;
}

interface ErrorBodyShape {
  code: string;
  message: string;
  requestId: string;
  details?: Array<{ path: string; message: string }>;
}

/**
 * Checks that `res` is exactly `{ error: { code, message, requestId, details? } }` with the given status and code,
 * that `requestId` is the `X-Request-Id` header, and — when `field` is given — that `details[].path` (or, for
 * errors without details, the message) names that field. Returns the error object for further checks.
 */
export function expectError(res: Response, status: number, code: string, field?: string): ErrorBodyShape {
  const context = `${status} ${code} ${field ?? ""}: got ${res.status} ${JSON.stringify(res.body)}`;
  expect(res.status, context).toBe(status);
  expect(res.headers.get("content-type") ?? "", context).toContain("application/json");
  expect(typeof res.body === "object" && res.body !== null, context).toBe(true);
  expect(Object.keys(res.body as object), context).toEqual(["error"]);
  const error = (res.body as { error: ErrorBodyShape }).error;
  for (const key of Object.keys(error)) {
    expect(["code", "message", "requestId", "details"], context).toContain(key);
  }
  expect(error.code, context).toBe(code);
  expect(typeof error.message, context).toBe("string");
  expect(error.message.length, context).toBeGreaterThan(0);
  expect(error.requestId, context).toBe(res.headers.get("x-request-id") ?? "missing X-Request-Id");
  if (error.details !== undefined) {
    expect(Array.isArray(error.details), context).toBe(true);
    expect(error.details.length, context).toBeGreaterThan(0);
    for (const detail of error.details) {
      expect(Object.keys(detail).sort(), context).toEqual(["message", "path"]);
      expect(typeof detail.path, context).toBe("string");
      expect(typeof detail.message, context).toBe("string");
    }
  }
  if (field !== undefined) {
    const named = error.details ? error.details.some((d) => d.path === field) : error.message.includes(field);
    expect(named, `${context} — expected the error to name ${field}`).toBe(true);
  }
  return error;
}

/** The `details[].path` values of an error response. */
export function errorPaths(res: Response): string[] {
  const error = (res.body as { error?: ErrorBodyShape }).error;
  return (error?.details ?? []).map((d) => d.path);
}
