/**
 * A renderer for the thin subset of Helm templates KubeNova's charts use (no helm binary here, NOTES.md), so the
 * tests can render `charts/*` and compare the result with the Manager's install.yaml. Supported, with Helm's
 * meaning: `{{ .Values.a.b }}`, `{{ .Release.Name|Namespace|Service }}`, `{{ .Chart.Name|Version|AppVersion }}`,
 * `{{- if X }} … {{- else }} … {{- end }}` with `X` a value or `not <value>`, `{{ X | quote }}` / `{{ quote X }}`,
 * `{{ toYaml X | nindent N }}`, comments `{{/* … *\/}}` and the `{{-`/`-}}` whitespace trimming. Anything else
 * throws, which keeps the charts thin: a template that needs more than this is a template to simplify. Stricter
 * than Helm on purpose: a value missing from values.yaml throws instead of rendering empty.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import type { KubeManifest } from "../../manager/install/manifests.ts";
import { validateValues } from "./schema.ts";

export class TemplateError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "TemplateError";
  }
}

export interface RenderContext {
  values: Record<string, unknown>;
  release: { name: string; namespace: string; service?: string };
  chart: { name: string; version: string; appVersion: string };
}

type Node =
  | { type: "text"; text: string }
  | { type: "output"; pipeline: string }
  | { type: "if"; condition: string; whenTrue: Node[]; whenFalse: Node[] };

interface Token {
  kind: "text" | "action";
  text: string;
  trimLeft: boolean;
  trimRight: boolean;
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    tokens.push({ kind: "text", text: source.slice(last, m.index), trimLeft: false, trimRight: false });
    tokens.push({
      kind: "action",
      text: (m[2] ?? "").trim(),
      trimLeft: m[1] !== undefined,
      trimRight: m[3] !== undefined,
    });
    last = m.index + m[0].length;
  }
  tokens.push({ kind: "text", text: source.slice(last), trimLeft: false, trimRight: false });
  // `{{-` eats all whitespace before the action, `-}}` all whitespace after it (Go text/template).
  tokens.forEach((t, i) => {
    if (t.kind !== "action") return;
    const before = tokens[i - 1];
    const after = tokens[i + 1];
    if (t.trimLeft && before) before.text = before.text.replace(/\s+$/, "");
    if (t.trimRight && after) after.text = after.text.replace(/^\s+/, "");
  });
  return tokens;
}

function parseTemplate(file: string, source: string): Node[] {
  const root: Node[] = [];
  // Each open `if` with the list currently being filled (its then- or else-branch).
  const stack: Array<{ node: Extract<Node, { type: "if" }>; target: Node[] }> = [];
  const current = () => stack.at(-1)?.target ?? root;
  for (const token of tokenize(source)) {
    if (token.kind === "text") {
      if (token.text) current().push({ type: "text", text: token.text });
      continue;
    }
    const action = token.text;
    if (/^\/\*[\s\S]*\*\/$/.test(action)) continue;
    const ifMatch = /^if\s+(.+)$/s.exec(action);
    if (ifMatch) {
      const node: Extract<Node, { type: "if" }> = {
        type: "if",
        condition: (ifMatch[1] ?? "").trim(),
        whenTrue: [],
        whenFalse: [],
      };
      current().push(node);
      stack.push({ node, target: node.whenTrue });
    } else if (action === "else") {
      const open = stack.at(-1);
      if (!open || open.target === open.node.whenFalse)
        throw new TemplateError(file, "unexpected {{ else }}");
      open.target = open.node.whenFalse;
    } else if (action === "end") {
      if (!stack.pop()) throw new TemplateError(file, "unexpected {{ end }}");
    } else if (/^(else\s+if|range|with|define|template|include|block|tpl)\b|:=|^\$/.test(action)) {
      throw new TemplateError(file, `unsupported action {{ ${action} }}: keep the templates thin`);
    } else {
      current().push({ type: "output", pipeline: action });
    }
  }
  if (stack.length > 0) throw new TemplateError(file, "an {{ if }} has no {{ end }}");
  return root;
}

function lookup(file: string, ctx: RenderContext, ref: string): unknown {
  const [scope, ...keys] = ref.slice(1).split(".");
  const fixed: Record<string, Record<string, unknown>> = {
    Release: {
      Name: ctx.release.name,
      Namespace: ctx.release.namespace,
      Service: ctx.release.service ?? "Helm",
    },
    Chart: { Name: ctx.chart.name, Version: ctx.chart.version, AppVersion: ctx.chart.appVersion },
  };
  if (scope === "Release" || scope === "Chart") {
    const value = keys.length === 1 ? fixed[scope]?.[keys[0] ?? ""] : undefined;
    if (value === undefined) throw new TemplateError(file, `unsupported reference ${ref}`);
    return value;
  }
  if (scope !== "Values" || keys.length === 0) throw new TemplateError(file, `unsupported reference ${ref}`);
  let value: unknown = ctx.values;
  for (const key of keys) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !(key in value)) {
      throw new TemplateError(file, `${ref} is not set: declare it in values.yaml`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** Go template truthiness: false, 0, nil and empty strings, lists and maps are false. */
function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

function scalarText(file: string, value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new TemplateError(
    file,
    `${what} is ${value === null ? "null" : typeof value}: use toYaml for maps and lists`,
  );
}

/** Helm's `toYaml`: YAML without the trailing newline (YAML 1.1, as Kubernetes reads it). */
function toYaml(value: unknown): string {
  return stringify(value, { version: "1.1", lineWidth: 0 }).replace(/\n$/, "");
}

function evalCommand(file: string, ctx: RenderContext, command: string, piped: unknown[]): unknown {
  const words = command.trim().split(/\s+/);
  const [head, ...rest] = words;
  const arg = (i: number): unknown => {
    const word = rest[i];
    if (word !== undefined) {
      if (word.startsWith(".")) return lookup(file, ctx, word);
      if (/^\d+$/.test(word)) return Number(word);
      throw new TemplateError(file, `unsupported argument ${word}`);
    }
    if (i - rest.length < piped.length) return piped[i - rest.length];
    throw new TemplateError(file, `${head} is missing an argument`);
  };
  const arity = rest.length + piped.length;
  const expect = (n: number) => {
    if (arity !== n) throw new TemplateError(file, `${head} takes ${n} argument(s), got ${arity}`);
  };
  if (head?.startsWith(".")) {
    if (rest.length > 0 || piped.length > 0) throw new TemplateError(file, `unsupported command ${command}`);
    return lookup(file, ctx, head);
  }
  switch (head) {
    case "quote":
      expect(1);
      return JSON.stringify(scalarText(file, arg(0), "quote's argument"));
    case "toYaml":
      expect(1);
      return toYaml(arg(0));
    case "nindent": {
      expect(2);
      const n = arg(0);
      if (typeof n !== "number") throw new TemplateError(file, "nindent takes a number first");
      const pad = " ".repeat(n);
      return `\n${scalarText(file, arg(1), "nindent's argument")
        .split("\n")
        .map((line) => pad + line)
        .join("\n")}`;
    }
    case "not":
      expect(1);
      return !truthy(arg(0));
    default:
      throw new TemplateError(file, `unsupported function ${head ?? "(none)"}: keep the templates thin`);
  }
}

function evalPipeline(file: string, ctx: RenderContext, pipeline: string): unknown {
  if (/["'`()$]/.test(pipeline)) throw new TemplateError(file, `unsupported pipeline {{ ${pipeline} }}`);
  let piped: unknown[] = [];
  for (const command of pipeline.split("|")) piped = [evalCommand(file, ctx, command, piped)];
  return piped[0];
}

function renderNodes(file: string, ctx: RenderContext, nodes: Node[]): string {
  let out = "";
  for (const node of nodes) {
    if (node.type === "text") out += node.text;
    else if (node.type === "output")
      out += scalarText(file, evalPipeline(file, ctx, node.pipeline), `{{ ${node.pipeline} }}`);
    else
      out += renderNodes(
        file,
        ctx,
        truthy(evalPipeline(file, ctx, node.condition)) ? node.whenTrue : node.whenFalse,
      );
  }
  return out;
}

/** Renders one template's text. */
export function renderTemplate(file: string, source: string, ctx: RenderContext): string {
  return renderNodes(file, ctx, parseTemplate(file, source));
}

/** Helm's value merge: maps merge recursively, anything else (lists included) replaces; null deletes the key. */
export function mergeValues(base: Record<string, unknown>, override: Record<string, unknown>) {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(current)) out[key] = mergeValues(current, value);
    else out[key] = value;
  }
  return out;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

export interface RenderedChart {
  /** The objects from `crds/`, installed as they are (Helm does not template them). */
  crds: KubeManifest[];
  /** The rendered templates' objects, in file order. */
  objects: KubeManifest[];
  /** templates/NOTES.txt, rendered. */
  notes: string;
  values: Record<string, unknown>;
}

function yamlDocuments(file: string, text: string): KubeManifest[] {
  const docs = parseAllDocuments(text, { version: "1.1" });
  const out: KubeManifest[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new TemplateError(file, `invalid YAML: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as KubeManifest | null;
    if (obj === null) continue;
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name)
      throw new TemplateError(file, "a document without apiVersion, kind or metadata.name");
    out.push(obj);
  }
  return out;
}

/**
 * Renders a chart directory like `helm template`: values.yaml merged with `values`, validated against
 * values.schema.json (a failure throws, as Helm refuses to render), then every template.
 */
export function renderChart(
  chartDir: string,
  options: { values?: Record<string, unknown>; release: { name: string; namespace: string } },
): RenderedChart {
  const chart = parse(readFileSync(path.join(chartDir, "Chart.yaml"), "utf8")) as Record<string, string>;
  const defaults = (parse(readFileSync(path.join(chartDir, "values.yaml"), "utf8"), { version: "1.1" }) ??
    {}) as Record<string, unknown>;
  const values = mergeValues(defaults, options.values ?? {});
  const result = validateValues(chartDir, values);
  if (!result.valid) throw new Error(`values don't meet the chart's schema: ${result.errors.join("; ")}`);
  const ctx: RenderContext = {
    values,
    release: options.release,
    chart: { name: chart.name ?? "", version: chart.version ?? "", appVersion: chart.appVersion ?? "" },
  };
  const crdDir = path.join(chartDir, "crds");
  const crds = safeReaddir(crdDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((f) => yamlDocuments(f, readFileSync(path.join(crdDir, f), "utf8")));
  const templateDir = path.join(chartDir, "templates");
  const objects: KubeManifest[] = [];
  let notes = "";
  for (const file of safeReaddir(templateDir)) {
    const text = readFileSync(path.join(templateDir, file), "utf8");
    if (file === "NOTES.txt") notes = renderTemplate(file, text, ctx);
    else if (/\.ya?ml$/.test(file)) objects.push(...yamlDocuments(file, renderTemplate(file, text, ctx)));
    else
      throw new TemplateError(file, "only *.yaml templates and NOTES.txt (no helpers): keep the charts thin");
  }
  return { crds, objects, notes, values };
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
