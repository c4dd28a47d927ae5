/**
 * Structural-schema handling for custom resources, as the apiextensions-apiserver does it:
 * prune unknown fields, apply defaults, then validate (types, required, enum, pattern, format, bounds,
 * lengths, item counts, list-type uniqueness, embedded resources, int-or-string, preserve-unknown-fields).
 *
 * Not emulated: `x-kubernetes-validations` (CEL rules) are ignored, and `anyOf`/`oneOf`/`allOf`/`not` value
 * validations are skipped (the CRDs in shared/crds use `anyOf` only alongside `x-kubernetes-int-or-string`).
 */

import type { StatusCause } from "./errors.ts";

export interface JSONSchemaProps {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  multipleOf?: number;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-embedded-resource"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Fields of `metav1.ObjectMeta`; the real server prunes anything else under `metadata`. */
const OBJECT_META_FIELDS = new Set([
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
]);

/** Child schema for a property of an object node (explicit property, else `additionalProperties`). */
export function childSchema(schema: JSONSchemaProps | undefined, key: string): JSONSchemaProps | undefined {
  if (!schema) return undefined;
  const p = schema.properties?.[key];
  if (p) return p;
  if (isObject(schema.additionalProperties)) return schema.additionalProperties as JSONSchemaProps;
  return undefined;
}

/**
 * Prunes unknown fields and applies defaults in place, top-down, like the real server (defaults of a
 * defaulted object are themselves defaulted). Returns the paths that were pruned (for `fieldValidation`).
 */
export function pruneAndDefault(root: Record<string, Json>, schema: JSONSchemaProps): string[] {
  const pruned: string[] = [];
  walkObject(root, schema, "", pruned, true);
  const meta = root.metadata;
  if (isObject(meta)) {
    for (const k of Object.keys(meta)) {
      if (!OBJECT_META_FIELDS.has(k)) {
        delete meta[k];
        pruned.push(`metadata.${k}`);
      }
    }
  }
  return pruned;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function walkObject(
  obj: Record<string, Json>,
  schema: JSONSchemaProps,
  path: string,
  pruned: string[],
  isRoot: boolean,
): void {
  const props = schema.properties ?? {};
  const additional = schema.additionalProperties;
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  const embedded = schema["x-kubernetes-embedded-resource"] === true || isRoot;
  for (const key of Object.keys(obj)) {
    if (Object.hasOwn(props, key)) continue;
    if (embedded && (key === "apiVersion" || key === "kind" || key === "metadata")) continue;
    if (isObject(additional) || additional === true) continue;
    if (preserve) continue;
    delete obj[key];
    pruned.push(join(path, key));
  }
  for (const [key, sub] of Object.entries(props)) {
    // The metadata schema of a CRD may only constrain name/generateName; it is never walked for defaults.
    if (isRoot && key === "metadata") continue;
    let value = obj[key];
    if ((value === undefined || (value === null && !sub.nullable)) && sub.default !== undefined) {
      value = structuredClone(sub.default);
      obj[key] = value;
    }
    if (value !== undefined) walkValue(value, sub, join(path, key), pruned);
  }
  if (isObject(additional)) {
    for (const [key, value] of Object.entries(obj)) {
      if (Object.hasOwn(props, key)) continue;
      walkValue(value, additional as JSONSchemaProps, join(path, key), pruned);
    }
  }
}

function walkValue(value: Json, schema: JSONSchemaProps, path: string, pruned: string[]): void {
  if (isObject(value)) {
    walkObject(value, schema, path, pruned, false);
  } else if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    value.forEach((item, i) => {
      if ((item === null || item === undefined) && items.default !== undefined) {
        value[i] = structuredClone(items.default);
      }
      walkValue(value[i], items, `${path}[${i}]`, pruned);
    });
  }
}

/** Renders a value the way apimachinery's field errors do (`"text"`, `3`, `true`, `null`). */
export function show(value: Json): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || value === undefined) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function typeName(value: Json): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

const FORMATS: Record<string, (s: string) => boolean> = {
  "date-time": (s) =>
    /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s) &&
    !Number.isNaN(Date.parse(s)),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)),
  byte: (s) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s),
  uuid: (s) => /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(s),
  ipv4: (s) => /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(s),
  email: (s) => /^[^@\s]+@[^@\s]+$/.test(s),
  hostname: (s) =>
    /^[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,62}))*$/.test(s) && s.length <= 255,
};

/**
 * Validates a (pruned, defaulted) value against its schema and returns one cause per violation,
 * with field paths and messages as the real server words them.
 */
export function validate(value: Json, schema: JSONSchemaProps, path = ""): StatusCause[] {
  const causes: StatusCause[] = [];
  check(value, schema, path, causes, true);
  return causes;
}

function invalidCause(path: string, value: Json, detail: string): StatusCause {
  return { reason: "FieldValueInvalid", message: `Invalid value: ${show(value)}: ${detail}`, field: path };
}

function check(
  value: Json,
  schema: JSONSchemaProps,
  path: string,
  causes: StatusCause[],
  isRoot: boolean,
): void {
  const field = path === "" ? "<root>" : path;
  if (value === null) {
    if (!schema.nullable && schema.type) {
      causes.push(invalidCause(path, "null", `${field} in body must be of type ${schema.type}: "null"`));
    }
    return;
  }
  if (schema["x-kubernetes-int-or-string"]) {
    if (!(typeof value === "string" || (typeof value === "number" && Number.isInteger(value)))) {
      causes.push(
        invalidCause(
          path,
          typeName(value),
          `${field} in body must be of type integer,string: ${show(typeName(value))}`,
        ),
      );
      return;
    }
  } else if (schema.type && !typeMatches(value, schema.type)) {
    const actual = typeName(value);
    causes.push(
      invalidCause(path, actual, `${field} in body must be of type ${schema.type}: ${show(actual)}`),
    );
    return;
  }
  if (schema.enum && !schema.enum.some((e) => deepEqualJson(e, value))) {
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${show(value)}: supported values: ${schema.enum.map(show).join(", ")}`,
      field: path,
    });
  }
  if (typeof value === "string") checkString(value, schema, path, field, causes);
  if (typeof value === "number") checkNumber(value, schema, path, field, causes);
  if (Array.isArray(value)) checkArray(value, schema, path, field, causes);
  if (isObject(value)) checkObject(value, schema, path, causes, isRoot);
}

function typeMatches(value: Json, type: string): boolean {
  switch (type) {
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    default:
      return true;
  }
}

function checkString(
  value: string,
  schema: JSONSchemaProps,
  path: string,
  field: string,
  causes: StatusCause[],
) {
  if (schema.maxLength !== undefined && [...value].length > schema.maxLength) {
    causes.push({
      reason: "FieldValueTooLong",
      message: `Too long: may not be more than ${schema.maxLength} bytes`,
      field: path,
    });
  }
  if (schema.minLength !== undefined && [...value].length < schema.minLength) {
    causes.push(
      invalidCause(path, value, `${field} in body should be at least ${schema.minLength} chars long`),
    );
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value)) {
    causes.push(invalidCause(path, value, `${field} in body should match '${schema.pattern}'`));
  }
  const format = schema.format ? FORMATS[schema.format] : undefined;
  if (format && !format(value)) {
    causes.push(
      invalidCause(path, value, `${field} in body must be of type ${schema.format}: ${show(value)}`),
    );
  }
}

function checkNumber(
  value: number,
  schema: JSONSchemaProps,
  path: string,
  field: string,
  causes: StatusCause[],
) {
  if (schema.minimum !== undefined) {
    const bad = schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum;
    if (bad) {
      const rel = schema.exclusiveMinimum ? "greater than" : "greater than or equal to";
      causes.push(invalidCause(path, value, `${field} in body should be ${rel} ${schema.minimum}`));
    }
  }
  if (schema.maximum !== undefined) {
    const bad = schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum;
    if (bad) {
      const rel = schema.exclusiveMaximum ? "less than" : "less than or equal to";
      causes.push(invalidCause(path, value, `${field} in body should be ${rel} ${schema.maximum}`));
    }
  }
  if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) {
    causes.push(invalidCause(path, value, `${field} in body should be a multiple of ${schema.multipleOf}`));
  }
  if (schema.format === "int32" && (value < -2147483648 || value > 2147483647)) {
    causes.push(invalidCause(path, value, `${field} in body must be of type int32: ${show(value)}`));
  }
}

function checkArray(
  value: Json[],
  schema: JSONSchemaProps,
  path: string,
  field: string,
  causes: StatusCause[],
) {
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    causes.push({
      reason: "FieldValueTooMany",
      message: `Too many: ${value.length}: must have at most ${schema.maxItems} items`,
      field: path,
    });
  }
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    causes.push(invalidCause(path, value, `${field} in body should have at least ${schema.minItems} items`));
  }
  const listType = schema["x-kubernetes-list-type"];
  if (listType === "set" || listType === "map") {
    const keys = schema["x-kubernetes-list-map-keys"] ?? [];
    const seen = new Set<string>();
    value.forEach((item, i) => {
      const identity =
        listType === "map" && isObject(item)
          ? JSON.stringify(keys.map((k) => item[k] ?? null))
          : JSON.stringify(item);
      if (seen.has(identity)) {
        causes.push({
          reason: "FieldValueDuplicate",
          message: `Duplicate value: ${identity}`,
          field: `${path}[${i}]`,
        });
      }
      seen.add(identity);
    });
  }
  if (schema.items) {
    const items = schema.items;
    value.forEach((item, i) => {
      check(item, items, `${path}[${i}]`, causes, false);
    });
  }
}

function checkObject(
  value: Record<string, Json>,
  schema: JSONSchemaProps,
  path: string,
  causes: StatusCause[],
  isRoot: boolean,
) {
  for (const req of schema.required ?? []) {
    if (value[req] === undefined) {
      causes.push({ reason: "FieldValueRequired", message: "Required value", field: join(path, req) });
    }
  }
  if (schema["x-kubernetes-embedded-resource"]) {
    for (const req of ["apiVersion", "kind"]) {
      if (value[req] === undefined || value[req] === "") {
        causes.push({ reason: "FieldValueRequired", message: "Required value", field: join(path, req) });
      }
    }
  }
  const count = Object.keys(value).length;
  if (schema.maxProperties !== undefined && count > schema.maxProperties) {
    causes.push({
      reason: "FieldValueTooMany",
      message: `Too many: ${count}: must have at most ${schema.maxProperties} items`,
      field: path,
    });
  }
  if (schema.minProperties !== undefined && count < schema.minProperties) {
    causes.push(
      invalidCause(path, count, `${path} in body should have at least ${schema.minProperties} properties`),
    );
  }
  for (const [key, sub] of Object.entries(value)) {
    if (isRoot && key === "metadata") continue;
    const child = childSchema(schema, key);
    if (!child) continue;
    const childPath = schema.properties?.[key] ? join(path, key) : `${path}[${key}]`;
    check(sub, child, childPath, causes, false);
  }
}

/** Deep equality for JSON values (key order ignored). */
export function deepEqualJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqualJson(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqualJson(a[k], b[k]));
  }
  return false;
}
