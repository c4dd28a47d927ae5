/**
 * The operator's durable outbox (DESIGN.md §3): every report is written here before it is published and
 * deleted only when the Manager's `acks` says the row is committed. bun:sqlite in WAL mode with
 * `synchronous = FULL`, so a report that was enqueued survives a crash or power loss.
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

export interface Outbox {
  /** Durably stores a report; returns false only when an event was shed instead of stored. */
  enqueue(row: {
    id: string;
    channel: Channel;
    reportClass: ReportClass;
    coalesceKey?: string | null;
    payload: string;
  }): boolean;
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

  const count = db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox");
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
  const counter = db.query<{ value: number }, { name: string }>(
    "SELECT value FROM outbox_counters WHERE name = $name",
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
  const remove = db.query("DELETE FROM outbox WHERE id = $id");

  const enqueue = db.transaction(
    (row: {
      id: string;
      channel: Channel;
      reportClass: ReportClass;
      coalesceKey: string | null;
      payload: string;
    }) => {
      if (row.reportClass === "status" && row.coalesceKey) {
        const replaced = dropCoalesced.run({ key: row.coalesceKey }).changes;
        if (replaced > 0) bump.run({ name: "coalesced_status", by: replaced });
      }
      let size = count.get()!.n;
      while (size >= options.maxRows) {
        const victim = oldestEvent.get();
        if (!victim) break;
        deleteSeq.run({ seq: victim.seq });
        bump.run({ name: "shed_events", by: 1 });
        size--;
      }
      if (size >= options.maxRows) {
        if (row.reportClass === "event") {
          bump.run({ name: "shed_events", by: 1 });
          return false;
        }
        if (row.reportClass === "usage") bump.run({ name: "overflow_usage", by: 1 });
      }
      insert.run({ ...row, createdAt: now() });
      return true;
    },
  );

  const readCounter = (name: string) => counter.get({ name })?.value ?? 0;

  return {
    enqueue: (row) => enqueue.immediate({ ...row, coalesceKey: row.coalesceKey ?? null }),
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
    markSent: db.transaction((ids: string[]) => {
      const at = now();
      for (const id of ids) markSent.run({ id, at });
    }),
    ack: db.transaction((ids: string[]) => {
      let removed = 0;
      for (const id of ids) removed += remove.run({ id }).changes;
      return removed;
    }),
    stats: () => {
      const byClass: Record<ReportClass, number> = { usage: 0, status: 0, event: 0, other: 0 };
      for (const { report_class, n } of countByClass.all()) byClass[report_class] = n;
      return {
        pending: count.get()!.n,
        byClass,
        shedEvents: readCounter("shed_events"),
        coalescedStatus: readCounter("coalesced_status"),
        overflowUsage: readCounter("overflow_usage"),
      };
    },
    close: () => db.close(),
  };
}
