/**
 * @module manager/ui/api — the dashboard's only way to the Manager: the public REST API with the signed-in
 * token as a bearer token. The token lives in sessionStorage (gone with the tab), never in a cookie.
 */

const TOKEN_KEY = "kubenova.token";

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string | null} token */
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** @type {(error: ApiError) => void} */
let onUnauthorized = () => {};

/** Called on every 401 (expired or refused token). @param {(error: ApiError) => void} handler */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * Calls `/api/v1{path}`; resolves with the parsed JSON, rejects with an ApiError carrying the API's
 * `{ error: { code, message } }`.
 * @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    throw new ApiError(0, "network", `The Manager is unreachable (${String(cause)})`);
  }
  const text = await response.text();
  /** @type {any} */
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      parsed?.error?.code ?? `HTTP ${response.status}`,
      parsed?.error?.message ?? (text || response.statusText),
    );
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return parsed;
}

/** Path segment escaping for names taken from the API. @param {string} part */
export function seg(part) {
  return encodeURIComponent(part);
}
