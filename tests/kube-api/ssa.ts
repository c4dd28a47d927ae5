/**
 * Server-side apply and managedFields, simplified but honest:
 * - a manager's field set is the set of leaf paths it set (`f:<field>`, `k:{<list-map keys>}` for items of
 *   `x-kubernetes-list-type: map` lists); stored as FieldsV1 with `.` marking a node owned as a whole;
 * - lists are atomic (owned and replaced whole) unless the schema marks them `map` with
 *   `x-kubernetes-list-map-keys` (merged by key); `set` lists are treated as atomic. Built-in kinds have no
 *   schema here, so a few well-known lists (containers, env, volumes, …) are merged by `name`;
 * - applying a field that another manager (Apply or Update) owns with a different value is a conflict
 *   (409 with one cause per field) unless `force=true`, which transfers ownership — as the real server;
 * - fields a manager applied before and no longer applies are removed unless another manager owns them;
 * - updates (PUT, merge/JSON patch) take ownership of the fields they change, without conflicts.
 */

import { ApiError, type StatusCause } from "./errors.ts";
import { childSchema, deepEqualJson, type JSONSchemaProps } from "./schema.ts";

type Json = unknown;
type Obj = Record<string, Json>;

function isObject(v: Json): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Obj;
  subresource?: string;
}

/** Schema context for list handling; `schema` is undefined for built-in kinds. */
export interface ShapeInfo {
  schema: JSONSchemaProps | undefined;
}

/** Lists of built-in kinds merged by key (their real strategic/SSA keys); every other built-in list is atomic. */
const BUILTIN_LIST_KEYS: Record<string, string[]> = {
  containers: ["name"],
  initContainers: ["name"],
  ephemeralContainers: ["name"],
  volumes: ["name"],
  env: ["name"],
  volumeMounts: ["mountPath"],
  imagePullSecrets: ["name"],
  ownerReferences: ["uid"],
};

function listKeys(
  shape: ShapeInfo,
  schema: JSONSchemaProps | undefined,
  field: string,
): string[] | undefined {
  if (shape.schema === undefined || field === "ownerReferences") return BUILTIN_LIST_KEYS[field];
  if (schema?.["x-kubernetes-list-type"] === "map") return schema["x-kubernetes-list-map-keys"] ?? [];
  return undefined;
}

function atomicMap(schema: JSONSchemaProps | undefined): boolean {
  return schema?.["x-kubernetes-map-type"] === "atomic";
}

function keySegment(item: Obj, keys: string[]): string {
  const k: Obj = {};
  for (const key of keys) k[key] = item[key];
  return `k:${JSON.stringify(k)}`;
}

/** Leaf paths (JSON-encoded segment arrays) of a value. */
function collect(
  value: Json,
  schema: JSONSchemaProps | undefined,
  field: string,
  prefix: string[],
  out: Set<string>,
  shape: ShapeInfo,
): void {
  if (isObject(value) && !atomicMap(schema) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) {
      collect(v, childSchema(schema, k), k, [...prefix, `f:${k}`], out, shape);
    }
    return;
  }
  const keys = Array.isArray(value) ? listKeys(shape, schema, field) : undefined;
  if (Array.isArray(value) && keys && value.length > 0 && value.every(isObject)) {
    for (const item of value as Obj[]) {
      collect(item, schema?.items, "", [...prefix, keySegment(item, keys)], out, shape);
    }
    return;
  }
  out.add(JSON.stringify(prefix));
}

const SYSTEM_META = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
  "generateName",
]);

/** Leaf paths a manager can own in an object: everything but identity and system metadata. */
export function fieldSet(
  obj: Obj,
  shape: ShapeInfo,
  scope: "main" | "status",
  statusIsSubresource: boolean,
): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(obj)) {
    if (k === "apiVersion" || k === "kind") continue;
    if (scope === "status" && k !== "status") continue;
    if (scope === "main" && k === "status" && statusIsSubresource) continue;
    if (k === "metadata" && isObject(v)) {
      for (const [mk, mv] of Object.entries(v)) {
        if (SYSTEM_META.has(mk)) continue;
        collect(mv, undefined, mk, ["f:metadata", `f:${mk}`], out, shape);
      }
      continue;
    }
    collect(v, childSchema(shape.schema, k), k, [`f:${k}`], out, shape);
  }
  return out;
}

function matchesKey(item: Json, key: Obj): boolean {
  return isObject(item) && Object.entries(key).every(([k, v]) => deepEqualJson(item[k], v));
}

function getAt(obj: Json, path: string[]): { found: boolean; value?: Json } {
  let cur = obj;
  for (const seg of path) {
    if (seg.startsWith("f:")) {
      if (!isObject(cur) || !Object.hasOwn(cur, seg.slice(2))) return { found: false };
      cur = cur[seg.slice(2)];
    } else {
      if (!Array.isArray(cur)) return { found: false };
      const key = JSON.parse(seg.slice(2)) as Obj;
      cur = cur.find((item) => matchesKey(item, key));
      if (cur === undefined) return { found: false };
    }
  }
  return { found: true, value: cur };
}

/** Removes a leaf and any container left empty by that removal. */
function removeAt(obj: Obj, path: string[]): void {
  if (path.length === 0) return;
  const parentPath = path.slice(0, -1);
  const parent = getAt(obj, parentPath);
  if (!parent.found) return;
  const seg = path[path.length - 1]!;
  if (seg.startsWith("f:") && isObject(parent.value)) {
    delete parent.value[seg.slice(2)];
    if (Object.keys(parent.value).length === 0 && parentPath.length > 0) removeAt(obj, parentPath);
  } else if (seg.startsWith("k:") && Array.isArray(parent.value)) {
    const key = JSON.parse(seg.slice(2)) as Obj;
    const i = parent.value.findIndex((item) => matchesKey(item, key));
    if (i >= 0) parent.value.splice(i, 1);
    if (parent.value.length === 0 && parentPath.length > 0) removeAt(obj, parentPath);
  }
}

/** Removes the leaf, or when only key fields of a list-map item remain, the item itself. */
function removeOwned(obj: Obj, path: string[]): void {
  removeAt(obj, path);
  const last = path.length - 2;
  if (last >= 0 && path[last]!.startsWith("k:")) {
    const item = getAt(obj, path.slice(0, last + 1));
    const key = JSON.parse(path[last]!.slice(2)) as Obj;
    if (item.found && isObject(item.value) && Object.keys(item.value).every((k) => Object.hasOwn(key, k))) {
      removeAt(obj, path.slice(0, last + 1));
    }
  }
}

function merge(
  base: Json,
  applied: Json,
  schema: JSONSchemaProps | undefined,
  field: string,
  shape: ShapeInfo,
): Json {
  if (isObject(base) && isObject(applied) && !atomicMap(schema)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(applied)) {
      out[k] = merge(base[k], v, childSchema(schema, k), k, shape);
    }
    return out;
  }
  const keys = Array.isArray(applied) ? listKeys(shape, schema, field) : undefined;
  if (Array.isArray(base) && Array.isArray(applied) && keys) {
    const out = [...base];
    for (const item of applied) {
      if (!isObject(item)) return structuredClone(applied);
      const key = JSON.parse(keySegment(item, keys).slice(2)) as Obj;
      const i = out.findIndex((x) => matchesKey(x, key));
      if (i >= 0) out[i] = merge(out[i], item, schema?.items, "", shape);
      else out.push(structuredClone(item));
    }
    return out;
  }
  return structuredClone(applied);
}

/** FieldsV1 trie from leaf paths; `.` marks a node that is itself owned and also has owned children. */
export function toFieldsV1(paths: Set<string>): Obj {
  const root: Obj = {};
  const owned = new Set<Obj>();
  for (const p of paths) {
    let node = root;
    for (const seg of JSON.parse(p) as string[]) {
      if (!isObject(node[seg])) node[seg] = {};
      node = node[seg] as Obj;
    }
    owned.add(node);
  }
  for (const node of owned) if (Object.keys(node).length > 0) node["."] = {};
  return root;
}

export function fromFieldsV1(fields: Json): Set<string> {
  const out = new Set<string>();
  const walk = (node: Json, prefix: string[]) => {
    if (!isObject(node)) return;
    const keys = Object.keys(node).filter((k) => k !== ".");
    if (keys.length === 0 || Object.hasOwn(node, ".")) out.add(JSON.stringify(prefix));
    for (const k of keys) walk(node[k], [...prefix, k]);
  };
  if (isObject(fields) && Object.keys(fields).length > 0) walk(fields, []);
  return out;
}

interface Owned {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  subresource?: string;
  fields: Set<string>;
}

function readManaged(obj: Obj | undefined): Owned[] {
  const meta = obj?.metadata;
  const entries =
    isObject(meta) && Array.isArray(meta.managedFields) ? (meta.managedFields as ManagedFieldsEntry[]) : [];
  return entries.map((e) => {
    const owned: Owned = {
      manager: e.manager,
      operation: e.operation,
      apiVersion: e.apiVersion,
      time: e.time,
      fields: fromFieldsV1(e.fieldsV1),
    };
    if (e.subresource) owned.subresource = e.subresource;
    return owned;
  });
}

function writeManaged(obj: Obj, owned: Owned[], previous: Owned[]): void {
  const entries: ManagedFieldsEntry[] = [];
  for (const o of owned) {
    if (o.fields.size === 0) continue;
    // Keep the old timestamp when the ownership did not change, so a no-op write stays byte-identical.
    const before = previous.find((p) => sameEntry(p, o));
    const unchanged =
      before && before.fields.size === o.fields.size && [...o.fields].every((f) => before.fields.has(f));
    const entry: ManagedFieldsEntry = {
      manager: o.manager,
      operation: o.operation,
      apiVersion: o.apiVersion,
      time: unchanged ? before.time : o.time,
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1(o.fields),
    };
    if (o.subresource) entry.subresource = o.subresource;
    entries.push(entry);
  }
  if (!isObject(obj.metadata)) obj.metadata = {};
  const meta = obj.metadata as Obj;
  if (entries.length > 0) meta.managedFields = entries;
  else delete meta.managedFields;
}

function sameEntry(a: Owned, b: { manager: string; operation: string; subresource?: string }): boolean {
  return (
    a.manager === b.manager && a.operation === b.operation && (a.subresource ?? "") === (b.subresource ?? "")
  );
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

export interface ApplyInput {
  live: Obj | undefined;
  applied: Obj;
  manager: string;
  force: boolean;
  apiVersion: string;
  subresource: "status" | undefined;
  statusIsSubresource: boolean;
  shape: ShapeInfo;
}

/** Computes the object after a server-side apply; throws 409 Conflict listing conflicting fields. */
export function serverSideApply(input: ApplyInput): Obj {
  const { live, applied, manager, shape } = input;
  const scope = input.subresource === "status" ? "status" : "main";
  const base: Obj = live
    ? structuredClone(live)
    : { apiVersion: applied.apiVersion, kind: applied.kind, metadata: { ...(applied.metadata as Obj) } };
  const previous = readManaged(live);
  const owned = previous.map((o) => ({ ...o, fields: new Set(o.fields) }));
  const appliedSet = fieldSet(applied, shape, scope, input.statusIsSubresource);
  const me = { manager, operation: "Apply" as const, subresource: input.subresource };

  const conflicts: { manager: string; path: string[] }[] = [];
  if (live) {
    for (const o of owned) {
      if (sameEntry(o, me)) continue;
      for (const p of o.fields) {
        if (!appliedSet.has(p)) continue;
        const path = JSON.parse(p) as string[];
        if (!deepEqualJson(getAt(live, path).value, getAt(applied, path).value)) {
          conflicts.push({ manager: o.manager, path });
        }
      }
    }
  }
  if (conflicts.length > 0 && !input.force) throw conflictError(conflicts, applied);
  for (const c of conflicts) {
    for (const o of owned) if (o.manager === c.manager) o.fields.delete(JSON.stringify(c.path));
  }

  let result = base;
  const mine = owned.find((o) => sameEntry(o, me));
  for (const p of mine?.fields ?? []) {
    if (appliedSet.has(p)) continue;
    if (owned.some((o) => o !== mine && o.fields.has(p))) continue;
    removeOwned(result, JSON.parse(p) as string[]);
  }
  const toMerge: Obj = {};
  for (const [k, v] of Object.entries(applied)) {
    if (k === "apiVersion" || k === "kind") continue;
    if (scope === "status" && k !== "status" && k !== "metadata") continue;
    if (scope === "main" && k === "status" && input.statusIsSubresource) continue;
    if (k === "metadata" && isObject(v)) {
      const meta: Obj = {};
      for (const [mk, mv] of Object.entries(v)) if (!SYSTEM_META.has(mk)) meta[mk] = mv;
      if (scope === "main") toMerge.metadata = meta;
      continue;
    }
    toMerge[k] = v;
  }
  result = merge(result, toMerge, shape.schema, "", shape) as Obj;

  const entry: Owned = {
    manager,
    operation: "Apply",
    apiVersion: input.apiVersion,
    time: now(),
    fields: appliedSet,
  };
  if (input.subresource) entry.subresource = input.subresource;
  const next = owned.filter((o) => !sameEntry(o, me));
  next.push(entry);
  writeManaged(result, next, previous);
  return result;
}

function conflictError(conflicts: { manager: string; path: string[] }[], applied: Obj): ApiError {
  const fmt = (path: string[]) =>
    path.map((s) => (s.startsWith("f:") ? `.${s.slice(2)}` : `[${s.slice(2)}]`)).join("");
  const causes: StatusCause[] = conflicts.map((c) => ({
    reason: "FieldManagerConflict",
    message: `conflict with "${c.manager}"`,
    field: fmt(c.path),
  }));
  const list = conflicts.map((c) => `conflict with "${c.manager}": ${fmt(c.path)}`);
  const n = conflicts.length;
  const message =
    n === 1
      ? `Apply failed with 1 conflict: ${list[0]}`
      : `Apply failed with ${n} conflicts: ${list.join("\n")}`;
  const meta = isObject(applied.metadata) ? applied.metadata : {};
  return new ApiError("Conflict", message, { name: String(meta.name ?? ""), causes });
}

export interface UpdateInput {
  live: Obj | undefined;
  next: Obj;
  manager: string;
  apiVersion: string;
  subresource: "status" | undefined;
  statusIsSubresource: boolean;
  shape: ShapeInfo;
}

/** Records an Update operation: the manager takes the fields it changed; removed fields lose their owners. */
export function trackUpdate(input: UpdateInput): void {
  const { live, next, shape } = input;
  const scope = input.subresource === "status" ? "status" : "main";
  const previous = readManaged(live);
  const owned = previous.map((o) => ({ ...o, fields: new Set(o.fields) }));
  const before = live ? fieldSet(live, shape, scope, input.statusIsSubresource) : new Set<string>();
  const after = fieldSet(next, shape, scope, input.statusIsSubresource);
  const changed = new Set<string>();
  for (const p of after) {
    const path = JSON.parse(p) as string[];
    if (!before.has(p) || !deepEqualJson(getAt(live, path).value, getAt(next, path).value)) changed.add(p);
  }
  const removed = [...before].filter((p) => !after.has(p));
  for (const o of owned) {
    for (const p of removed) o.fields.delete(p);
    for (const p of changed) o.fields.delete(p);
    // A leaf that became a container (or the reverse) is no longer a field of the object.
    for (const p of [...o.fields]) if (!after.has(p) && !before.has(p)) o.fields.delete(p);
  }
  const me = { manager: input.manager, operation: "Update" as const, subresource: input.subresource };
  let mine = owned.find((o) => sameEntry(o, me));
  if (!mine && changed.size > 0) {
    mine = {
      manager: input.manager,
      operation: "Update",
      apiVersion: input.apiVersion,
      time: now(),
      fields: new Set(),
    };
    if (input.subresource) mine.subresource = input.subresource;
    owned.push(mine);
  }
  if (mine) {
    for (const p of changed) mine.fields.add(p);
    if (changed.size > 0) mine.time = now();
  }
  writeManaged(next, owned, previous);
}
