/**
 * @module shared/messages — every MQTT payload is one JSON envelope `{ v, id, kind, clusterId, sentAt,
 * traceparent?, body }` (DESIGN.md §3), validated here on both sides. `id` is a UUIDv7 made before the first
 * send and kept across retries: it is the dedupe key. Unknown `v` or `kind`, oversize payloads and schema
 * failures are rejected with a reason — never thrown past the caller.
 */
import type { $ZodType } from "zod/v4/core";
import { type Channel, CHANNELS } from "./topics.ts";
import { z } from "./zod.ts";

export const ENVELOPE_VERSION = 1;
/** W3C trace-context `traceparent` (version 00). */
export const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const Id = z.string().check(z.regex(UUID, "must be a UUID"));
const Iso = z.iso.datetime({ offset: true });
/** zod 4.6's pattern for `z.iso.datetime({ offset: true })`; the fast path is off if zod's differs. */
const ISO_DATETIME =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|([+-](?:[01]\d|2[0-3]):[0-5]\d)))$/;

/** A string of `min` to `max` characters. */
const text = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const upTo = (max: number) => z.string().check(z.maxLength(max));
/** A count or revision: a safe integer ≥ `min`. */
const whole = (min = 0) => z.number().check(z.int(), z.minimum(min));
const anyObject = () => z.record(z.string(), z.unknown());
const Traceparent = z.optional(z.string().check(z.regex(TRACEPARENT)));

// Every message schema is built on first use (z.lazy): a process builds only those it parses — the operator the
// desired, command and ack bodies, the Manager the rest — and none at start-up. Building them all cost the idle
// operator ~1.4 MB of RSS (docs/benchmarks.md "Operator memory").

/**
 * The metrics of a usage report: the API's `UsageMetrics` (shared/api/models.ts), which the operator does not load
 * (its OpenAPI-documented schemas are ~2.5 MB of RSS); tests/shared/messages.test.ts holds the two equal.
 */
export const UsageMetrics = z.lazy(() =>
  z.object({
    cpuRequestMillicores: z.number().check(z.minimum(0)),
    memoryRequestBytes: z.number().check(z.minimum(0)),
    storageBytes: z.number().check(z.minimum(0)),
    loadBalancers: whole(),
    pods: whole(),
    namespaces: whole(),
    applications: whole(),
    quotaViolations: whole(),
  }),
);

// ── manager → operator ────────────────────────────────────────────────────────────────────────────────────────

export const DesiredChange = z.lazy(() =>
  z.object({
    revision: whole(1),
    kind: text(1, 64),
    key: text(1, 512),
    op: z.enum(["upsert", "delete"]),
    body: z.nullable(anyObject()),
    /** The trace of the API call that made this change (W3C traceparent), continued by the operator's apply. */
    traceparent: Traceparent,
  }),
);
export type DesiredChange = z.infer<typeof DesiredChange>;

/**
 * A batch of changes in revision order. `snapshot: true` means the batch is the cluster's whole desired state at
 * `toRevision` (sent when the operator's revision was compacted away): anything not in it is to be removed.
 */
export const DesiredBody = z.lazy(() =>
  z.object({
    fromRevision: whole(),
    toRevision: whole(),
    snapshot: z.boolean(),
    changes: z.array(DesiredChange).check(z.maxLength(10_000)),
  }),
);

export const COMMAND_NAMES = ["issue-token", "collect-usage", "logs", "cleanup", "resync"] as const;
export const CommandBody = z.lazy(() =>
  z.object({
    correlationId: Id,
    name: z.enum(COMMAND_NAMES),
    deadline: Iso,
    args: z._default(anyObject(), {}),
  }),
);
export type CommandBody = z.infer<typeof CommandBody>;

export const AckBody = z.lazy(() =>
  z.object({ ids: z.array(Id).check(z.minLength(1), z.maxLength(10_000)) }),
);

// ── operator → manager ────────────────────────────────────────────────────────────────────────────────────────

export const HelloBody = z.lazy(() =>
  z.object({
    operatorVersion: upTo(64),
    lastAppliedRevision: whole(),
    kubernetesVersion: z.nullable(upTo(64)),
    /** API group → served versions, e.g. `{ "capsule.clastix.io": ["v1beta2"], "core.oam.dev": ["v1beta1"] }`. */
    capabilities: z.record(upTo(253), z.array(upTo(32)).check(z.maxLength(16))),
  }),
);
export type HelloBody = z.infer<typeof HelloBody>;

export const OBJECT_PHASES = ["Pending", "Applying", "Deployed", "Drifted", "Error"] as const;
export const StatusBody = z.lazy(() =>
  z.object({
    objectKind: z.enum(["tenant", "project", "app", "clusterConfig"]),
    key: text(1, 512),
    observedGeneration: whole(),
    phase: z.enum(OBJECT_PHASES),
    /** The desired revision this status reflects. */
    revision: z.optional(whole()),
    message: z.optional(upTo(4096)),
    detail: z.optional(anyObject()),
  }),
);
export type StatusBody = z.infer<typeof StatusBody>;

export const UsageBody = z.lazy(() =>
  z.object({
    tenant: text(1, 63),
    windowStart: Iso,
    windowEnd: Iso,
    metrics: UsageMetrics,
    byProject: z._default(z.record(z.string(), UsageMetrics), {}),
  }),
);
export type UsageBody = z.infer<typeof UsageBody>;

export const EventBody = z.lazy(() =>
  z.object({
    type: z.enum(["Normal", "Warning"]),
    reason: text(1, 128),
    message: upTo(4096),
    at: Iso,
    tenant: z._default(z.nullable(upTo(63)), null),
    object: z._default(z.nullable(anyObject()), null),
  }),
);

export const ReplyBody = z.lazy(() =>
  z.object({
    correlationId: Id,
    ok: z.boolean(),
    result: z.optional(anyObject()),
    error: z.optional(z.object({ code: upTo(16), message: upTo(4096) })),
  }),
);
export type ReplyBody = z.infer<typeof ReplyBody>;

export const PresenceBody = z.lazy(() =>
  z.object({
    state: z.enum(["online", "offline"]),
    /** Heartbeats repeat `online` at the operator's interval; the last will says `offline`. */
    heartbeatIntervalMs: z.optional(z.number().check(z.int(), z.minimum(100), z.maximum(3_600_000))),
    /** The revision the operator has applied, so the Manager notices a lost `desired` message between changes. */
    lastAppliedRevision: z.optional(whole()),
    reason: z.optional(upTo(256)),
  }),
);

/** Kind → body schema and the channel it travels on. One table: the router's `switch` is checked against it. */
export const MESSAGE_KINDS = {
  desired: { channel: "desired", body: DesiredBody },
  command: { channel: "commands", body: CommandBody },
  ack: { channel: "acks", body: AckBody },
  hello: { channel: "hello", body: HelloBody },
  status: { channel: "status", body: StatusBody },
  usage: { channel: "usage", body: UsageBody },
  event: { channel: "events", body: EventBody },
  reply: { channel: "replies", body: ReplyBody },
  presence: { channel: "presence", body: PresenceBody },
} as const satisfies Record<string, { channel: Channel; body: $ZodType }>;

export type MessageKind = keyof typeof MESSAGE_KINDS;
export type BodyOf<K extends MessageKind> = z.output<(typeof MESSAGE_KINDS)[K]["body"]>;

export interface Envelope<K extends MessageKind = MessageKind> {
  v: typeof ENVELOPE_VERSION;
  id: string;
  kind: K;
  clusterId: string;
  sentAt: string;
  traceparent?: string;
  body: BodyOf<K>;
}

/** Any envelope, discriminated by `kind` so a `switch` over it narrows the body. */
export type AnyEnvelope = { [K in MessageKind]: Envelope<K> }[MessageKind];

const EnvelopeShape = z.lazy(() =>
  z.object({
    v: z.number(),
    id: Id,
    kind: z.string(),
    clusterId: upTo(64),
    sentAt: Iso,
    traceparent: Traceparent,
    body: z.unknown(),
  }),
);

export type RejectReason =
  | "oversize"
  | "not_json"
  | "bad_version"
  | "unknown_kind"
  | "wrong_channel"
  | "wrong_cluster"
  | "invalid";

export type ParseResult =
  | { ok: true; envelope: AnyEnvelope }
  | { ok: false; reason: RejectReason; message: string };

export interface ParseExpectations {
  /** The channel the payload arrived on; its kind must belong there. */
  channel: Channel;
  /** The cluster the topic (and the sender's certificate) names; the envelope must agree. */
  clusterId: string;
  maxBytes: number;
}

// ── Fast path ──────────────────────────────────────────────────────────────────────────────────────────────────
// The envelope and the high-volume bodies (usage, ack) checked by hand: it accepts a subset of what the zod
// schemas accept and builds the same output (unknown keys dropped, defaults filled). Anything it does not accept
// goes through zod, which decides and words the rejection. tests/shared/messages-fast.test.ts holds the two equal.

/** Whether the fast path is in use (zod's datetime pattern is the one it copies). */
export const FAST_PARSE =
  (Iso as unknown as { _zod?: { pattern?: RegExp } })._zod?.pattern?.source === ISO_DATETIME.source;

type Raw = Record<string, unknown>;
const isObject = (value: unknown): value is Raw =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isIso = (value: unknown): value is string => typeof value === "string" && ISO_DATETIME.test(value);
const nonNegative = (value: unknown): value is number =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;
const count = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function fastMetrics(raw: unknown): z.output<typeof UsageMetrics> | null {
  if (!isObject(raw)) return null;
  const m = raw;
  if (
    !nonNegative(m.cpuRequestMillicores) ||
    !nonNegative(m.memoryRequestBytes) ||
    !nonNegative(m.storageBytes) ||
    !count(m.loadBalancers) ||
    !count(m.pods) ||
    !count(m.namespaces) ||
    !count(m.applications) ||
    !count(m.quotaViolations)
  )
    return null;
  return {
    cpuRequestMillicores: m.cpuRequestMillicores,
    memoryRequestBytes: m.memoryRequestBytes,
    storageBytes: m.storageBytes,
    loadBalancers: m.loadBalancers,
    pods: m.pods,
    namespaces: m.namespaces,
    applications: m.applications,
    quotaViolations: m.quotaViolations,
  };
}

function fastUsage(raw: unknown): UsageBody | null {
  if (!isObject(raw)) return null;
  const { tenant, windowStart, windowEnd } = raw;
  if (typeof tenant !== "string" || tenant.length < 1 || tenant.length > 63) return null;
  if (!isIso(windowStart) || !isIso(windowEnd)) return null;
  const metrics = fastMetrics(raw.metrics);
  if (!metrics) return null;
  const byProject: Record<string, z.output<typeof UsageMetrics>> = {};
  if (raw.byProject !== undefined) {
    if (!isObject(raw.byProject)) return null;
    for (const [key, value] of Object.entries(raw.byProject)) {
      if (key === "__proto__") return null;
      const project = fastMetrics(value);
      if (!project) return null;
      byProject[key] = project;
    }
  }
  return { tenant, windowStart, windowEnd, metrics, byProject };
}

function fastAck(raw: unknown): z.output<typeof AckBody> | null {
  if (!isObject(raw)) return null;
  const ids = raw.ids;
  if (!Array.isArray(ids) || ids.length < 1 || ids.length > 10_000) return null;
  for (const id of ids) if (typeof id !== "string" || !UUID.test(id)) return null;
  return { ids: ids as string[] };
}

/** Heartbeats: one per operator every 10 s, the commonest message at rest. */
function fastPresence(raw: unknown): z.output<typeof PresenceBody> | null {
  if (!isObject(raw)) return null;
  const { state, heartbeatIntervalMs, lastAppliedRevision, reason } = raw;
  if (state !== "online" && state !== "offline") return null;
  if (
    heartbeatIntervalMs !== undefined &&
    !(count(heartbeatIntervalMs) && heartbeatIntervalMs >= 100 && heartbeatIntervalMs <= 3_600_000)
  )
    return null;
  if (lastAppliedRevision !== undefined && !count(lastAppliedRevision)) return null;
  if (reason !== undefined && (typeof reason !== "string" || reason.length > 256)) return null;
  return {
    state,
    ...(heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs } : {}),
    ...(lastAppliedRevision !== undefined ? { lastAppliedRevision } : {}),
    ...(reason !== undefined ? { reason } : {}),
  };
}

const FAST_BODIES: Partial<Record<MessageKind, (raw: unknown) => unknown>> = {
  usage: fastUsage,
  ack: fastAck,
  presence: fastPresence,
};

/** The envelope's fields if they pass every check of `EnvelopeShape`, else null (zod then decides). */
function fastShape(raw: unknown): z.output<typeof EnvelopeShape> | null {
  if (!isObject(raw)) return null;
  const { v, id, kind, clusterId, sentAt, traceparent } = raw;
  if (typeof v !== "number" || !Number.isFinite(v)) return null;
  if (typeof id !== "string" || !UUID.test(id)) return null;
  if (typeof kind !== "string" || typeof clusterId !== "string" || clusterId.length > 64) return null;
  if (!isIso(sentAt) || !Object.hasOwn(raw, "body")) return null;
  if (traceparent !== undefined && (typeof traceparent !== "string" || !TRACEPARENT.test(traceparent)))
    return null;
  return {
    v,
    id,
    kind,
    clusterId,
    sentAt,
    ...(traceparent !== undefined ? { traceparent } : {}),
    body: raw.body,
  };
}

/** Validates one payload. Never throws: a rejection says why, for the counter and the log. */
export function parseEnvelope(
  payload: Uint8Array | string,
  expect: ParseExpectations,
  /** `false`: zod only (the reference the fast path is tested against). */
  fast = FAST_PARSE,
): ParseResult {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > expect.maxBytes)
    return { ok: false, reason: "oversize", message: `${size} bytes > ${expect.maxBytes}` };
  let raw: unknown;
  try {
    raw = JSON.parse(
      typeof payload === "string" ? payload : new TextDecoder("utf-8", { fatal: true }).decode(payload),
    );
  } catch {
    return { ok: false, reason: "not_json", message: "payload is not UTF-8 JSON" };
  }
  let envelope = fast ? fastShape(raw) : null;
  if (!envelope) {
    const shape = z.safeParse(EnvelopeShape, raw);
    if (!shape.success) {
      const issue = shape.error.issues[0];
      return {
        ok: false,
        reason: "invalid",
        message: `${issue?.path.join(".") || "envelope"}: ${issue?.message}`,
      };
    }
    envelope = shape.data;
  }
  if (envelope.v !== ENVELOPE_VERSION) {
    return { ok: false, reason: "bad_version", message: `unsupported envelope version ${envelope.v}` };
  }
  if (!Object.hasOwn(MESSAGE_KINDS, envelope.kind)) {
    return {
      ok: false,
      reason: "unknown_kind",
      message: `unknown kind ${JSON.stringify(envelope.kind.slice(0, 64))}`,
    };
  }
  const spec = MESSAGE_KINDS[envelope.kind as MessageKind];
  if (spec.channel !== expect.channel) {
    return {
      ok: false,
      reason: "wrong_channel",
      message: `kind ${envelope.kind} does not travel on ${expect.channel}`,
    };
  }
  if (envelope.clusterId !== expect.clusterId) {
    return { ok: false, reason: "wrong_cluster", message: "envelope clusterId differs from the topic's" };
  }
  const quick = fast ? FAST_BODIES[envelope.kind as MessageKind]?.(envelope.body) : undefined;
  if (quick) return { ok: true, envelope: { ...envelope, v: ENVELOPE_VERSION, body: quick } as AnyEnvelope };
  const body = z.safeParse(spec.body, envelope.body);
  if (!body.success) {
    const issue = body.error.issues[0];
    return {
      ok: false,
      reason: "invalid",
      message: `body.${issue?.path.join(".") ?? ""}: ${issue?.message}`,
    };
  }
  return { ok: true, envelope: { ...envelope, v: ENVELOPE_VERSION, body: body.data } as AnyEnvelope };
}

/** Builds an envelope; `id` must be made once per logical message and reused on every retry. */
export function makeEnvelope<K extends MessageKind>(options: {
  id: string;
  kind: K;
  clusterId: string;
  body: BodyOf<K>;
  sentAt?: Date;
  traceparent?: string;
}): Envelope<K> {
  return {
    v: ENVELOPE_VERSION,
    id: options.id,
    kind: options.kind,
    clusterId: options.clusterId,
    sentAt: (options.sentAt ?? new Date()).toISOString(),
    ...(options.traceparent ? { traceparent: options.traceparent } : {}),
    body: options.body,
  };
}

/** Channel direction guard used by routers: a kind sent the wrong way is a bug, not input. */
export function channelOf(kind: MessageKind): Channel {
  return MESSAGE_KINDS[kind].channel;
}

export { CHANNELS };
