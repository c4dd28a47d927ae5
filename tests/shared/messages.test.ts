/** The MQTT envelope contract: every kind round-trips, every bad payload is rejected with a reason, nothing throws. */
import { describe, expect, test } from "bun:test";
import { uuidv7 } from "../../shared/ids.ts";
import { UsageMetrics as ApiUsageMetrics } from "../../shared/api/models.ts";
import {
  makeEnvelope,
  MESSAGE_KINDS,
  type MessageKind,
  parseEnvelope,
  UsageMetrics,
} from "../../shared/messages.ts";
import { z } from "../../shared/zod.ts";

const CLUSTER = uuidv7();
const metrics = {
  cpuRequestMillicores: 1500,
  memoryRequestBytes: 2 ** 30,
  storageBytes: 0,
  loadBalancers: 1,
  pods: 3,
  namespaces: 2,
  applications: 1,
  quotaViolations: 0,
};

const SAMPLES: { [K in MessageKind]: unknown } = {
  desired: {
    fromRevision: 0,
    toRevision: 1,
    snapshot: false,
    changes: [{ revision: 1, kind: "tenant", key: "acme", op: "upsert", body: {} }],
  },
  command: {
    correlationId: uuidv7(),
    name: "issue-token",
    deadline: new Date().toISOString(),
    args: { role: "owner" },
  },
  ack: { ids: [uuidv7()] },
  hello: {
    operatorVersion: "0.1.0",
    lastAppliedRevision: 7,
    kubernetesVersion: "v1.31.0",
    capabilities: { "core.oam.dev": ["v1beta1"] },
  },
  status: { objectKind: "app", key: "acme/web/site", observedGeneration: 2, phase: "Deployed", revision: 3 },
  usage: {
    tenant: "acme",
    windowStart: "2026-11-21T10:00:00.000Z",
    windowEnd: "2026-11-21T11:00:00.000Z",
    metrics,
    byProject: { web: metrics },
  },
  event: {
    type: "Warning",
    reason: "QuotaExceeded",
    message: "cpu",
    at: new Date().toISOString(),
    tenant: "acme",
    object: null,
  },
  reply: { correlationId: uuidv7(), ok: true, result: { token: "x" } },
  presence: { state: "online", heartbeatIntervalMs: 5000 },
};

const payload = (kind: MessageKind, overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    ...makeEnvelope({ id: uuidv7(), kind, clusterId: CLUSTER, body: SAMPLES[kind] as never }),
    ...overrides,
  });

describe("envelopes", () => {
  test.each(Object.keys(MESSAGE_KINDS) as MessageKind[])("%s round-trips on its own channel", (kind) => {
    const result = parseEnvelope(payload(kind), {
      channel: MESSAGE_KINDS[kind].channel,
      clusterId: CLUSTER,
      maxBytes: 65536,
    });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.envelope.kind).toBe(kind);
  });

  test.each([
    ["oversize", payload("status"), 100],
    ["not_json", "{nope", 65536],
    ["not_json", new Uint8Array([0xff, 0xfe, 0x7b]), 65536],
    ["bad_version", payload("status", { v: 2 }), 65536],
    ["unknown_kind", payload("status", { kind: "teleport" }), 65536],
    ["wrong_channel", payload("usage"), 65536],
    ["wrong_cluster", payload("status", { clusterId: uuidv7() }), 65536],
    ["invalid", payload("status", { id: "not-a-uuid" }), 65536],
    [
      "invalid",
      payload("status", { body: { objectKind: "app", key: "k", observedGeneration: -1, phase: "Deployed" } }),
      65536,
    ],
    ["invalid", payload("status", { traceparent: "00-zz" }), 65536],
    ["invalid", "null", 65536],
  ] as const)("%s is rejected with that reason", (reason, bytes, maxBytes) => {
    const result = parseEnvelope(bytes, { channel: "status", clusterId: CLUSTER, maxBytes });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toBe(reason);
  });

  test("10,000 random payloads never throw", () => {
    let seed = 42;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const base = payload("usage");
    for (let i = 0; i < 10_000; i++) {
      const bytes = new TextEncoder().encode(base);
      for (let flips = next() % 8; flips >= 0; flips--) bytes[next() % bytes.length] = next() % 256;
      expect(() =>
        parseEnvelope(bytes, { channel: "usage", clusterId: CLUSTER, maxBytes: 65536 }),
      ).not.toThrow();
    }
  });
});

test("a usage report's metrics are the API's UsageMetrics: same fields, same verdict on every odd value", () => {
  const extra = { ...metrics, unknown: 1 }; // both drop unknown keys: what is left are their fields
  expect(Object.keys(z.parse(UsageMetrics, extra)).sort()).toEqual(
    Object.keys(ApiUsageMetrics.parse(extra)).sort(),
  );
  const odd = [0, -0, -1, 1.5, 2 ** 53, 1e300, Number.NaN, "1", null, undefined, true, {}, []];
  for (const field of Object.keys(metrics)) {
    for (const value of odd) {
      const candidate = { ...metrics, [field]: value };
      const ours = z.safeParse(UsageMetrics, candidate);
      const api = ApiUsageMetrics.safeParse(candidate);
      expect({ field, value, ok: ours.success }).toEqual({ field, value, ok: api.success });
      if (!ours.success && !api.success)
        expect(ours.error.issues[0]?.message).toBe(api.error.issues[0]?.message);
    }
  }
});
