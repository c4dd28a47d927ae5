/**
 * The operator's durable outbox (DESIGN.md §3): every report is written here before it is published and
 * deleted only when the Manager's `acks` says the row is committed. bun:sqlite in WAL mode with
 * `synchronous = FULL`, so a report that was enqueued survives a crash or power loss: every enqueue commit
 * (one report, or a batch in one transaction) fsyncs the WAL before it returns.
 *
 * Only enqueues need that fsync. Deleting acknowledged rows commits with `synchronous = NORMAL` (no fsync; the
 * next enqueue's fsync or a checkpoint makes it durable): losing one to a power cut only means a report is sent
 * again, which the Manager's unique keys absorb. WAL frames are checksummed, so an unsynced tail is rolled back
 * whole, never half-applied.
 *
 * What was sent, and when, is not written at all: it lives in memory (`take` hands rows out and remembers them;
 * rows above the highest sequence handed out have never been sent by this process). After a restart every
 * pending row is due at once — the connection that carried the earlier sends is gone anyway — and a row sent
 * but not acked is due again `resendAfterMs` after its send. A write per publish was most of the outbox's cost.
 *
 * Acked rows leave the counts and the queue at once but are deleted from the file in batches — with the next
 * enqueue's transaction, once 256 are waiting, once the oldest has waited a second, on `compact` (the link calls
 * it when idle) or at `close` — since a commit per `acks` message rewrote the same pages over and over. One lost
 * to a crash is sent once more.
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
  /** Times this process handed the row out (`take`); not kept across restarts. */
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
  /**
   * What is due, without marking it: rows sent `resendAfterMs` ago or longer and not acked (oldest send first),
   * then rows never sent by this process (in order); at most `limit`.
   */
  due(limit: number, resendAfterMs: number): OutboxRow[];
  /** `due`, and records the rows as sent now (in memory: `attempts` counts sends since the outbox was opened). */
  take(limit: number, resendAfterMs: number): OutboxRow[];
  /** Deletes acknowledged rows; returns how many were pending. Unknown ids are ignored (duplicate acks). */
  ack(ids: string[]): number;
  /** Deletes the acked rows still in the file now (otherwise deleted in batches); a no-op when there are none. */
  compact(): void;
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
-- Only events are ever looked up by class (the oldest one, to shed it): an index of every row by class cost a
-- b-tree write per enqueue and per delete. Files from before drop the old one.
DROP INDEX IF EXISTS outbox_class;
CREATE INDEX IF NOT EXISTS outbox_events ON outbox (seq) WHERE report_class = 'event';
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
  const dropCoalesced = db.query<{ id: string }, { key: string }>(
    "DELETE FROM outbox WHERE coalesce_key = $key AND report_class = 'status' RETURNING id",
  );
  const oldestEvent = db.query<{ seq: number; id: string }, []>(
    "SELECT seq, id FROM outbox WHERE report_class = 'event' ORDER BY seq LIMIT 1",
  );
  const deleteSeq = db.query("DELETE FROM outbox WHERE seq = $seq");
  const bump = db.query(
    "INSERT INTO outbox_counters (name, value) VALUES ($name, $by) ON CONFLICT (name) DO UPDATE SET value = value + $by",
  );
  const counterRows = db.query<{ name: string; value: number }, []>(
    "SELECT name, value FROM outbox_counters",
  );
  type StoredRow = {
    seq: number;
    id: string;
    channel: Channel;
    report_class: ReportClass;
    coalesce_key: string | null;
    payload: string;
    created_at: number;
  };
  const COLUMNS = "seq, id, channel, report_class, coalesce_key, payload, created_at";
  /** Rows never handed out by this process: above the cursor, in order (the primary key's range). */
  const unsent = db.query<StoredRow, { after: number; limit: number }>(
    `SELECT ${COLUMNS} FROM outbox WHERE seq > $after ORDER BY seq LIMIT $limit`,
  );
  const bySeq = db.query<StoredRow, { seq: number }>(`SELECT ${COLUMNS} FROM outbox WHERE seq = $seq`);
  // Ids or sequences as one JSON array: one statement for any number of rows.
  const removeIds = db.query<{ report_class: ReportClass }, { ids: string }>(
    "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each($ids)) RETURNING report_class",
  );
  const removeSeqs = db.query<never, { seqs: string }>(
    "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each($seqs))",
  );

  /**
   * Rows handed out by `take` and not acked, by id, in the order of their last send (a resend moves to the back).
   * Every row at or below `cursor` is here, or was acked, coalesced or shed.
   */
  const sent = new Map<string, { seq: number; sentAt: number; attempts: number; reportClass: ReportClass }>();
  let cursor = 0;
  /** Acked rows still in the file (sequence → class), already gone from the counts; `deleteAcked` removes them. */
  const acked = new Map<number, ReportClass>();
  let ackedSince = 0;
  /** Rows above the cursor read ahead, in order: a prefix of what was never handed out (`unsentRows`). */
  let ahead: StoredRow[] = [];
  let aheadAt = 0;
  const READ_AHEAD = 64;

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
    for (const reportClass of acked.values()) {
      byClass[reportClass]--;
      size--;
    }
    for (const key of Object.keys(counters) as Array<keyof typeof counters>) counters[key] = 0;
    for (const { name, value } of counterRows.all()) {
      if (Object.hasOwn(counters, name)) counters[name as keyof typeof counters] = value;
    }
    ahead = [];
  }
  load();
  const count = (name: keyof typeof counters, by: number) => {
    bump.run({ name, by });
    counters[name] += by;
  };

  function enqueueOne(row: OutboxInput): boolean {
    const coalesceKey = row.coalesceKey ?? null;
    if (row.reportClass === "status" && coalesceKey) {
      const dropped = dropCoalesced.all({ key: coalesceKey });
      const replaced = dropped.length;
      if (replaced > 0) {
        for (const { id } of dropped) sent.delete(id);
        ahead = [];
        count("coalesced_status", replaced);
        byClass.status -= replaced;
        size -= replaced;
      }
    }
    while (size >= options.maxRows) {
      const victim = oldestEvent.get();
      if (!victim) break;
      deleteSeq.run({ seq: victim.seq });
      sent.delete(victim.id);
      ahead = [];
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

  /** Deletes the acked rows still in the file; `acked` is cleared by the caller once that is committed. */
  function deleteAcked(): void {
    if (acked.size > 0) removeSeqs.run({ seqs: JSON.stringify([...acked.keys()]) });
  }

  /**
   * Runs a write transaction, which first deletes the acked rows (so shedding and coalescing only ever see live
   * ones); if it fails, the in-memory counts are reloaded from what was committed.
   */
  function write<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const tx = db.transaction((...args: A) => {
      deleteAcked();
      return fn(...args);
    });
    return (...args) => {
      try {
        const result = tx.immediate(...args);
        acked.clear();
        return result;
      } catch (error) {
        load();
        throw error;
      }
    };
  }

  /** A statement whose loss on power failure is harmless (a resend): committed without waiting for an fsync. */
  function relaxed<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args) => {
      // Not prepared statements: SQLite applies `PRAGMA synchronous` when it compiles one, so a prepared
      // statement's first run would not change the setting at all.
      db.exec("PRAGMA synchronous = NORMAL");
      try {
        return fn(...args);
      } catch (error) {
        load();
        throw error;
      } finally {
        db.exec("PRAGMA synchronous = FULL");
      }
    };
  }

  const flushAcked = relaxed(() => {
    deleteAcked();
    acked.clear();
  });

  const enqueue = write(enqueueOne);
  const enqueueMany = write((rows: readonly OutboxInput[]) => rows.map(enqueueOne));

  function due(limit: number, resendAfterMs: number): StoredRow[] {
    const rows: StoredRow[] = [];
    const cutoff = now() - resendAfterMs;
    for (const [id, entry] of sent) {
      if (rows.length >= limit || entry.sentAt > cutoff) break;
      const row = bySeq.get({ seq: entry.seq });
      if (row) rows.push(row);
      else sent.delete(id); // replaced by a newer status or shed
    }
    if (rows.length < limit) for (const row of unsentRows(limit - rows.length)) rows.push(row);
    return rows;
  }

  /** The first `limit` rows above the cursor, read `READ_AHEAD` at a time rather than a query per `take`. */
  function unsentRows(limit: number): StoredRow[] {
    while (aheadAt < ahead.length && ahead[aheadAt]!.seq <= cursor) aheadAt++;
    if (ahead.length - aheadAt < limit) {
      ahead = unsent.all({ after: cursor, limit: Math.max(limit, READ_AHEAD) });
      aheadAt = 0;
    }
    return ahead.slice(aheadAt, aheadAt + limit);
  }

  const removeUnknown = relaxed((ids: string[]): number => {
    deleteAcked();
    acked.clear();
    let removed = 0;
    for (const row of removeIds.all({ ids: JSON.stringify(ids) })) {
      byClass[row.report_class]--;
      size--;
      removed++;
    }
    if (removed > 0) ahead = [];
    return removed;
  });

  const toRow = (r: StoredRow): OutboxRow => ({
    id: r.id,
    channel: r.channel,
    reportClass: r.report_class,
    coalesceKey: r.coalesce_key,
    payload: r.payload,
    createdAt: r.created_at,
    attempts: sent.get(r.id)?.attempts ?? 0,
  });

  return {
    enqueue,
    enqueueMany: (rows) => (rows.length === 0 ? [] : enqueueMany(rows)),
    due: (limit, resendAfterMs) => due(limit, resendAfterMs).map(toRow),
    take: (limit, resendAfterMs) => {
      const at = now();
      return due(limit, resendAfterMs).map((r) => {
        const attempts = (sent.get(r.id)?.attempts ?? 0) + 1;
        sent.delete(r.id); // a resend moves to the back
        sent.set(r.id, { seq: r.seq, sentAt: at, attempts, reportClass: r.report_class });
        if (r.seq > cursor) cursor = r.seq;
        return toRow(r);
      });
    },
    ack: (ids) => {
      let removed = 0;
      const unknown: string[] = [];
      for (const id of ids) {
        const entry = sent.get(id);
        if (!entry) {
          unknown.push(id);
          continue;
        }
        sent.delete(id);
        if (acked.size === 0) ackedSince = now();
        acked.set(entry.seq, entry.reportClass);
        byClass[entry.reportClass]--;
        size--;
        removed++;
      }
      if (unknown.length > 0) {
        // Not handed out by this process (sent before a restart), or acked already: delete by id now, after
        // the acked rows, so a repeated ack finds nothing to count twice.
        removed += removeUnknown(unknown);
      } else if (acked.size >= 256 || now() - ackedSince >= 1_000) {
        flushAcked();
      }
      return removed;
    },
    stats: () => ({
      pending: size,
      byClass: { ...byClass },
      shedEvents: counters.shed_events,
      coalescedStatus: counters.coalesced_status,
      overflowUsage: counters.overflow_usage,
    }),
    compact: () => {
      if (acked.size > 0) flushAcked();
    },
    close: () => {
      flushAcked();
      db.close();
    },
  };
}
