/** Label selectors (equality and set-based) and the field selectors every resource supports. */

import { badRequest } from "./errors.ts";

type Requirement =
  | { op: "=" | "!="; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "exists" | "!"; key: string };

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;

/** Splits on commas that are not inside a `( … )` value set. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== "");
}

function parseTerm(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (set) {
    const values = set[3]!
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
    return { op: set[2] as "in" | "notin", key: checkKey(set[1]!), values };
  }
  const eq = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (eq) {
    return { op: eq[2] === "!=" ? "!=" : "=", key: checkKey(eq[1]!), value: eq[3]! };
  }
  if (term.startsWith("!")) return { op: "!", key: checkKey(term.slice(1).trim()) };
  return { op: "exists", key: checkKey(term) };
}

function checkKey(key: string): string {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}"`);
  return key;
}

/** Parses a `labelSelector` query parameter; 400 BadRequest when it does not parse (as the real server). */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (!text) return () => true;
  const requirements = splitTerms(text).map(parseTerm);
  return (labels) => requirements.every((r) => matches(r, labels ?? {}));
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case "=":
      return has && value === r.value;
    case "!=":
      return !has || value !== r.value;
    case "in":
      return has && r.values.includes(value!);
    case "notin":
      return !has || !r.values.includes(value!);
    case "exists":
      return has;
    case "!":
      return !has;
    default: {
      const never: never = r;
      return never;
    }
  }
}

/** Matches a structured `metav1.LabelSelector` (matchLabels + matchExpressions), as used by NetworkPolicies. */
export function matchesLabelSelectorObject(
  selector: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
  },
  labels: Record<string, string> | undefined,
): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const values = e.values ?? [];
    if (e.operator === "In" && !(has && values.includes(l[e.key]!))) return false;
    if (e.operator === "NotIn" && has && values.includes(l[e.key]!)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

export type FieldSelector = (meta: { name: string; namespace?: string | undefined }) => boolean;

/**
 * Field selectors: only `metadata.name` and `metadata.namespace` (the ones every resource supports);
 * anything else is a 400 like the real server's "field label not supported".
 */
export function parseFieldSelector(text: string | null | undefined): FieldSelector {
  if (!text) return () => true;
  const tests = splitTerms(text).map((term) => {
    const m = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    const field = m[1]!;
    if (field !== "metadata.name" && field !== "metadata.namespace") {
      throw badRequest(`field label not supported: ${field}`);
    }
    const negate = m[2] === "!=";
    const value = m[3]!;
    return (meta: { name: string; namespace?: string | undefined }) => {
      const actual = field === "metadata.name" ? meta.name : (meta.namespace ?? "");
      return negate ? actual !== value : actual === value;
    };
  });
  return (meta) => tests.every((t) => t(meta));
}
