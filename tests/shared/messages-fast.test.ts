/**
 * The hand-written fast path of `parseEnvelope` (envelope, usage, ack and presence bodies) against zod alone: on a
 * seeded corpus of valid payloads and mutations of every field, both give exactly the same result — the same
 * envelope (unknown keys dropped, defaults filled) or the same rejection and message.
 */
import { describe, expect, test } from "bun:test";
import { uuidv7 } from "../../shared/ids.ts";
import { FAST_PARSE, makeEnvelope, parseEnvelope } from "../../shared/messages.ts";
import type { Channel } from "../../shared/topics.ts";

const CLUSTER = uuidv7();
const metrics = () => ({
  cpuRequestMillicores: 1500,
  memoryRequestBytes: 2 ** 30,
  storageBytes: 0.5,
  loadBalancers: 1,
  pods: 3,
  namespaces: 2,
  applications: 1,
  quotaViolations: 0,
});

/** Odd values for any field: wrong types, bounds, unsafe and fractional numbers, tricky dates. */
const ODD: unknown[] = [
  undefined,
  null,
  true,
  0,
  -0,
  -1,
  1.5,
  2 ** 53,
  1e300,
  "",
  "x",
  "a".repeat(63),
  "a".repeat(64),
  "a".repeat(65),
  [],
  {},
  [uuidv7()],
  uuidv7(),
  "2026-02-29T00:00:00Z",
  "2028-02-29T00:00:00.123456Z",
  "2026-11-22T10:00:00+01:00",
  "2026-11-22T10:00:00",
  "2026-11-22T24:00:00Z",
  "2026-11-22 10:00:00Z",
  "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
  "00-0123456789ABCDEF0123456789abcdef-0123456789abcdef-01",
  { __proto__: null, x: 1 },
];

function seeded(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

/** Every path to a leaf (and to each object) of a JSON value. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  const out: string[][] = [prefix];
  if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) out.push(...paths(inner, [...prefix, key]));
  }
  return out;
}

function mutate(value: unknown, path: string[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  if (!value || typeof value !== "object") return value;
  const copy = structuredClone(value) as Record<string, unknown>;
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const inner = node[key];
    if (!inner || typeof inner !== "object") return copy; // an earlier mutation replaced the parent
    node = inner as Record<string, unknown>;
  }
  const last = path.at(-1)!;
  if (replacement === undefined) delete node[last];
  else node[last] = replacement;
  return copy;
}

function samples(): Array<{ channel: Channel; envelope: unknown }> {
  const usage = makeEnvelope({
    id: uuidv7(),
    kind: "usage",
    clusterId: CLUSTER,
    traceparent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
    body: {
      tenant: "acme",
      windowStart: "2026-11-22T09:00:00.000Z",
      windowEnd: "2026-11-22T10:00:00.000Z",
      metrics: metrics(),
      byProject: { web: metrics(), api: metrics() },
    },
  });
  const ack = makeEnvelope({
    id: uuidv7(),
    kind: "ack",
    clusterId: CLUSTER,
    body: { ids: [uuidv7(), uuidv7()] },
  });
  const status = makeEnvelope({
    id: uuidv7(),
    kind: "status",
    clusterId: CLUSTER,
    body: { objectKind: "app", key: "acme/web/site", observedGeneration: 2, phase: "Deployed" },
  });
  const heartbeat = makeEnvelope({
    id: uuidv7(),
    kind: "presence",
    clusterId: CLUSTER,
    body: { state: "online", heartbeatIntervalMs: 10_000, lastAppliedRevision: 42 },
  });
  const will = makeEnvelope({
    id: uuidv7(),
    kind: "presence",
    clusterId: CLUSTER,
    body: {
      state: "offline",
      heartbeatIntervalMs: 10_000,
      lastAppliedRevision: 0,
      reason: "connection lost",
    },
  });
  return [
    { channel: "presence", envelope: heartbeat },
    { channel: "presence", envelope: will },
    { channel: "presence", envelope: { ...heartbeat, body: { state: "online", extra: [1] } } },
    { channel: "usage", envelope: usage },
    { channel: "usage", envelope: { ...usage, extra: 1, body: { ...usage.body, extra: { a: 1 } } } },
    {
      channel: "usage",
      envelope: {
        ...usage,
        body: { ...usage.body, byProject: undefined, metrics: { ...metrics(), more: 1 } },
      },
    },
    { channel: "acks", envelope: ack },
    { channel: "status", envelope: status },
  ];
}

describe("parseEnvelope fast path", () => {
  test("is in use (zod's datetime pattern is the one it copies)", () => {
    expect(FAST_PARSE).toBe(true);
  });

  test("gives exactly zod's result on valid payloads and every single-field mutation of them", () => {
    const random = seeded(20261122);
    let compared = 0;
    let accepted = 0;
    for (const { channel, envelope } of samples()) {
      const cases: unknown[] = [envelope];
      for (const path of paths(envelope)) {
        for (const odd of ODD) cases.push(mutate(envelope, path, odd));
        // A few random pairs of mutations too.
        const other = paths(envelope)[Math.floor(random() * paths(envelope).length)]!;
        const odd = ODD[Math.floor(random() * ODD.length)];
        cases.push(mutate(mutate(envelope, path, ODD[Math.floor(random() * ODD.length)]), other, odd));
      }
      for (const value of cases) {
        const payload = JSON.stringify(value) ?? "null";
        const expectations = { channel, clusterId: CLUSTER, maxBytes: 1 << 20 };
        const fast = parseEnvelope(payload, expectations, true);
        const reference = parseEnvelope(payload, expectations, false);
        expect({ payload, result: fast }).toEqual({ payload, result: reference });
        compared++;
        if (reference.ok) accepted++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThan(50);
  });
});
