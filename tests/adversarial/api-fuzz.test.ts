/**
 * Issue 9, item 1: requests generated from `/openapi.json` — every operation, with path params, query params,
 * headers and bodies derived from the documented schemas and then mutated (wrong types, huge strings, unicode,
 * `__proto__`, deep nesting, malformed JSON, wrong content types) — sent with tokens of every role in two tenants.
 *
 * Invariants: no 5xx (except the documented 503 of operations that need an operator link, which this in-process
 * Manager does not have); every JSON response matches the documented schema for its status (Ajv over the
 * document's component schemas); no "globex" data in any answer to an "acme"-scoped token; oversize bodies are
 * 413; `limit` > 500 is 400; token issuance is rate limited (429 KN-429 + Retry-After).
 *
 * CI: 5,000 requests; `KN_ADVERSARIAL=long`: 50,000. Replay with `KN_ADVERSARIAL_SEED=<seed>`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { ValidateFunction } from "ajv";
import { ROLES, type Role } from "../../shared/api/models.ts";
import { createTestManager, seedWorld, type TestManager } from "../http/harness.ts";
import { createRng, HOSTILE_STRINGS, LONG_MODE, type Rng, runSeed, wellFormed } from "./random.ts";

const REQUESTS = LONG_MODE ? 50_000 : 5_000;
const BODY_LIMIT_BYTES = 64 * 1024;
const SEED = runSeed();

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Schema {
  $ref?: string;
  type?: string | string[];
  enum?: Json[];
  const?: Json;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  default?: Json;
}
interface Parameter {
  in: "path" | "query" | "header";
  name: string;
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  method: string;
  path: string;
  operationId: string;
  parameters: Parameter[];
  bodySchema: Schema | null;
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, Omit<Operation, "method" | "path"> & { requestBody?: unknown }>>;
  components: { schemas: Record<string, Schema> };
}

/** Names that exist in the seeded world: the fuzzer hits real objects as often as missing ones. */
const REAL_NAMES = ["acme", "globex", "web", "site", "dc1", "dc2", "default", "baseline", "owner@acme"];
/** Body strings never contain "globex", so any "globex" in an acme answer came from the store, not an echo. */
const BODY_STRINGS = ["acme", "web", "site", "dc1", "dc2", "default", "baseline", "fra", "nginx:1.27"];

interface Caller {
  label: string;
  token: string | undefined;
  /** The tenant this token is scoped to, if any. */
  tenant: string | undefined;
}

function resolve(doc: OpenApiDoc, schema: Schema | undefined): Schema {
  let current = schema ?? {};
  for (let hops = 0; current.$ref && hops < 10; hops++) {
    const name = current.$ref.replace("#/components/schemas/", "");
    current = doc.components.schemas[name] ?? {};
  }
  return current;
}

function randomString(rng: Rng): string {
  const roll = rng.int(10);
  if (roll < 3) return rng.pick(BODY_STRINGS);
  if (roll < 6) return rng.pick(HOSTILE_STRINGS);
  if (roll < 7) return "x".repeat(rng.pick([64, 1_000, 10_000]));
  const length = rng.int(20);
  let out = "";
  for (let i = 0; i < length; i++)
    out += String.fromCodePoint(rng.chance(0.8) ? 97 + rng.int(26) : rng.int(0x2ffff));
  return out;
}

function hostileValue(rng: Rng, depth = 0): Json {
  switch (rng.int(10)) {
    case 0:
      return null;
    case 1:
      return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, Number.MAX_SAFE_INTEGER]);
    case 2:
      return rng.chance(0.5);
    case 3:
      return randomString(rng);
    case 4:
      return [];
    case 5:
      return JSON.parse('{"__proto__":{"admin":true,"polluted":"yes"},"constructor":{"prototype":{"x":1}}}');
    case 6: {
      // deep nesting
      let nested: Json = "bottom";
      const levels = rng.pick([50, 500, 2_000]);
      for (let i = 0; i < levels; i++) nested = rng.chance(0.5) ? [nested] : { a: nested };
      return nested;
    }
    case 7:
      return depth < 3 ? [hostileValue(rng, depth + 1), hostileValue(rng, depth + 1)] : "leaf";
    case 8:
      return { [randomString(rng)]: depth < 3 ? hostileValue(rng, depth + 1) : 1 };
    default:
      return "\ud800".repeat(rng.int(5)) + "💥";
  }
}

/** A value for `schema`: mostly valid, sometimes mutated at this node (wrong type, hostile content). */
function generate(
  doc: OpenApiDoc,
  rng: Rng,
  schemaIn: Schema | undefined,
  depth: number,
  mutation: number,
): Json {
  if (rng.chance(mutation)) return hostileValue(rng);
  const schema = resolve(doc, schemaIn);
  if (schema.const !== undefined) return schema.const;
  if (schema.enum && schema.enum.length > 0) return rng.pick(schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union && union.length > 0) return generate(doc, rng, rng.pick(union), depth, mutation);
  if (schema.allOf && schema.allOf.length > 0) return generate(doc, rng, schema.allOf[0], depth, mutation);
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : ["object"];
  const type = rng.pick(types);
  switch (type) {
    case "null":
      return null;
    case "boolean":
      return rng.chance(0.5);
    case "integer":
    case "number": {
      const min = schema.minimum ?? 0;
      const max = Math.min(schema.maximum ?? min + 1000, min + 100_000);
      const n = min + rng.int(max - min + 1);
      return type === "integer" ? n : n + (rng.chance(0.3) ? 0.5 : 0);
    }
    case "string": {
      if (schema.format === "date-time") return new Date(Date.UTC(2026, 0, 1, rng.int(48))).toISOString();
      if (schema.pattern?.includes("a-z0-9") && rng.chance(0.7)) {
        return `${rng.pick(BODY_STRINGS.filter((s) => /^[a-z0-9-]+$/.test(s)))}${rng.chance(0.5) ? rng.int(100) : ""}`;
      }
      return randomString(rng);
    }
    case "array": {
      if (depth > 4) return [];
      const length = rng.int(4);
      return Array.from({ length }, () => generate(doc, rng, schema.items, depth + 1, mutation));
    }
    default: {
      if (depth > 4) return {};
      const out: { [key: string]: Json } = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || rng.chance(0.5)) {
          out[key] = generate(doc, rng, property, depth + 1, mutation);
        }
      }
      if (schema.additionalProperties && typeof schema.additionalProperties === "object" && rng.chance(0.5)) {
        out[randomString(rng).slice(0, 40) || "k"] = generate(
          doc,
          rng,
          schema.additionalProperties,
          depth + 1,
          mutation,
        );
      }
      if (rng.chance(0.05)) out[rng.pick(["__proto__", "constructor", "unknownField"])] = hostileValue(rng);
      return out;
    }
  }
}

function pathParam(rng: Rng): string {
  const roll = rng.int(10);
  if (roll < 6) return rng.pick(REAL_NAMES);
  if (roll < 9) return encodeURIComponent(wellFormed(randomString(rng)));
  // Raw, not encoded. ("." and ".." are left out: URL normalization turns them into another route.)
  return rng.pick(["%", "%zz", "%E0%A4%A", "%2e%2e", "a%2Fb", "%00", "x".repeat(5000)]);
}

function queryValue(doc: OpenApiDoc, rng: Rng, parameter: Parameter): string {
  const schema = resolve(doc, parameter.schema);
  if (rng.chance(0.6)) {
    if (parameter.name === "limit") return String(rng.pick([1, 10, 100, 500, 501, 0, -1, 10 ** 9]));
    if (parameter.name === "tenant" || parameter.name === "owner")
      return rng.pick(["acme", "globex", "owner@globex"]);
    const value = generate(doc, rng, schema, 3, 0);
    return typeof value === "string" ? value : JSON.stringify(value);
  }
  return randomString(rng);
}

interface Built {
  op: Operation;
  url: string;
  init: { method: string; headers: Record<string, string>; body?: string };
}

function buildRequest(doc: OpenApiDoc, rng: Rng, op: Operation, token: string | undefined): Built {
  let url = op.path.replace(/\{(\w+)\}/g, () => pathParam(rng));
  const query = new URLSearchParams();
  for (const parameter of op.parameters.filter((p) => p.in === "query")) {
    if (rng.chance(0.5)) query.append(parameter.name, wellFormed(queryValue(doc, rng, parameter)));
  }
  if (rng.chance(0.05))
    query.append(wellFormed(randomString(rng).slice(0, 20)) || "x", wellFormed(randomString(rng)));
  const search = query.toString();
  if (search) url += `?${search}`;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  for (const parameter of op.parameters.filter((p) => p.in === "header")) {
    if (rng.chance(0.3))
      headers[parameter.name] = rng.pick(['"1"', '"999"', "*", "garbage", `W/"1"`, "x".repeat(300)]);
  }
  const init: Built["init"] = { method: op.method.toUpperCase(), headers };
  if (op.bodySchema || rng.chance(0.05)) {
    const roll = rng.int(20);
    if (roll === 0) {
      init.body = rng.pick(["{", "[1,", "nul", '{"a":1}{', "\u0000", "{'a':1}"]);
      headers["content-type"] = "application/json";
    } else if (roll === 1) {
      init.body = "name=x";
      headers["content-type"] = rng.pick([
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
      ]);
    } else if (roll === 2) {
      const depth = rng.pick([1_000, 10_000, 100_000]);
      init.body = `${"[".repeat(depth)}${"]".repeat(depth)}`;
      headers["content-type"] = "application/json";
    } else {
      const mutation = rng.pick([0, 0, 0.05, 0.2]);
      init.body = JSON.stringify(generate(doc, rng, op.bodySchema ?? {}, 0, mutation));
      headers["content-type"] = rng.chance(0.95) ? "application/json" : "application/json; charset=utf-8";
    }
  }
  return { op, url, init };
}

function operations(doc: OpenApiDoc): Operation[] {
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const requestBody = op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined;
      out.push({
        method,
        path,
        operationId: op.operationId,
        parameters: op.parameters ?? [],
        bodySchema: requestBody?.content?.["application/json"]?.schema ?? null,
        responses: op.responses,
      });
    }
  }
  return out;
}

/** Ajv over the document's own component schemas (OpenAPI 3.1 = JSON Schema 2020-12). */
function responseValidator(doc: OpenApiDoc) {
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  addFormats(ajv);
  const base = "https://kubenova.invalid/components/";
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) {
        out[key] =
          key === "$ref" && typeof value === "string"
            ? value.replace("#/components/schemas/", base)
            : rewrite(value);
      }
      return out;
    }
    return node;
  };
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    ajv.addSchema({ ...(rewrite(schema) as object), $id: `${base}${name}` });
  }
  const cache = new Map<string, ValidateFunction | null>();
  const errorBody = ajv.compile({ $ref: `${base}Error` });
  /** Statuses the edge answers for any route (body limit, content type) that an operation does not list. */
  const undocumented = new Map<string, number>();
  const check = (op: Operation, status: number, contentType: string, body: unknown): string | null => {
    const response = op.responses[String(status)];
    if (!response) {
      // Still the one error contract: a KubeNova error body.
      if (status < 400) return `status ${status} is not documented for ${op.operationId}`;
      const key = `${op.operationId} ${status}`;
      undocumented.set(key, (undocumented.get(key) ?? 0) + 1);
      return errorBody(body)
        ? null
        : `undocumented ${status} without an error body: ${ajv.errorsText(errorBody.errors)}`;
    }
    const documented = Object.keys(response.content ?? {});
    if (documented.length === 0) return body === null || body === "" ? null : `${status} documents no body`;
    const mediaType = contentType.split(";")[0]?.trim() ?? "";
    if (!documented.includes(mediaType)) return `content-type ${mediaType} is not documented (${documented})`;
    if (mediaType !== "application/json") return null;
    const key = `${op.operationId} ${status}`;
    let validate = cache.get(key);
    if (validate === undefined) {
      const schema = response.content?.[mediaType]?.schema;
      validate = schema ? ajv.compile(rewrite(schema) as object) : null;
      cache.set(key, validate);
    }
    if (validate && !validate(body)) return `schema: ${ajv.errorsText(validate.errors)}`;
    return null;
  };
  return { check, undocumented };
}

/** Operations that need an operator link; this Manager has none, so they answer their documented 503. */
const NEEDS_LINK = new Set([
  "collectClusterUsage",
  "issueTenantKubeconfig",
  "issueProjectKubeconfig",
  "installOperator",
]);

describe(`API fuzz from /openapi.json (seed ${SEED}, ${REQUESTS} requests)`, () => {
  let m: TestManager;
  let doc: OpenApiDoc;
  let callers: Caller[];

  beforeAll(async () => {
    m = await createTestManager({ bodyLimitBytes: BODY_LIMIT_BYTES });
    await seedWorld(m);
    doc = (await m.call("GET", "/openapi.json")).body as OpenApiDoc;
    callers = [
      { label: "anonymous", token: undefined, tenant: undefined },
      { label: "garbage", token: "eyJhbGciOiJub25lIn0.e30.", tenant: undefined },
      { label: "admin", token: await m.token("admin"), tenant: undefined },
      { label: "ops", token: await m.token("ops"), tenant: undefined },
    ];
    for (const tenant of ["acme", "globex"]) {
      for (const role of ROLES.filter((r): r is Role => r !== "admin" && r !== "ops")) {
        callers.push({
          label: `${role}@${tenant}`,
          token: await m.token(role, { tenant, ...(role === "projectDev" ? { project: "web" } : {}) }),
          tenant,
        });
      }
    }
  });
  afterAll(() => m.close());

  const replay = () => `replay with KN_ADVERSARIAL_SEED=${SEED}`;

  test(
    "no 5xx, responses match the documented schemas, nothing of globex reaches acme",
    async () => {
      const rng = createRng(SEED);
      const ops = operations(doc);
      const { check, undocumented } = responseValidator(doc);
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      for (let i = 0; i < REQUESTS; i++) {
        const op = ops[i % ops.length] as Operation; // every operation, round robin
        const caller = rng.pick(callers);
        const request = buildRequest(doc, rng, op, caller.token);
        const response = await m.app.request(request.url, request.init);
        const text = await response.text();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const where = `#${i} ${caller.label} ${request.init.method} ${request.url.slice(0, 200)} → ${response.status}`;
        if (response.status >= 500 && !(response.status === 503 && NEEDS_LINK.has(op.operationId))) {
          failures.push(`${where}: server error ${text.slice(0, 300)}`);
        }
        const contentType = response.headers.get("content-type") ?? "";
        let body: unknown = text;
        if (contentType.startsWith("application/json")) {
          try {
            body = JSON.parse(text);
          } catch {
            failures.push(`${where}: invalid JSON body`);
          }
        }
        const problem = check(op, response.status, contentType, text === "" ? null : body);
        if (problem) failures.push(`${where}: ${problem}`);
        if (caller.tenant === "acme") {
          const asked = `${request.url} ${request.init.body ?? ""}`.includes("globex");
          if (text.includes("globex") && !(asked && response.status >= 400)) {
            failures.push(`${where}: globex data in an answer to ${caller.label}: ${text.slice(0, 300)}`);
          }
          if (/\/tenants\/globex(\/|$|\?)/.test(request.url) && response.status < 400) {
            failures.push(`${where}: acme token reached a globex object`);
          }
        }
        if (failures.length > 50) break;
      }
      if (failures.length > 0) process.stderr.write(`api-fuzz: ${failures.length} failures; ${replay()}\n`);
      // Generic edge answers (e.g. 415 for a body sent to a body-less operation) that an operation does not list.
      expect([...undocumented.keys()].filter((k) => !/ (404|413|415)$/.test(k))).toEqual([]);
      if (process.env.KN_ADVERSARIAL_VERBOSE)
        process.stderr.write(
          `statuses ${JSON.stringify([...statuses])} undocumented ${JSON.stringify([...undocumented])}\n`,
        );
      expect(failures.slice(0, 20)).toEqual([]);
      // The fuzzer must actually get past validation and authorization, not just bounce off the edge.
      expect(statuses.get(200) ?? 0).toBeGreaterThan(REQUESTS / 20);
      expect((statuses.get(400) ?? 0) + (statuses.get(404) ?? 0)).toBeGreaterThan(REQUESTS / 10);
    },
    LONG_MODE ? 900_000 : 60_000,
  );

  test("every body-accepting operation answers 413 to an oversize body", async () => {
    const m = await createTestManager({ bodyLimitBytes: BODY_LIMIT_BYTES });
    await seedWorld(m);
    const admin = await m.token("admin");
    const oversize = JSON.stringify({ name: "big", description: "x".repeat(BODY_LIMIT_BYTES + 1) });
    const wrong: string[] = [];
    for (const op of operations(doc).filter((o) => o.bodySchema !== null)) {
      const url = op.path.replace(/\{(\w+)\}/g, (_, name: string) =>
        name === "tenant" ? "acme" : name === "project" ? "web" : name === "app" ? "site" : "dc1",
      );
      const response = await m.app.request(url, {
        method: op.method.toUpperCase(),
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: oversize,
      });
      const body = (await response.json()) as { error?: { code?: string } };
      if (response.status !== 413 || body.error?.code !== "KN-413")
        wrong.push(`${op.operationId}: ${response.status}`);
    }
    expect(wrong).toEqual([]);
  });

  test("every list operation bounds `limit`: 500 is fine, 501 and more are 400", async () => {
    const m = await createTestManager();
    await seedWorld(m);
    const admin = await m.token("admin");
    const wrong: string[] = [];
    const lists = operations(doc).filter(
      (o) => o.method === "get" && o.parameters.some((p) => p.name === "limit"),
    );
    expect(lists.length).toBeGreaterThanOrEqual(8);
    for (const op of lists) {
      const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) =>
        name === "tenant" ? "acme" : name === "project" ? "web" : "site",
      );
      for (const [limit, expected] of [
        ["500", 200],
        ["501", 400],
        ["100000", 400],
        ["1e3", 400],
      ] as const) {
        const response = await m.app.request(`${path}?limit=${limit}`, {
          headers: { authorization: `Bearer ${admin}` },
        });
        if (response.status !== expected) wrong.push(`${op.operationId} limit=${limit}: ${response.status}`);
      }
    }
    await m.close();
    expect(wrong).toEqual([]);
  });

  test("token issuance is rate limited per subject: 429 KN-429 with Retry-After, other subjects unaffected", async () => {
    let now = Date.parse("2026-06-01T00:00:00Z");
    const limited = await createTestManager({ now: () => new Date(now) });
    try {
      const owner = await limited.token("tenantOwner", {
        tenant: "acme",
        subject: "alice",
        ttlSeconds: 86_400,
      });
      const issue = (token: string) =>
        limited.call("POST", "/api/v1/tokens", { token, body: { role: "readOnly", tenant: "acme" } });
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push((await issue(owner)).status);
      expect(statuses.filter((s) => s === 201).length).toBe(20);
      const refused = await issue(owner);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe("KN-429");
      const retryAfter = Number(refused.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      // Another subject has its own bucket.
      const bob = await limited.token("tenantOwner", { tenant: "acme", subject: "bob" });
      expect((await issue(bob)).status).toBe(201);
      // After Retry-After seconds, alice may issue again (once).
      now += retryAfter * 1000;
      expect((await issue(owner)).status).toBe(201);
      expect((await issue(owner)).status).toBe(429);
    } finally {
      await limited.close();
    }
  });
});
