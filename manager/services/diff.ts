/** A structural diff between two JSON values as RFC 6902-style operations with RFC 6901 paths. */

export interface DiffEntry {
  op: "add" | "remove" | "replace";
  path: string;
  from?: unknown;
  value?: unknown;
}

const escapePointer = (segment: string) => segment.replaceAll("~", "~0").replaceAll("/", "~1");

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function jsonDiff(from: unknown, to: unknown, path = ""): DiffEntry[] {
  if (Object.is(from, to)) return [];
  if (Array.isArray(from) && Array.isArray(to)) {
    const out: DiffEntry[] = [];
    const shared = Math.min(from.length, to.length);
    for (let i = 0; i < shared; i++) out.push(...jsonDiff(from[i], to[i], `${path}/${i}`));
    for (let i = shared; i < to.length; i++) out.push({ op: "add", path: `${path}/${i}`, value: to[i] });
    for (let i = from.length - 1; i >= shared; i--)
      out.push({ op: "remove", path: `${path}/${i}`, from: from[i] });
    return out;
  }
  if (isObject(from) && isObject(to)) {
    const out: DiffEntry[] = [];
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    for (const key of keys) {
      const childPath = `${path}/${escapePointer(key)}`;
      if (!(key in to)) out.push({ op: "remove", path: childPath, from: from[key] });
      else if (!(key in from)) out.push({ op: "add", path: childPath, value: to[key] });
      else out.push(...jsonDiff(from[key], to[key], childPath));
    }
    return out;
  }
  return [{ op: "replace", path, from, value: to }];
}
