/**
 * Report ingest (DESIGN.md §3): one handler per operator→manager kind behind one `switch`. Reports are
 * at-least-once on the wire and exactly-once in the database: they are written with unique keys (envelope id;
 * usage by cluster + tenant + window start), in micro-batched transactions, and only after a batch commits does
 * the Manager publish `acks` with the committed ids — a PUBACK is not a commit. If the database is down nothing
 * is acked and the operators' outboxes resend later.
 *
 * Acks are coalesced per cluster: the first commit after a quiet spell is acked at once, later ones at most every
 * `ackIntervalMs`, each cluster's committed ids in one message (up to 5,000) — under load one ack message
 * confirms many reports instead of one message per cluster per batch.
 */
import type { Logger } from "../../shared/logger.ts";
import {
  type AnyEnvelope,
  type Envelope,
  makeEnvelope,
  parseEnvelope,
  type RejectReason,
} from "../../shared/messages.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { markSpan } from "../../shared/tracing.ts";
import {
  managerSubscription,
  OPERATOR_TO_MANAGER,
  type ParsedTopic,
  parseTopic,
  topicFor,
} from "../../shared/topics.ts";
import type { Bus, Unsubscribe } from "../bus/bus.ts";
import type { Store, StoreTx, UsageQuarantineRow, UsageRow } from "../store/store.ts";
import type { CommandClient } from "./commands.ts";
import type { DesiredDispatcher } from "./dispatcher.ts";
import type { PresenceTracker } from "./presence.ts";

export interface UsagePolicy {
  /** Reports whose window ended longer ago than this are quarantined as too old. */
  maxAgeMs: number;
  /** Reports whose window starts later than now + this are quarantined as from the future. */
  futureSkewMs: number;
  /** A report arriving this long after its window ended is for a closed period: stored as an adjustment. */
  closeAfterMs: number;
  /** Longest plausible window. */
  maxWindowMs: number;
}

export const DEFAULT_USAGE_POLICY: UsagePolicy = {
  maxAgeMs: 35 * 86_400_000,
  futureSkewMs: 10 * 60_000,
  closeAfterMs: 48 * 3_600_000,
  maxWindowMs: 24 * 3_600_000,
};

export interface IngestStats {
  received: number;
  rejected: Record<RejectReason | "bad_topic", number>;
  committed: number;
  duplicates: number;
  quarantined: number;
  adjustments: number;
  acked: number;
  /** `acks` messages published (each confirms up to 5,000 report ids of one cluster). */
  ackMessages: number;
  commitFailures: number;
  batches: number;
}

export interface IngestOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  presence: PresenceTracker;
  dispatcher: DesiredDispatcher;
  commands: CommandClient;
  /** Records what an operator said in `hello` (versions, capabilities) on its cluster. */
  onHello?: (clusterId: string, body: Envelope<"hello">["body"]) => Promise<void>;
  clock?: () => Date;
  maxPayloadBytes?: number;
  /**
   * Reports in one transaction, at most (default 2,000). Larger commits are cheaper per report: the rows of one
   * commit share more index pages, so fewer pages are written to the WAL (on SQLite, a usage backlog costs about
   * half per row at ~2,000 rows a commit than at 500); at ~10 µs a row, one still stops the event loop < 25 ms.
   */
  batchMaxMessages?: number;
  batchMaxDelayMs?: number;
  /**
   * After a batch of at least 64 reports (a busy spell) the next one gathers this long instead (default
   * max(batchMaxDelayMs, 50)): fewer, larger commits under load — each stops the event loop for its fsync and
   * its WAL writes — for at most that much more before an ack, which the ack interval (50 ms) delays by as much
   * anyway. Quiet spells keep `batchMaxDelayMs`.
   */
  batchBusyDelayMs?: number;
  /** Acks for one cluster are published at most this often (the first after a quiet spell at once). */
  ackIntervalMs?: number;
  usagePolicy?: UsagePolicy;
}

export interface Ingest {
  start(): Promise<void>;
  stats(): IngestStats;
  /** Resolves when everything received so far has been committed (or failed) and acked. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

type Durable = Envelope<"status"> | Envelope<"usage"> | Envelope<"event"> | Envelope<"reply">;

type Outcome = "inserted" | "duplicate" | "quarantined" | "adjustment";

/** A batch at least this large means reports are arriving faster than small commits serve well. */
const BUSY_BATCH = 64;

/** A batch's usage rows, with each row's place in the batch, written together after the other reports. */
interface StagedUsage {
  records: UsageRow[];
  recordAt: number[];
  quarantine: UsageQuarantineRow[];
  quarantineAt: number[];
}

export function createIngest(options: IngestOptions): Ingest {
  const log = options.logger.child({ component: "ingest" });
  const clock = options.clock ?? (() => new Date());
  const maxBytes = options.maxPayloadBytes ?? 256 * 1024;
  const batchMax = options.batchMaxMessages ?? 2000;
  const batchDelay = options.batchMaxDelayMs ?? 5;
  const busyDelay = options.batchBusyDelayMs ?? Math.max(batchDelay, 50);
  const ackInterval = options.ackIntervalMs ?? 50;
  const policy = options.usagePolicy ?? DEFAULT_USAGE_POLICY;
  const stats: IngestStats = {
    received: 0,
    rejected: {
      oversize: 0,
      not_json: 0,
      bad_version: 0,
      unknown_kind: 0,
      wrong_channel: 0,
      wrong_cluster: 0,
      invalid: 0,
      bad_topic: 0,
    },
    committed: 0,
    duplicates: 0,
    quarantined: 0,
    adjustments: 0,
    acked: 0,
    ackMessages: 0,
    commitFailures: 0,
    batches: 0,
  };
  let pending: Durable[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let flushing: Promise<void> = Promise.resolve();
  let flushQueued = false;
  /** The last batch was large: reports are arriving faster than one commit per `batchDelay` needs. */
  let busy = false;
  /** Committed, not yet acked ids per cluster; published by `publishAcks`. */
  let toAck = new Map<string, string[]>();
  let ackTimer: ReturnType<typeof setTimeout> | null = null;
  let lastAckAt = Number.NEGATIVE_INFINITY;
  let acking: Promise<void> = Promise.resolve();
  const unsubscribes: Unsubscribe[] = [];

  /**
   * `Date.parse` of a window bound, remembered: hourly windows repeat across every tenant and cluster, and parsing
   * an ISO time was ~2% of ingest's CPU under load. Bounded: cleared at 4,096 distinct strings.
   */
  const parsedTimes = new Map<string, number>();
  function timeOf(iso: string): number {
    let ms = parsedTimes.get(iso);
    if (ms === undefined) {
      ms = Date.parse(iso);
      if (parsedTimes.size >= 4096) parsedTimes.clear();
      parsedTimes.set(iso, ms);
    }
    return ms;
  }

  function classifyUsage(
    envelope: Envelope<"usage">,
    now: number,
  ): { reason: string } | { adjustment: boolean } {
    const start = timeOf(envelope.body.windowStart);
    const end = timeOf(envelope.body.windowEnd);
    if (!(end > start) || end - start > policy.maxWindowMs) return { reason: "bad_window" };
    if (start > now + policy.futureSkewMs) return { reason: "future" };
    if (end < now - policy.maxAgeMs) return { reason: "too_old" };
    return { adjustment: end < now - policy.closeAfterMs };
  }

  /**
   * Writes one report, or for usage stages its row in `usage` (the outcome returned is then the one it has if
   * the row is new). `index` is the report's place in the batch.
   */
  async function write(
    tx: StoreTx,
    envelope: Durable,
    receivedAt: string,
    now: number,
    usage: StagedUsage,
    index: number,
  ): Promise<Outcome> {
    switch (envelope.kind) {
      case "status": {
        const body = envelope.body;
        // Older or reordered reports never overwrite newer ones (observedGeneration), DESIGN.md §3.
        await tx.statusMirror.upsert({
          clusterId: envelope.clusterId,
          kind: body.objectKind,
          key: body.key,
          observedGeneration: body.observedGeneration,
          body: {
            phase: body.phase,
            ...(body.revision !== undefined ? { revision: body.revision } : {}),
            ...(body.message !== undefined ? { message: body.message } : {}),
            ...(body.detail !== undefined ? { detail: body.detail } : {}),
            reportedAt: envelope.sentAt,
          },
          updatedAt: receivedAt,
        });
        return "inserted";
      }
      case "usage": {
        // Staged here, written for the whole batch at once (usage is most of the volume): see `flush`.
        const verdict = classifyUsage(envelope, now);
        if ("reason" in verdict) {
          usage.quarantine.push({
            id: envelope.id,
            clusterId: envelope.clusterId,
            tenant: envelope.body.tenant,
            reason: verdict.reason,
            windowStart: envelope.body.windowStart,
            windowEnd: envelope.body.windowEnd,
            report: envelope.body as unknown as Record<string, unknown>,
            receivedAt,
          });
          usage.quarantineAt.push(index);
          return "quarantined";
        }
        usage.records.push({
          id: envelope.id,
          clusterId: envelope.clusterId,
          tenant: envelope.body.tenant,
          windowStart: envelope.body.windowStart,
          windowEnd: envelope.body.windowEnd,
          metrics: envelope.body.metrics,
          byProject: envelope.body.byProject,
          adjustment: verdict.adjustment,
          receivedAt,
        });
        usage.recordAt.push(index);
        return verdict.adjustment ? "adjustment" : "inserted";
      }
      case "event":
        return tx.events.insert({
          id: envelope.id,
          clusterId: envelope.clusterId,
          tenant: envelope.body.tenant,
          at: envelope.body.at,
          type: envelope.body.type,
          reason: envelope.body.reason,
          message: envelope.body.message,
          object: envelope.body.object,
        });
      case "reply":
        return "inserted"; // nothing to store: the waiting call gets it after the batch commits
      default: {
        const unreachable: never = envelope;
        throw new Error(`unhandled durable kind ${(unreachable as { kind: string }).kind}`);
      }
    }
  }

  /** Publishes every committed, unacked id now: one message per cluster (and per 5,000 ids). */
  function publishAcks(): Promise<void> {
    if (ackTimer) clearTimeout(ackTimer);
    ackTimer = null;
    const ids = toAck;
    if (ids.size === 0) return acking;
    toAck = new Map();
    lastAckAt = performance.now();
    const work = async () => {
      for (const [clusterId, list] of ids) {
        for (let i = 0; i < list.length; i += 5000) {
          const chunk = list.length <= 5000 ? list : list.slice(i, i + 5000);
          const envelope = makeEnvelope({ id: uuidv7(), kind: "ack", clusterId, body: { ids: chunk } });
          try {
            await options.bus.publish(topicFor(clusterId, "acks"), JSON.stringify(envelope), { qos: 1 });
            stats.acked += chunk.length;
            stats.ackMessages++;
          } catch (error) {
            // A lost ack costs a redelivery, which the unique keys absorb.
            log.warn("could not publish acks", { cluster: clusterId, err: error as Error });
          }
        }
      }
    };
    acking = acking.then(work);
    return acking;
  }

  /** Acks committed ids at once after a quiet spell, otherwise with the next ack round (`ackIntervalMs`). */
  function scheduleAcks(): void {
    if (ackTimer || toAck.size === 0) return;
    const wait = lastAckAt + ackInterval - performance.now();
    if (wait <= 0) {
      void publishAcks();
      return;
    }
    ackTimer = setTimeout(() => {
      ackTimer = null;
      void publishAcks();
    }, wait);
  }

  async function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.length === 0) return;
    // At most `batchMax` per transaction: under a backlog a commit stays short and acks keep flowing.
    const batch = pending.length <= batchMax ? pending : pending.slice(0, batchMax);
    pending = batch === pending ? [] : pending.slice(batchMax);
    busy = batch.length >= BUSY_BATCH;
    if (pending.length > 0) queueFlush();
    const received = clock(); // one clock reading per batch, not per report
    const receivedAt = received.toISOString();
    const now = received.getTime();
    const outcomes: Outcome[] = [];
    try {
      await options.store.transaction(async (tx) => {
        outcomes.length = 0;
        const usage: StagedUsage = { records: [], recordAt: [], quarantine: [], quarantineAt: [] };
        for (const envelope of batch) {
          outcomes.push(await write(tx, envelope, receivedAt, now, usage, outcomes.length));
        }
        // One multi-row insert per table for the batch's usage instead of a statement per report.
        if (usage.records.length > 0) {
          const answers = await tx.usage.insertMany(usage.records);
          answers.forEach((answer, i) => {
            if (answer === "duplicate") outcomes[usage.recordAt[i]!] = "duplicate";
          });
        }
        if (usage.quarantine.length > 0) {
          const answers = await tx.usageQuarantine.insertMany(usage.quarantine);
          answers.forEach((answer, i) => {
            if (answer === "duplicate") outcomes[usage.quarantineAt[i]!] = "duplicate";
          });
        }
      });
    } catch (error) {
      stats.commitFailures++;
      log.error("could not commit a batch of reports; not acking them", {
        reports: batch.length,
        err: error as Error,
      });
      return;
    }
    stats.batches++;
    batch.forEach((envelope, i) => {
      const outcome = outcomes[i]!;
      if (outcome === "duplicate") stats.duplicates++;
      else stats.committed++;
      if (outcome === "quarantined") stats.quarantined++;
      if (outcome === "adjustment") stats.adjustments++;
      if (envelope.kind === "reply") options.commands.resolve(envelope.clusterId, envelope.body);
      // The report's trace ends here, at its durable commit (DESIGN.md §8).
      markSpan(`commit ${envelope.kind}`, envelope.traceparent, { "kubenova.cluster": envelope.clusterId });
      const list = toAck.get(envelope.clusterId);
      if (list) list.push(envelope.id);
      else toAck.set(envelope.clusterId, [envelope.id]);
    });
    scheduleAcks();
  }

  /** Runs one more flush after those already queued (at most one waits at a time). */
  function queueFlush(): void {
    if (flushQueued) return;
    flushQueued = true;
    flushing = flushing
      .then(() => {
        flushQueued = false;
        return flush();
      })
      .catch((error) => log.error("report flush failed", { err: error as Error }));
  }

  function scheduleFlush(): void {
    if (pending.length >= batchMax) {
      queueFlush();
      return;
    }
    timer ??= setTimeout(
      () => {
        timer = null;
        queueFlush();
      },
      busy ? busyDelay : batchDelay,
    );
  }

  function route(envelope: AnyEnvelope): void {
    if (envelope.kind !== "presence") options.presence.seen(envelope.clusterId);
    switch (envelope.kind) {
      case "hello":
        void options.dispatcher.onHello(envelope.clusterId, envelope.body.lastAppliedRevision);
        void options
          .onHello?.(envelope.clusterId, envelope.body)
          .catch((error) =>
            log.warn("could not record hello", { cluster: envelope.clusterId, err: error as Error }),
          );
        return;
      case "presence":
        if (envelope.body.state === "offline") {
          options.presence.offline(envelope.clusterId, envelope.body.reason ?? "operator said offline");
          return;
        }
        options.presence.seen(envelope.clusterId, { heartbeatIntervalMs: envelope.body.heartbeatIntervalMs });
        if (envelope.body.lastAppliedRevision !== undefined) {
          void options.dispatcher.onHeartbeat(envelope.clusterId, envelope.body.lastAppliedRevision);
        }
        return;
      case "status":
      case "usage":
      case "event":
      case "reply":
        pending.push(envelope);
        scheduleFlush();
        return;
      case "desired":
      case "command":
      case "ack":
        return; // manager→operator kinds; parseEnvelope already refuses them on these channels
      default: {
        const unreachable: never = envelope;
        log.warn("unhandled kind", { kind: (unreachable as { kind: string }).kind });
      }
    }
  }

  /** Topics seen before, parsed once: a cluster's few topics repeat for every report it sends. */
  const topics = new Map<string, ParsedTopic>();
  function topicOf(topic: string): ParsedTopic | null {
    const known = topics.get(topic);
    if (known) return known;
    const parsed = parseTopic(topic);
    if (!parsed) return null;
    if (topics.size >= 100_000) topics.clear(); // bounded: clusters × channels, far below this in practice
    topics.set(topic, parsed);
    return parsed;
  }

  function onMessage(topic: string, payload: Uint8Array): void {
    stats.received++;
    const parsed = topicOf(topic);
    if (!parsed) {
      stats.rejected.bad_topic++;
      return;
    }
    const result = parseEnvelope(payload, { channel: parsed.channel, clusterId: parsed.clusterId, maxBytes });
    if (!result.ok) {
      stats.rejected[result.reason]++;
      log.warn("rejected a report", {
        cluster: parsed.clusterId,
        channel: parsed.channel,
        reason: result.reason,
        detail: result.message,
      });
      return;
    }
    // A retained `online` from a previous Manager's era is not news; presence handles it like any heartbeat.
    route(result.envelope);
  }

  return {
    async start() {
      for (const channel of OPERATOR_TO_MANAGER) {
        unsubscribes.push(await options.bus.subscribe(managerSubscription(channel), onMessage));
      }
    },
    stats: () => ({ ...stats, rejected: { ...stats.rejected } }),
    async drained() {
      while (pending.length > 0 || timer) {
        queueFlush();
        await flushing;
      }
      await flushing;
      await publishAcks();
    },
    async stop() {
      for (const unsubscribe of unsubscribes.splice(0)) await unsubscribe();
      await this.drained();
    },
  };
}
