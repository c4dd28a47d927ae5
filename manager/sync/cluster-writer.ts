/**
 * Write-behind for the channel's cluster-row updates (presence transitions, `lastSeenAt`, what `hello` said).
 * Each of these used to be its own committed write — with SQLite's `synchronous = FULL` one fsync each, about
 * 4 ms during which the event loop stands still — so 10,000 operators connecting (or heartbeating past the
 * `lastSeenAt` interval) queued thousands of fsyncs and the Manager stopped accepting connections. Here patches
 * queue per cluster and are applied together, every `intervalMs`, in one transaction: one commit per tick
 * whatever the number of clusters.
 *
 * Patches of one cluster apply in the order they were queued, each on the row as the previous one left it, read
 * inside the transaction — so a concurrent API update is re-read, never overwritten (optimistic `version`, as
 * before). A patch may be called more than once (a version conflict retries the cluster), so it must not
 * repeat side effects; see presence.ts.
 */
import { isKubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ClusterRow, Store, StoreTx } from "../store/store.ts";

/** Returns the fields to change, or null for none. */
export type ClusterPatch = (
  row: ClusterRow,
  tx: StoreTx,
) => Partial<ClusterRow> | null | Promise<Partial<ClusterRow> | null>;

export interface ClusterWriter {
  /** Queues a patch; resolves once it is committed (or the cluster is gone), rejects if its write failed. */
  patch(clusterId: string, patch: ClusterPatch): Promise<void>;
  /** Writes everything queued so far now; resolves when it is committed (or failed and was logged). */
  flush(): Promise<void>;
  /** Flushes; later patches are written at once instead of on the timer. */
  stop(): Promise<void>;
  stats(): ClusterWriterStats;
}

export interface ClusterWriterStats {
  /** Transactions committed, and the cluster rows they changed. */
  batches: number;
  rows: number;
  failures: number;
}

interface Queued {
  patches: ClusterPatch[];
  waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }>;
}

const ATTEMPTS = 5;

export function createClusterWriter(options: {
  store: Store;
  logger: Logger;
  /** How long a patch may wait for the others of its tick; default 100 ms. 0 writes on the next turn. */
  intervalMs?: number;
}): ClusterWriter {
  const log = options.logger.child({ component: "cluster-writer" });
  const intervalMs = options.intervalMs ?? 100;
  const stats: ClusterWriterStats = { batches: 0, rows: 0, failures: 0 };
  let queued = new Map<string, Queued>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;

  /** Applies one cluster's patches inside `tx`; true if the row changed. */
  async function apply(tx: StoreTx, clusterId: string, patches: ClusterPatch[]): Promise<boolean> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const row = await tx.clusters.getById(clusterId);
      if (!row) return false; // deleted meanwhile
      let next = row;
      let changed = false;
      for (const patch of patches) {
        const changes = await patch(next, tx);
        if (changes) {
          next = { ...next, ...changes };
          changed = true;
        }
      }
      if (!changed) return false;
      try {
        await tx.clusters.update(next, { expectedVersion: row.version });
        return true;
      } catch (error) {
        // Another writer (the API, another replica on Postgres) changed the row since we read it: re-read.
        if (isKubeNovaError(error) && error.code === "KN-412") continue;
        throw error;
      }
    }
    throw new Error(`cluster ${clusterId} kept changing; gave up after ${ATTEMPTS} attempts`);
  }

  async function write(batch: Map<string, Queued>): Promise<void> {
    if (batch.size === 0) return;
    let rows = 0;
    try {
      await options.store.transaction(async (tx) => {
        rows = 0;
        for (const [clusterId, item] of batch) if (await apply(tx, clusterId, item.patches)) rows++;
      });
      stats.batches++;
      stats.rows += rows;
      for (const item of batch.values()) for (const waiter of item.waiters) waiter.resolve();
      return;
    } catch (error) {
      // The database is unavailable (KN-503 and the like): retrying cluster by cluster would only fail slower.
      if (batch.size === 1 || (isKubeNovaError(error) && error.retryable)) {
        stats.failures++;
        log.warn("could not write cluster updates; they are dropped", {
          clusters: batch.size,
          err: error as Error,
        });
        for (const item of batch.values()) for (const waiter of item.waiters) waiter.reject(error);
        return;
      }
      log.warn("batched cluster update failed; writing each cluster on its own", {
        clusters: batch.size,
        err: error as Error,
      });
    }
    // One cluster's failure (a row that keeps conflicting) must not lose the others' updates.
    for (const [clusterId, item] of batch) await write(new Map([[clusterId, item]]));
  }

  function flushNow(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = queued;
    queued = new Map();
    chain = chain.then(() => write(batch));
    return chain;
  }

  return {
    patch(clusterId, patch) {
      return new Promise<void>((resolve, reject) => {
        let item = queued.get(clusterId);
        if (!item) {
          item = { patches: [], waiters: [] };
          queued.set(clusterId, item);
        }
        item.patches.push(patch);
        item.waiters.push({ resolve, reject });
        if (stopped) void flushNow();
        else timer ??= setTimeout(() => void flushNow(), intervalMs);
      });
    },
    flush: flushNow,
    async stop() {
      stopped = true;
      await flushNow();
    },
    stats: () => ({ ...stats }),
  };
}
