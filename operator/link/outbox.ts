/**
 * The operator's durable outbox (DESIGN.md §3): every report is written here before it is published and
 * deleted only when the Manager's `acks` says the row is committed. bun:sqlite in WAL mode with
 * `synchronous = FULL`, so a report that was enqueued survives a crash or power loss: every enqueue commit
 * (one report, or a batch in one transaction) fsyncs the WAL before it returns.
 *
 * Only enqueues need that fsync. Marking rows sent and deleting acknowledged rows commit with
 * `synchronous = NORMAL` (no fsync; the next enqueue's fsync or a checkpoint makes them durable): losing one of
 * those to a power cut only means a report is sent again, which the Manager's unique keys absorb. WAL frames are
 * checksummed, so an unsynced tail is rolled back whole, never half-applied.
 *
 * Row counts (the bound, `stats()`) are kept in memory, loaded at open and maintained by every write, so an
 * enqueue does not count the table and `stats()` costs nothing; one process owns an outbox file.
 *
 * Bounded, with a fixed shedding policy when full: events are shed first (oldest first) and counted; a newer
 * status for the same object replaces the older unsent one (only the latest status matters); usage is never shed —
 * billing data outranks the bound, and the overflow is reported instead.
 */
import { Database } from "bun:sqlite";
import type { Channel } from "../../shared/topics.ts";

export type ReportClass = "usage" | "status" | "event" | "other";

export interface OutboxRow {
  id: string;
  channel: Channel;
  reportClass: ReportClass;
  /** Status rows coalesce on this key (e.g. "app/acme/web/site"); null for others. */
  coalesceKey: string | null;
  payload: string;
  createdAt: number;
  attempts: number;
}

export interface OutboxStats {
  pending: number;
  byClass: Record<ReportClass, number>;
  /** Events dropped because the outbox was full (persisted across restarts). */
  shedEvents: number;
  /** Status reports replaced by a newer one for the same object before they were sent. */
  coalescedStatus: number;
  /** Rows beyond `maxRows` kept because they were usage. */
  overflowUsage: number;
}

export interface OutboxOptions {
  path: string;
  maxRows: number;
  now?: () => number;
}

export interface OutboxInput {
  id: string;
  channel: Channel;
  reportClass: ReportClass;
  coalesceKey?: string | null;
  payload: string;
}

export interface Outbox {
  /** Durably stores a report; returns false only when an event was shed instead of stored. */
  enqueue(row: OutboxInput): boolean;
  /**
   * Durably stores several reports in one transaction (one fsync), in order, with the same bound, shedding and
   * coalescing as one `enqueue` each; all or none are stored. Returns `enqueue`'s answer per row.
   */
  enqueueMany(rows: readonly OutboxInput[]): boolean[];
  /** Oldest first, at most `limit`, skipping rows sent less than `resendAfterMs` ago. */
  due(limit: number, resendAfterMs: number): OutboxRow[];
  markSent(ids: string[]): void;
  /** Deletes acknowledged rows; returns how many were pending. Unknown ids are ignored (duplicate acks). */
  ack(ids: string[]): number;
  stats(): OutboxStats;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  channel TEXT NOT NULL,
  report_class TEXT NOT NULL,
  coalesce_key TEXT,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_class ON outbox (report_class, seq);
CREATE INDEX IF NOT EXISTS outbox_coalesce ON outbox (coalesce_key) WHERE coalesce_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS outbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

export function openOutbox(options: OutboxOptions): Outbox {
  const now = options.now ?? Date.now;
  const db = new Database(options.path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec(SCHEMA);

  const countByClass = db.query<{ report_class: ReportClass; n: number }, []>(
    "SELECT report_class, count(*) AS n FROM outbox GROUP BY report_class",
  );
  const insert = db.query(
    `INSERT INTO outbox (id, channel, report_class, coalesce_key, payload, created_at)
     VALUES ($id, $channel, $reportClass, $coalesceKey, $payload, $createdAt) ON CONFLICT (id) DO NOTHING`,
  );
  const dropCoalesced = db.query("DELETE FROM outbox WHERE coalesce_key = $key AND report_class = 'status'");
  const oldestEvent = db.query<{ seq: number }, []>(
    "SELECT seq FROM outbox WHERE report_class = 'event' ORDER BY seq LIMIT 1",
  );
  const deleteSeq = db.query("DELETE FROM outbox WHERE seq = $seq");
  const bump = db.query(
    "INSERT INTO outbox_counters (name, value) VALUES ($name, $by) ON CONFLICT (name) DO UPDATE SET value = value + $by",
  );
  const counterRows = db.query<{ name: string; value: number }, []>(
    "SELECT name, value FROM outbox_counters",
  );
  const due = db.query<
    {
      id: string;
      channel: Channel;
      report_class: ReportClass;
      coalesce_key: string | null;
      payload: string;
      created_at: number;
      attempts: number;
    },
    { cutoff: number; limit: number }
  >(
    `SELECT id, channel, report_class, coalesce_key, payload, created_at, attempts FROM outbox
     WHERE last_sent_at IS NULL OR last_sent_at <= $cutoff ORDER BY seq LIMIT $limit`,
  );
  const markSent = db.query("UPDATE outbox SET attempts = attempts + 1, last_sent_at = $at WHERE id = $id");
  const remove = db.query<{ report_class: ReportClass }, { id: string }>(
    "DELETE FROM outbox WHERE id = $id RETURNING report_class",
  );

  // What the table holds, kept in step with every write below (and reloaded if a transaction fails).
  const byClass: Record<ReportClass, number> = { usage: 0, status: 0, event: 0, other: 0 };
  const counters = { shed_events: 0, coalesced_status: 0, overflow_usage: 0 };
  let size = 0;
  function load(): void {
    for (const key of Object.keys(byClass) as ReportClass[]) byClass[key] = 0;
    size = 0;
    for (const { report_class, n } of countByClass.all()) {
      byClass[report_class] = n;
      size += n;
    }
    for (const key of Object.keys(counters) as Array<keyof typeof counters>) counters[key] = 0;
    for (const { name, value } of counterRows.all()) {
      if (Object.hasOwn(counters, name)) counters[name as keyof typeof counters] = value;
    }
  }
  load();
  const count = (name: keyof typeof counters, by: number) => {
    bump.run({ name, by });
    counters[name] += by;
  };

  function enqueueOne(row: OutboxInput): boolean {
    const coalesceKey = row.coalesceKey ?? null;
    if (row.reportClass === "status" && coalesceKey) {
      const replaced = dropCoalesced.run({ key: coalesceKey }).changes;
      if (replaced > 0) {
        count("coalesced_status", replaced);
        byClass.status -= replaced;
        size -= replaced;
      }
    }
    while (size >= options.maxRows) {
      const victim = oldestEvent.get();
      if (!victim) break;
      deleteSeq.run({ seq: victim.seq });
      count("shed_events", 1);
      byClass.event--;
      size--;
    }
    if (size >= options.maxRows) {
      if (row.reportClass === "event") {
        count("shed_events", 1);
        return false;
      }
      if (row.reportClass === "usage") count("overflow_usage", 1);
    }
    const added = insert.run({
      id: row.id,
      channel: row.channel,
      reportClass: row.reportClass,
      coalesceKey,
      payload: row.payload,
      createdAt: now(),
    }).changes;
    byClass[row.reportClass] += added;
    size += added;
    return true;
  }

  /** Runs a write transaction; if it fails, the in-memory counts are reloaded from what was committed. */
  function write<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const tx = db.transaction(fn);
    return (...args) => {
      try {
        return tx.immediate(...args);
      } catch (error) {
        load();
        throw error;
      }
    };
  }

  /** A write whose loss on power failure is harmless (a resend): committed without waiting for an fsync. */
  function relaxed<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const run = write(fn);
    return (...args) => {
      db.exec("PRAGMA synchronous = NORMAL");
      try {
        return run(...args);
      } finally {
        db.exec("PRAGMA synchronous = FULL");
      }
    };
  }

  const enqueue = write(enqueueOne);
  const enqueueMany = write((rows: readonly OutboxInput[]) => rows.map(enqueueOne));

  return {
    enqueue,
    enqueueMany: (rows) => (rows.length === 0 ? [] : enqueueMany(rows)),
    due: (limit, resendAfterMs) =>
      due.all({ cutoff: now() - resendAfterMs, limit }).map((r) => ({
        id: r.id,
        channel: r.channel,
        reportClass: r.report_class,
        coalesceKey: r.coalesce_key,
        payload: r.payload,
        createdAt: r.created_at,
        attempts: r.attempts,
      })),
    markSent: relaxed((ids: string[]) => {
      const at = now();
      for (const id of ids) markSent.run({ id, at });
    }),
    ack: relaxed((ids: string[]) => {
      let removed = 0;
      for (const id of ids) {
        const row = remove.get({ id });
        if (!row) continue;
        byClass[row.report_class]--;
        size--;
        removed++;
      }
      return removed;
    }),
    stats: () => ({
      pending: size,
      byClass: { ...byClass },
      shedEvents: counters.shed_events,
      coalescedStatus: counters.coalesced_status,
      overflowUsage: counters.overflow_usage,
    }),
    close: () => db.close(),
  };
}
