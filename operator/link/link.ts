/**
 * The operator's link to the Manager (DESIGN.md §3): one outbound MQTT connection over mutual TLS with a
 * persistent session and a retained `offline` last will; reconnects with exponential backoff and full jitter so
 * a Manager restart causes no stampede, and sooner (`busyRetry`) when the Manager is up but shedding handshakes.
 * Desired changes are applied strictly in revision order; reports go through the durable outbox and leave it only
 * on the Manager's `acks`. The only operator file importing `mqtt`.
 */
import { isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
// The client class alone: the package's entry point and `mqtt.connect` also load the WebSocket, TCP and SOCKS
// transports (~2 MB of RSS the operator never uses); the one transport it needs is the TLS stream below.
import MqttClientExport from "mqtt/lib/client";
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import {
  type AnyEnvelope,
  type BodyOf,
  type CommandBody,
  type DesiredChange,
  type HelloBody,
  makeEnvelope,
  parseEnvelope,
  type ReplyBody,
} from "../../shared/messages.ts";
import { type Channel, MANAGER_TO_OPERATOR, parseTopic, topicFor } from "../../shared/topics.ts";
import type { Outbox, OutboxInput, ReportClass } from "./outbox.ts";

/**
 * Reports from the outbox go at QoS 0. Their delivery rests on the outbox and the Manager's `acks`, sent only
 * after a commit (DESIGN.md §3: a PUBACK is not a commit and the broker may lose anything): a report not acked
 * within `resendAfterMs` is sent again, whatever the MQTT QoS. A QoS 1 PUBACK per report added nothing to that
 * and cost a quarter of the CPU per report on both ends (docs/benchmarks.md, seventh pass). `hello`, heartbeats
 * and the retained presence stay QoS 1: they are not in the outbox.
 */
const REPORT_QOS = 0;

/** Whether DEBUG may ask for mqtt.js's packet traces (it names mqttjs or a wildcard): then `debug` decides. */
const mqttTracing = /mqttjs|\*/.test(process.env.DEBUG ?? "");
const noTrace = (): void => {};

/**
 * `mqtt/lib/client` is CommonJS with `exports.default = MqttClient` and `__esModule`: Bun's runtime hands out
 * `exports.default`, its bundler (the single binary) the whole `exports` object. Either way, the class.
 */
const MqttClient: typeof MqttClientExport =
  (MqttClientExport as unknown as { default?: typeof MqttClientExport }).default ?? MqttClientExport;
type MqttClient = MqttClientExport;

export interface DesiredApplier {
  /** Makes one change true in the cluster; throwing stops the batch, which is retried on the next resync. */
  apply(change: DesiredChange): Promise<void>;
  /** A full snapshot: apply every object listed and remove every managed object that is not. */
  applySnapshot(changes: DesiredChange[]): Promise<void>;
}

/** Where the operator keeps the revision it reached; in-cluster in production (NovaClusterConfig status). */
export interface RevisionStore {
  get(): Promise<number>;
  set(revision: number): Promise<void>;
}

export type CommandHandler = (command: CommandBody) => Promise<Omit<ReplyBody, "correlationId">>;

export interface LinkTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface OperatorLinkOptions {
  clusterId: string;
  brokerUrl: string;
  /** Read at every connect, so a renewed certificate is used from the next connection on. */
  tls: () => LinkTls;
  outbox: Outbox;
  applier: DesiredApplier;
  revisions: RevisionStore;
  commands: CommandHandler;
  hello: () => Promise<Omit<HelloBody, "lastAppliedRevision">>;
  logger: Logger;
  heartbeatIntervalMs?: number;
  keepaliveSeconds?: number;
  flushIntervalMs?: number;
  resendAfterMs?: number;
  /** Report publishes not yet written to the socket, at most (the unacked window below is the real bound). */
  maxInFlight?: number;
  /**
   * Reports published but not yet confirmed by the Manager's `acks` (within `resendAfterMs`), at most. A PUBACK
   * only says the broker has the message, so without this bound an operator with a backlog would push it all
   * into a Manager that commits more slowly, and everything not acked within `resendAfterMs` would be sent again.
   * The window in use halves when reports go unacked for `resendAfterMs` (an overloaded Manager, at most once
   * per `resendAfterMs`) and grows back by one report per report acked (doubling per round trip, as TCP's slow
   * start) up to this bound.
   */
  maxUnacked?: number;
  backoff?: { initialMs: number; maxMs: number };
  /**
   * The Manager accepted the TCP connection and closed it before the TLS handshake: it is up and shedding
   * handshakes it cannot serve in time (broker/admission.ts). Retried sooner than a refused or failed connection:
   * equal jitter, uniform in [cap/2, cap) with the cap doubling from `initialMs` to `maxMs` — never at once (the
   * listener would shed it again), never backed off to `backoff.maxMs` (the tail of a reconnect storm).
   */
  busyRetry?: { initialMs: number; maxMs: number };
  maxPayloadBytes?: number;
  random?: () => number;
}

export interface LinkStats {
  connected: boolean;
  connects: number;
  lastAppliedRevision: number;
  appliedChanges: number;
  skippedChanges: number;
  resyncRequests: number;
  rejectedMessages: number;
  published: number;
  /** QoS1 publishes waiting for their PUBACK on the current connection. */
  inFlight: number;
  /** Reports published and waiting for the Manager's ack (sent less than `resendAfterMs` ago). */
  unacked: number;
  /** The unacked window in use (≤ `maxUnacked`). */
  unackedWindow: number;
}

export interface OperatorLink {
  start(): void;
  /** Queues a report durably; returns its envelope id (the Manager's dedupe key). */
  report<K extends "status" | "usage" | "event">(
    kind: K,
    body: BodyOf<K>,
    options?: { coalesceKey?: string; traceparent?: string },
  ): string;
  /**
   * Queues several reports durably in one outbox transaction (one fsync instead of one per report), e.g. one
   * usage collection's reports for all tenants; returns their envelope ids in order.
   */
  reportMany<K extends "status" | "usage" | "event">(
    kind: K,
    reports: ReadonlyArray<{ body: BodyOf<K>; coalesceKey?: string; traceparent?: string }>,
  ): string[];
  stats(): LinkStats;
  /** Says `offline`, then closes; the outbox keeps what was not acknowledged. */
  stop(): Promise<void>;
}

const REPORT_CHANNEL: Record<
  "status" | "usage" | "event" | "reply",
  { channel: Channel; reportClass: ReportClass }
> = {
  status: { channel: "status", reportClass: "status" },
  usage: { channel: "usage", reportClass: "usage" },
  event: { channel: "events", reportClass: "event" },
  reply: { channel: "replies", reportClass: "other" },
};

/**
 * Full-jitter exponential backoff (the AWS architecture blog's "full jitter"): uniform in [0, cap), where the cap
 * also never exceeds how long the link has been down (`downForMs`, at least `initialMs`). Full jitter draws short
 * delays as often as long ones, so during a short outage an unlucky link climbs the ladder fast — after a 1.2 s
 * Manager restart some waited up to 8 s more, the last of a reconnect storm. Bounded by the outage, a link retries
 * within about twice the outage; a long outage still reaches `maxMs`.
 */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
  downForMs = Number.POSITIVE_INFINITY,
): number {
  const ladder = initialMs * 2 ** Math.min(attempt, 30);
  return Math.floor(random() * Math.min(maxMs, ladder, Math.max(initialMs, downForMs)));
}

/**
 * How a connection closed by the peer before the TLS handshake surfaces (Bun 1.4: ERR_SOCKET_CLOSED when the
 * server destroyed the socket with the ClientHello unread, ECONNRESET on a read) — as opposed to a certificate
 * or protocol error, which is no sign of a busy Manager.
 */
const CLOSED_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_SOCKET_CLOSED"]);

/** Equal jitter: uniform in [cap/2, cap), cap = min(maxMs, initialMs × 2^attempt). */
export function busyRetryDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(cap / 2 + (random() * cap) / 2);
}

export function createOperatorLink(options: OperatorLinkOptions): OperatorLink {
  const log = options.logger.child({ cluster: options.clusterId, adapter: "mqtt" });
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const resendAfterMs = options.resendAfterMs ?? 10_000;
  const maxInFlight = options.maxInFlight ?? 16;
  const maxUnacked = Math.max(1, options.maxUnacked ?? 64);
  let window = maxUnacked;
  let shrunkAt = Number.NEGATIVE_INFINITY;
  const backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const busyRetry = options.busyRetry ?? { initialMs: 1_000, maxMs: 8_000 };
  const random = options.random ?? Math.random;
  const maxPayloadBytes = options.maxPayloadBytes ?? 256 * 1024;
  const topic = (channel: Channel) => topicFor(options.clusterId, channel);

  let client: MqttClient | null = null;
  let stopped = true;
  let attempt = 0;
  /** When the link lost (or first failed to get) its connection; null while connected. */
  let downSinceMs: number | null = null;
  /** Consecutive connections the Manager closed before the TLS handshake (see `busyRetry`). */
  let busyAttempt = 0;
  /** The current connection: TCP accepted by the Manager, and its TLS handshake completed. */
  let accepted = false;
  let secured = false;
  /** Why the current connection failed before its handshake completed (an errno code, or a TLS error's code). */
  let earlyErrorCode: string | undefined;
  let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  let heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  let flushTimer: ReturnType<typeof setInterval> | null = null;
  let inFlight = 0;
  /** Report id → when it was last published, oldest first; left when acked or once due for a resend. */
  const unacked = new Map<string, number>();
  let lastResyncAt = 0;
  /** Desired and command messages are handled one at a time, in arrival order. */
  let queue: Promise<void> = Promise.resolve();
  const stats: LinkStats = {
    connected: false,
    connects: 0,
    lastAppliedRevision: 0,
    appliedChanges: 0,
    skippedChanges: 0,
    resyncRequests: 0,
    rejectedMessages: 0,
    published: 0,
    inFlight: 0,
    unacked: 0,
    unackedWindow: maxUnacked,
  };

  const presence = (state: "online" | "offline", reason?: string) =>
    JSON.stringify(
      makeEnvelope({
        id: uuidv7(),
        kind: "presence",
        clusterId: options.clusterId,
        body: {
          state,
          heartbeatIntervalMs,
          lastAppliedRevision: stats.lastAppliedRevision,
          ...(reason ? { reason } : {}),
        },
      }),
    );

  async function sendHello(): Promise<void> {
    const current = client;
    if (!current?.connected) return;
    const lastAppliedRevision = await options.revisions.get();
    stats.lastAppliedRevision = lastAppliedRevision;
    const body = { ...(await options.hello()), lastAppliedRevision };
    const envelope = makeEnvelope({ id: uuidv7(), kind: "hello", clusterId: options.clusterId, body });
    current.publish(topic("hello"), JSON.stringify(envelope), { qos: 1 });
  }

  /** A gap or a failed apply: ask again from what we have, at most once a second. */
  async function requestResync(reason: string): Promise<void> {
    const now = Date.now();
    if (now - lastResyncAt < 1000) return;
    lastResyncAt = now;
    stats.resyncRequests++;
    log.info("requesting resync", { reason, last_applied_revision: stats.lastAppliedRevision });
    await sendHello();
  }

  async function onDesired(body: BodyOf<"desired">): Promise<void> {
    let revision = await options.revisions.get();
    if (body.snapshot) {
      // A snapshot is the Manager's whole truth, even below our revision (its database was restored): apply it.
      await options.applier.applySnapshot(body.changes);
      stats.appliedChanges += body.changes.length;
      await options.revisions.set(body.toRevision);
      stats.lastAppliedRevision = body.toRevision;
      log.info("applied snapshot", {
        revision: body.toRevision,
        objects: body.changes.length,
        previous: revision,
      });
      return;
    }
    const changes = [...body.changes].sort((a, b) => a.revision - b.revision);
    for (const change of changes) {
      if (change.revision <= revision) {
        stats.skippedChanges++; // already applied: a redelivery or an overlapping batch
        continue;
      }
      if (change.revision !== revision + 1) {
        await requestResync(`gap: have ${revision}, got ${change.revision}`);
        return;
      }
      try {
        await applyTraced(change);
      } catch (error) {
        log.warn("applying a desired change failed", {
          revision: change.revision,
          key: change.key,
          err: error as Error,
        });
        await requestResync("apply failed");
        return;
      }
      revision = change.revision;
      await options.revisions.set(revision);
      stats.appliedChanges++;
      stats.lastAppliedRevision = revision;
    }
  }

  /**
   * Applies a change; one that carries a `traceparent` continues the trace of the API call that made it
   * (DESIGN.md §8). An untraced change has nothing to continue (the operator starts no traces of its own), so
   * OpenTelemetry's API — ~0.7 MB of the idle operator — loads with the first traced change, not at start.
   */
  async function applyTraced(change: DesiredChange): Promise<void> {
    if (!change.traceparent) return options.applier.apply(change);
    const { inSpan, traceparentOf } = await import("../../shared/tracing.ts");
    await inSpan(
      `apply ${change.kind}`,
      {
        parent: change.traceparent,
        attributes: { "kubenova.revision": change.revision, "kubenova.key": change.key },
      },
      (span) =>
        options.applier.apply({
          ...change,
          ...(traceparentOf(span) ? { traceparent: traceparentOf(span)! } : {}),
        }),
    );
  }

  async function onCommand(command: CommandBody): Promise<void> {
    let reply: Omit<ReplyBody, "correlationId">;
    if (Date.parse(command.deadline) < Date.now()) {
      reply = {
        ok: false,
        error: { code: "KN-504", message: "the command's deadline passed before it ran" },
      };
    } else {
      try {
        reply = await options.commands(command);
      } catch (error) {
        reply = { ok: false, error: { code: "KN-500", message: (error as Error).message.slice(0, 1000) } };
      }
    }
    enqueue("reply", { correlationId: command.correlationId, ...reply });
  }

  function dispatch(envelope: AnyEnvelope): void {
    switch (envelope.kind) {
      case "desired":
        queue = queue
          .then(() => onDesired(envelope.body))
          .catch((error) => log.error("desired failed", { err: error }));
        return;
      case "command":
        queue = queue
          .then(() => onCommand(envelope.body))
          .catch((error) => log.error("command failed", { err: error }));
        return;
      case "ack":
        try {
          options.outbox.ack(envelope.body.ids);
        } catch (error) {
          // The rows stay and are sent again; the Manager acks the duplicates.
          log.error("outbox ack failed", { err: error });
        }
        for (const id of envelope.body.ids) unacked.delete(id);
        window = Math.min(maxUnacked, window + envelope.body.ids.length);
        flush(); // the window has room again
        return;
      case "hello":
      case "status":
      case "usage":
      case "event":
      case "reply":
      case "presence":
        stats.rejectedMessages++; // operator→manager kinds never arrive here; parseEnvelope checks the channel
        return;
      default: {
        const unreachable: never = envelope;
        log.warn("unhandled message kind", { kind: (unreachable as { kind: string }).kind });
      }
    }
  }

  function onMessage(topicName: string, payload: Buffer): void {
    const parsed = parseTopic(topicName);
    if (!parsed || parsed.clusterId !== options.clusterId) {
      stats.rejectedMessages++;
      return;
    }
    const result = parseEnvelope(payload, {
      channel: parsed.channel,
      clusterId: options.clusterId,
      maxBytes: maxPayloadBytes,
    });
    if (!result.ok) {
      stats.rejectedMessages++;
      log.warn("rejected a message", {
        channel: parsed.channel,
        reason: result.reason,
        detail: result.message,
      });
      return;
    }
    dispatch(result.envelope);
  }

  function outboxRow(
    kind: keyof typeof REPORT_CHANNEL,
    body: unknown,
    extra: { coalesceKey?: string | undefined; traceparent?: string | undefined },
  ): OutboxInput {
    const id = uuidv7();
    const envelope = makeEnvelope({
      id,
      kind,
      clusterId: options.clusterId,
      body: body as never,
      ...(extra.traceparent ? { traceparent: extra.traceparent } : {}),
    });
    const { channel, reportClass } = REPORT_CHANNEL[kind];
    return {
      id,
      channel,
      reportClass,
      coalesceKey: extra.coalesceKey ?? null,
      payload: JSON.stringify(envelope),
    };
  }

  function enqueue(
    kind: keyof typeof REPORT_CHANNEL,
    body: unknown,
    extra: { coalesceKey?: string; traceparent?: string } = {},
  ) {
    const row = outboxRow(kind, body, extra);
    options.outbox.enqueue(row);
    flush();
    return row.id;
  }

  /** Reports still waiting for an ack; those sent `resendAfterMs` ago are due again and leave the count. */
  function unackedCount(): number {
    const now = Date.now();
    const cutoff = now - resendAfterMs;
    let expired = false;
    for (const [id, sentAt] of unacked) {
      if (sentAt > cutoff) break;
      unacked.delete(id);
      expired = true;
    }
    // Unacked for resendAfterMs: the Manager is behind (or acks are lost). Send less, once per timeout.
    if (expired && now - shrunkAt >= resendAfterMs) {
      window = Math.max(1, window / 2);
      shrunkAt = now;
    }
    return unacked.size;
  }

  /**
   * Publishes due outbox rows within two windows: publishes not yet written (`maxInFlight`) and reports not yet
   * acked by the Manager (`maxUnacked`), so a backlog drains at the rate the Manager commits. Rows stay until acked
   * and are resent if not. Called from timers and publish callbacks, so an outbox error (a full disk, a locked or
   * closed file) is logged, never thrown: the rows stay in the outbox and the next flush tries again.
   */
  function flush(): void {
    try {
      flushDue();
    } catch (error) {
      log.error("outbox read failed; retrying on the next flush", { err: error });
    }
  }

  /**
   * A flush on the next turn, at most one waiting. A QoS 0 publish may call back before `publish` returns:
   * flushing from there re-entered `flushDue` in the middle of its loop, before that round's rows were counted
   * as unacked, so rounds piled into one another past the window (one operator sent ~200 at a time while the
   * Manager idled at a fifth of the machine).
   */
  let flushPending = false;
  function flushSoon(): void {
    if (flushPending) return;
    flushPending = true;
    setImmediate(() => {
      flushPending = false;
      if (!stopped) flush();
    });
  }

  function flushDue(): void {
    const current = client;
    if (!current?.connected || inFlight >= maxInFlight) return;
    if (options.outbox.stats().pending === 0) {
      options.outbox.compact(); // idle: the counts are in memory; acked rows still in the file go now
      return;
    }
    const waiting = unackedCount(); // first: it may shrink the window
    const room = Math.min(maxInFlight - inFlight, Math.floor(window) - waiting);
    if (room <= 0) return;
    const rows = options.outbox.take(room, resendAfterMs);
    if (rows.length === 0) return;
    const sentAt = Date.now();
    // One socket write (one TLS record) for the rows of this round instead of one per publish: mqtt.js writes
    // each packet itself; a corked stream gathers them until the uncork after this turn's other writes.
    const stream = rows.length > 1 ? current.stream : null;
    if (stream) {
      stream.cork();
      process.nextTick(() => stream.uncork());
    }
    for (const row of rows) {
      unacked.delete(row.id); // a resend moves to the back
      unacked.set(row.id, sentAt);
      inFlight++;
      current.publish(topic(row.channel), row.payload, { qos: REPORT_QOS }, (error) => {
        inFlight--;
        if (error) log.debug("publish failed; the outbox resends it", { err: error });
        else stats.published++;
        if (inFlight < maxInFlight / 2) flushSoon();
      });
    }
  }

  function clearTimers(): void {
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    if (flushTimer) clearInterval(flushTimer);
    heartbeatTimer = null;
    flushTimer = null;
  }

  function scheduleReconnect(): void {
    if (stopped || reconnectTimer) return;
    // Accepted, then closed before TLS (a reset or a plain close, not a certificate error): the Manager is up and
    // shedding handshakes. Its refusal ladder starts over (it answered).
    const busy = accepted && !secured && (earlyErrorCode === undefined || CLOSED_CODES.has(earlyErrorCode));
    let delay: number;
    if (busy) {
      attempt = 0;
      downSinceMs = null;
      delay = busyRetryDelay(busyAttempt++, busyRetry.initialMs, busyRetry.maxMs, random);
    } else {
      downSinceMs ??= Date.now();
      const downForMs = Date.now() - downSinceMs;
      delay = backoffDelay(attempt++, backoff.initialMs, backoff.maxMs, random, downForMs);
    }
    log.info("reconnecting", { attempt, busy, delay_ms: delay });
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function connect(): void {
    if (stopped) return;
    const tls = options.tls();
    const broker = new URL(options.brokerUrl);
    const host = broker.hostname.replace(/^\[(.*)\]$/, "$1");
    // mqtts://host:port over node:tls, verified against the Manager's CA, the host name checked (SNI too).
    const stream = (mqttClient: MqttClient) => {
      const socket = tlsConnect({
        host,
        port: Number(broker.port || 8883),
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ca: tls.caPem,
        cert: tls.certPem,
        key: tls.keyPem,
        rejectUnauthorized: true,
      });
      // Errors before the handshake completes go to the client, whose `close` schedules the reconnect.
      const early = (error: Error) => {
        // The first error says why (a reset, a refusal, a certificate); later ones are echoes of it, such as
        // ERR_SOCKET_CLOSED for the CONNECT written into the closed socket.
        if (client === mqttClient) earlyErrorCode ??= (error as NodeJS.ErrnoException).code ?? "unknown";
        mqttClient.emit("error", error);
        socket.end();
      };
      socket.on("error", early);
      socket.once("connect", () => {
        if (client === mqttClient) accepted = true;
      });
      socket.on("secureConnect", () => {
        if (client === mqttClient) secured = true;
        socket.removeListener("error", early);
      });
      return socket;
    };
    const next: MqttClient = new MqttClient(stream, {
      clientId: options.clusterId,
      protocolVersion: 4,
      // A clean session: the database is the source of truth and the broker only transport (DESIGN.md §3), so
      // nothing a persistent session would queue is needed — desired state is resent after `hello`, an ack missed
      // while away is answered again when the report is resent, a command is refused (KN-503) or times out. A
      // persistent session cost the broker ~10 KB per operator and a session restore on every reconnect.
      clean: true,
      keepalive: options.keepaliveSeconds ?? 30,
      reconnectPeriod: 0, // we reconnect ourselves, with jitter
      // mqtt-packet otherwise builds 65,536 two-byte buffers of packet ids on the first publish (~8 MB of RSS).
      writeCache: false,
      connectTimeout: 10_000,
      // mqtt.js traces every packet through `debug` (~100 calls per report, 5% of a busy link's CPU, even while
      // disabled); it only traces when asked to with DEBUG=mqttjs*, as `debug` itself would.
      ...(mqttTracing ? {} : { log: noTrace }),
      will: {
        topic: topic("presence"),
        payload: Buffer.from(presence("offline", "connection lost")),
        qos: 1,
        retain: true,
      },
    });
    client = next;
    inFlight = 0;
    accepted = false;
    secured = false;
    earlyErrorCode = undefined;
    next.on("connect", () => {
      attempt = 0;
      busyAttempt = 0;
      downSinceMs = null;
      stats.connected = true;
      stats.connects++;
      log.info("connected to the Manager", { broker: options.brokerUrl });
      next.subscribe(
        MANAGER_TO_OPERATOR.map((channel) => topic(channel)),
        { qos: 1 },
        (error) => {
          if (error) log.warn("subscribe failed", { err: error });
        },
      );
      // Read our revision first, so the first heartbeat does not claim an older one.
      sendHello()
        .then(() => next.publish(topic("presence"), presence("online"), { qos: 1, retain: true }))
        .catch((error) => log.warn("hello failed", { err: error }));
      clearTimers();
      heartbeatTimer = setInterval(() => {
        if (next.connected) next.publish(topic("presence"), presence("online"), { qos: 1, retain: true });
      }, heartbeatIntervalMs);
      flushTimer = setInterval(flush, flushIntervalMs);
      flush();
    });
    next.on("message", onMessage);
    next.on("error", (error) => log.warn("link error", { err: error }));
    next.on("close", () => {
      if (client !== next) return;
      if (stats.connected) log.warn("disconnected from the Manager");
      stats.connected = false;
      clearTimers();
      next.end(true);
      scheduleReconnect();
    });
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      connect();
    },
    report(kind, body, extra = {}) {
      return enqueue(kind, body, extra);
    },
    reportMany(kind, reports) {
      const rows = reports.map((r) => outboxRow(kind, r.body, r));
      options.outbox.enqueueMany(rows);
      flush();
      return rows.map((r) => r.id);
    },
    stats: () => ({ ...stats, inFlight, unacked: unacked.size, unackedWindow: Math.floor(window) }),
    async stop() {
      stopped = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      clearTimers();
      const current = client;
      client = null;
      stats.connected = false;
      // Bounded: a half-dead connection must not hold up shutdown (the last will covers a lost `offline`).
      const within = (ms: number, work: (done: () => void) => void) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          work(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      if (current?.connected) {
        await within(2000, (done) =>
          current.publish(
            topic("presence"),
            presence("offline", "operator stopped"),
            { qos: 1, retain: true },
            () => done(),
          ),
        );
      }
      if (current) {
        await within(2000, (done) => current.end(false, {}, () => done()));
        current.end(true);
      }
      await queue;
    },
  };
}
