/** Label selectors (equality and set-based) and the field selectors every resource supports. */

import { matchesLabels, parseLabelSelector as parseShared } from "../../shared/label-selector.ts";
import { badRequest } from "./errors.ts";

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

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

/** Parses a `labelSelector` query parameter; 400 BadRequest when it does not parse (as the real server). */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (!text) return () => true;
  let requirements: ReturnType<typeof parseShared>;
  try {
    // The product's parser (shared/label-selector.ts); only the error becomes a Kubernetes Status here.
    requirements = parseShared(text, "labelSelector");
  } catch (error) {
    throw badRequest(`unable to parse requirement: ${(error as Error).message}`);
  }
  return (labels) => matchesLabels(requirements, labels ?? {});
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
