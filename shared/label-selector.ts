/**
 * @module shared/label-selector — Kubernetes label selectors (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
 * `k notin (a,b)`, `k`, `!k`), parsed once and matched against label maps.
 */
import { KubeNovaError } from "./errors.ts";

export type Requirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function invalid(field: string, message: string): KubeNovaError {
  return new KubeNovaError("KN-400", `${field}: ${message}`, { details: [{ path: field, message }] });
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      terms.push(current);
      current = "";
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t.length > 0);
}

export function parseLabelSelector(selector: string, field = "labelSelector"): Requirement[] {
  const requirements: Requirement[] = [];
  for (const term of splitTerms(selector)) {
    const checkKey = (key: string) => {
      if (!KEY.test(key)) throw invalid(field, `invalid label key ${JSON.stringify(key)}`);
      return key;
    };
    const checkValue = (value: string) => {
      if (value.length > 63 || !VALUE.test(value))
        throw invalid(field, `invalid label value ${JSON.stringify(value)}`);
      return value;
    };
    const set = term.match(/^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/);
    const equality = set ? null : term.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/);
    const absent = set || equality ? null : term.match(/^!\s*(\S+)$/);
    const present = set || equality || absent ? null : term.match(/^(\S+)$/);
    if (set) {
      const values = set[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v.length > 0)
        .map(checkValue);
      if (values.length === 0) throw invalid(field, `'${set[2]}' needs at least one value`);
      requirements.push({ key: checkKey(set[1]!), op: set[2] as "in" | "notin", values });
    } else if (equality) {
      requirements.push({
        key: checkKey(equality[1]!),
        op: equality[2] === "!=" ? "!=" : "=",
        value: checkValue(equality[3]!),
      });
    } else if (absent) {
      requirements.push({ key: checkKey(absent[1]!), op: "!exists" });
    } else if (present) {
      requirements.push({ key: checkKey(present[1]!), op: "exists" });
    } else {
      throw invalid(field, `cannot parse ${JSON.stringify(term)}`);
    }
  }
  return requirements;
}

export function matchesLabels(requirements: Requirement[], labels: Record<string, string>): boolean {
  return requirements.every((r) => {
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
      case "!exists":
        return !has;
      default: {
        const unreachable: never = r;
        return unreachable;
      }
    }
  });
}
