/**
 * Validating chart values against a chart's values.schema.json (JSON Schema draft-07, as Helm does before it
 * renders) with Ajv and ajv-formats, so `format: uri|uuid` are checked too.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

// Strict about unknown keywords (a typo in the schema fails), not about JSON Schema's untyped subschemas.
const ajv = new Ajv({ allErrors: true, strictSchema: true, strictTypes: false });
addFormats(ajv);
const compiled = new Map<string, ValidateFunction>();

export function chartSchema(chartDir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(chartDir, "values.schema.json"), "utf8")) as Record<
    string,
    unknown
  >;
}

/** `/image/tag must match pattern …`, or `clusterId: must have required property` for a missing one. */
function describe(error: ErrorObject): string {
  const missing = (error.params as { missingProperty?: string }).missingProperty;
  const at = missing ? `${error.instancePath}/${missing}` : error.instancePath;
  return `${at.replace(/^\//, "").replaceAll("/", ".") || "(root)"}: ${error.message ?? error.keyword}`;
}

export function validateValues(chartDir: string, values: unknown): { valid: boolean; errors: string[] } {
  let validate = compiled.get(chartDir);
  if (!validate) {
    validate = ajv.compile(chartSchema(chartDir));
    compiled.set(chartDir, validate);
  }
  const valid = validate(values);
  return { valid, errors: valid ? [] : (validate.errors ?? []).map(describe) };
}
