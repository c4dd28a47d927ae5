/** JSON merge patch (RFC 7386) and JSON patch (RFC 6902), applied to plain JSON values. */

import { ApiError } from "./errors.ts";
import { deepEqualJson } from "./schema.ts";

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, `null` deletes, everything else (arrays included) replaces. */
export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = applyMergePatch(result[k], v);
  }
  return result;
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new ApiError("BadRequest", `invalid JSON pointer: ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: Json, tokens: string[], path: string): { parent: Json; key: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw patchFailed(`doc is missing path: "${path}"`);
  }
  return { parent: cur, key: tokens[tokens.length - 1]! };
}

function patchFailed(message: string): ApiError {
  return new ApiError(
    "Invalid",
    `the server rejected our request due to an error in our request: ${message}`,
  );
}

function readAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const t of pointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw patchFailed(`doc is missing path: "${path}"`);
  }
  return cur;
}

function remove(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) throw patchFailed(`unable to remove nonexistent key: ${key}`);
    return parent.splice(i, 1)[0];
  }
  if (isObject(parent) && Object.hasOwn(parent, key)) {
    const old = parent[key];
    delete parent[key];
    return old;
  }
  throw patchFailed(`unable to remove nonexistent key: ${key}: missing value`);
}

function add(doc: Json, path: string, value: Json, replace: boolean): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length)) throw patchFailed(`index out of bounds: ${key}`);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, key))
      throw patchFailed(`replace operation does not apply: doc is missing key: ${path}`);
    parent[key] = value;
  } else {
    throw patchFailed(`doc is missing path: "${path}"`);
  }
  return doc;
}

/** RFC 6902 on a copy of `target`; a failing `test` or a missing path is 422, like the real server. */
export function applyJsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new ApiError("BadRequest", "json patch must be an array of operations");
  let doc = structuredClone(target);
  for (const raw of ops as Operation[]) {
    switch (raw.op) {
      case "add":
        doc = add(doc, raw.path, structuredClone(raw.value), false);
        break;
      case "replace":
        doc = add(doc, raw.path, structuredClone(raw.value), true);
        break;
      case "remove":
        remove(doc, raw.path);
        break;
      case "move": {
        const v = remove(doc, raw.from ?? "");
        doc = add(doc, raw.path, v, false);
        break;
      }
      case "copy":
        doc = add(doc, raw.path, structuredClone(readAt(doc, raw.from ?? "")), false);
        break;
      case "test":
        if (!deepEqualJson(readAt(doc, raw.path), raw.value)) {
          throw patchFailed(`testing value ${raw.path} failed: test failed`);
        }
        break;
      default:
        throw new ApiError("BadRequest", `Unexpected kind: ${String(raw.op)}`);
    }
  }
  return doc;
}
