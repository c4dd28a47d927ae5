/**
 * The desired-state dispatcher (DESIGN.md §3): level-triggered, revision-ordered. It answers an operator's
 * `hello {lastAppliedRevision}` with the changes after it — or with a full snapshot when that revision was
 * compacted away (or is ahead of ours, e.g. after a database restore) — and publishes newly committed changes
 * to clusters that are connected. Heartbeats carry the operator's revision, so a lost `desired` message is
 * noticed and resent without waiting for the next change. Duplicates are harmless: the operator skips revisions
 * it has applied.
 */
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import { type DesiredChange, makeEnvelope } from "../../shared/messages.ts";
import { topicFor } from "../../shared/topics.ts";
import type { Bus } from "../bus/bus.ts";
import type { ChangeRow, Store } from "../store/store.ts";
import { clusterSnapshot } from "./snapshot.ts";

export interface DispatcherOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  /** Changes per `desired` message at most (also split by size). */
  batchSize?: number;
  maxPayloadBytes?: number;
  /** A cluster still behind this long after we sent it everything gets it again. */
  resendAfterMs?: number;
  /** Whether a cluster is online to receive (connected or stale). */
  isReachable?: (clusterId: string) => boolean;
  /**
   * A heartbeat whose revision equals the latest this dispatcher read from the store within this long is taken
   * as in sync without reading it again (a point query per heartbeat: ~15% of a heartbeat's Manager CPU). Only
   * safe when every change-log append reaches `notify` — one Manager with its embedded broker; with replicas
   * (an external broker) another replica's append is seen only through the store: 0, read every heartbeat.
   */
  heartbeatRecheckMs?: number;
  clock?: () => Date;
}

export interface DispatcherStats {
  messages: number;
  changes: number;
  snapshots: number;
  resends: number;
}

export interface DesiredDispatcher {
  onHello(clusterId: string, lastAppliedRevision: number): Promise<void>;
  onHeartbeat(clusterId: string, lastAppliedRevision: number): Promise<void>;
  /** Change logs of these clusters grew (committed). */
  notify(clusterIds: string[]): void;
  /** Drops log entries older than the newest `keepRevisions` per cluster; returns how many. */
  compact(keepRevisions: number): Promise<number>;
  /** Resolves when every send queued so far is done. */
  idle(): Promise<void>;
  forget(clusterId: string): void;
  stats(): DispatcherStats;
}

const toWire = (row: ChangeRow): DesiredChange => ({
  revision: row.revision,
  kind: row.kind,
  key: row.key,
  op: row.op,
  body: row.body,
  ...(row.traceparent ? { traceparent: row.traceparent } : {}),
});

export function createDesiredDispatcher(options: DispatcherOptions): DesiredDispatcher {
  const log = options.logger.child({ component: "dispatcher" });
  const clock = options.clock ?? (() => new Date());
  const batchSize = options.batchSize ?? 500;
  const maxBytes = Math.floor((options.maxPayloadBytes ?? 256 * 1024) * 0.75);
  const resendAfterMs = options.resendAfterMs ?? 15_000;
  const isReachable = options.isReachable ?? (() => true);
  const recheckMs = options.heartbeatRecheckMs ?? 0;
  /** What we last sent each cluster: everything up to `revision`, at `at`. */
  const sent = new Map<string, { revision: number; at: number }>();
  /** The latest revision read from the store per cluster, and when; dropped when `notify` says it grew. */
  const latestRead = new Map<string, { revision: number; atMs: number }>();
  /** Bumped by `notify`: a read that overlapped an append is not kept (it may predate the commit). */
  let appends = 0;
  const readLatest = async (clusterId: string): Promise<number> => {
    const atMs = performance.now();
    const before = appends;
    const revision = await options.store.changeLog.latestRevision(clusterId);
    if (recheckMs > 0 && appends === before) latestRead.set(clusterId, { revision, atMs });
    return revision;
  };
  /** Sends to one cluster run one at a time, in order. */
  const chains = new Map<string, Promise<void>>();
  const stats: DispatcherStats = { messages: 0, changes: 0, snapshots: 0, resends: 0 };

  async function publish(
    clusterId: string,
    body: { fromRevision: number; toRevision: number; snapshot: boolean; changes: DesiredChange[] },
  ) {
    const envelope = makeEnvelope({ id: uuidv7(), kind: "desired", clusterId, body });
    await options.bus.publish(topicFor(clusterId, "desired"), JSON.stringify(envelope), { qos: 1 });
    stats.messages++;
    stats.changes += body.changes.length;
  }

  /** Splits changes into messages under the payload limit, in order. */
  async function publishChanges(
    clusterId: string,
    from: number,
    rows: DesiredChange[],
    snapshot: boolean,
    toRevision: number,
  ) {
    let batch: DesiredChange[] = [];
    let size = 0;
    let batchFrom = from;
    const flush = async (last: boolean) => {
      if (batch.length === 0 && !(last && snapshot)) return;
      const to = last ? toRevision : batch[batch.length - 1]!.revision;
      await publish(clusterId, {
        fromRevision: batchFrom,
        toRevision: to,
        snapshot: snapshot && last,
        changes: batch,
      });
      batchFrom = to;
      batch = [];
      size = 0;
    };
    for (const change of rows) {
      const bytes = JSON.stringify(change).length;
      // A snapshot must arrive whole: it is split only if it cannot fit, and then the operator resyncs.
      if (!snapshot && batch.length > 0 && (batch.length >= batchSize || size + bytes > maxBytes))
        await flush(false);
      batch.push(change);
      size += bytes;
    }
    await flush(true);
  }

  async function sendFrom(clusterId: string, after: number, reason: string): Promise<void> {
    const latest = await readLatest(clusterId);
    // Revisions are contiguous per cluster (store contract), so the log still holds `after + 1` unless compaction
    // removed it: the first page answers that, without a separate MIN(revision) query.
    const first =
      after < latest
        ? await options.store.changeLog.list(clusterId, { afterRevision: after, limit: batchSize * 4 })
        : [];
    const compactedAway = after < latest && first[0]?.revision !== after + 1;
    if (after > latest || compactedAway) {
      const snapshot = await clusterSnapshot(options.store, clusterId);
      log.info("sending a snapshot", {
        cluster: clusterId,
        after,
        latest: snapshot.revision,
        reason,
        objects: snapshot.changes.length,
      });
      await publishChanges(clusterId, after, snapshot.changes, true, snapshot.revision);
      stats.snapshots++;
      sent.set(clusterId, { revision: snapshot.revision, at: clock().getTime() });
      return;
    }
    let cursor = after;
    let page: ChangeRow[] | null = first;
    while (cursor < latest) {
      const rows =
        page ??
        (await options.store.changeLog.list(clusterId, { afterRevision: cursor, limit: batchSize * 4 }));
      page = null;
      if (rows.length === 0) break;
      const last = rows[rows.length - 1]!.revision;
      await publishChanges(clusterId, cursor, rows.map(toWire), false, last);
      cursor = last;
    }
    sent.set(clusterId, { revision: Math.max(cursor, after), at: clock().getTime() });
  }

  function enqueue(clusterId: string, work: () => Promise<void>): Promise<void> {
    const next = (chains.get(clusterId) ?? Promise.resolve()).then(work).catch((error) => {
      // The store or the broker failed: nothing is lost, the next hello or heartbeat resends.
      log.warn("dispatch failed", { cluster: clusterId, err: error as Error });
    });
    chains.set(clusterId, next);
    void next.finally(() => {
      if (chains.get(clusterId) === next) chains.delete(clusterId);
    });
    return next;
  }

  return {
    onHello(clusterId, lastAppliedRevision) {
      return enqueue(clusterId, () => sendFrom(clusterId, lastAppliedRevision, "hello"));
    },
    onHeartbeat(clusterId, lastAppliedRevision) {
      const known = latestRead.get(clusterId);
      if (
        known !== undefined &&
        known.revision === lastAppliedRevision &&
        performance.now() - known.atMs < recheckMs &&
        !chains.has(clusterId)
      ) {
        return Promise.resolve(); // in sync with what we read, and nothing was appended since (notify)
      }
      return enqueue(clusterId, async () => {
        const latest = await readLatest(clusterId);
        if (latest === lastAppliedRevision) return;
        const last = sent.get(clusterId);
        const recentlySent = last && last.revision >= latest && clock().getTime() - last.at < resendAfterMs;
        if (recentlySent && lastAppliedRevision <= latest) return;
        stats.resends++;
        await sendFrom(clusterId, lastAppliedRevision, "heartbeat behind");
      });
    },
    notify(clusterIds) {
      appends++;
      for (const clusterId of clusterIds) {
        latestRead.delete(clusterId);
        const last = sent.get(clusterId);
        // Without a hello we do not know where the operator is; its hello will bring it up to date.
        if (!last || !isReachable(clusterId)) continue;
        void enqueue(clusterId, () =>
          sendFrom(clusterId, sent.get(clusterId)?.revision ?? last.revision, "new changes"),
        );
      }
    },
    async compact(keepRevisions) {
      let removed = 0;
      let cursor: string | undefined;
      do {
        const page = await options.store.clusters.list({ limit: 500, ...(cursor ? { cursor } : {}) });
        for (const cluster of page.items) {
          const latest = await options.store.changeLog.latestRevision(cluster.id);
          if (latest > keepRevisions)
            removed += await options.store.changeLog.compact(cluster.id, latest - keepRevisions);
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      if (removed > 0) log.info("compacted change logs", { removed, keep_revisions: keepRevisions });
      return removed;
    },
    async idle() {
      while (chains.size > 0) await Promise.all([...chains.values()]);
    },
    forget(clusterId) {
      sent.delete(clusterId);
      latestRead.delete(clusterId);
    },
    stats: () => ({ ...stats }),
  };
}
