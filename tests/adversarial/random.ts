/**
 * Seeded randomness for the adversarial suites: every run prints (on failure) the seed that reproduces it.
 * `KN_ADVERSARIAL=long` selects the long mode; `KN_ADVERSARIAL_SEED=<n>` replays a run.
 */

export const LONG_MODE = process.env.KN_ADVERSARIAL === "long";

/** The seed of this run: `KN_ADVERSARIAL_SEED`, else a fresh one. */
export function runSeed(): number {
  const configured = process.env.KN_ADVERSARIAL_SEED;
  if (configured !== undefined && /^\d+$/.test(configured)) return Number(configured) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

export interface Rng {
  readonly seed: number;
  /** [0, 1) */
  next(): number;
  /** integer in [0, n) */
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Uint8Array;
}

/** mulberry32: small, fast, good enough to drive a fuzzer reproducibly. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    seed,
    next,
    int,
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      return items[int(items.length)] as T;
    },
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = int(256);
      return out;
    },
  };
}

/** Strings that have broken parsers, routers, databases and templates before. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  " ",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "../../etc/passwd",
  "..%2f..%2f",
  "' OR 1=1 --",
  '"; DROP TABLE tenants; --',
  "<script>alert(1)</script>",
  ["$", "{jndi:ldap://x}"].join(""),
  "{{7*7}}",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff\ud800",
  "💥🔥🧨",
  "\u202eevil",
  "Ω≈ç√∫˜µ≤≥÷",
  "ｆｕｌｌｗｉｄｔｈ",
  "A".repeat(300),
  "-",
  "a-",
  "-a",
  "UPPER",
  "9".repeat(40),
  "-1",
  "1e309",
  "NaN",
  "null",
  "true",
  "[]",
  "{}",
  "%",
  "%zz",
  "%E0%A4%A",
  "\r\nX-Injected: 1",
  "owner",
  "apps",
];

/** Replaces lone surrogates (not encodable as UTF-8, so not sendable in a URL) with U+FFFD. */
export function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}
