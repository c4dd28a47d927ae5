/**
 * @module manager/sync — the Manager's half of the channel (DESIGN.md §3): presence, the desired-state
 * dispatcher, report ingest with acks, and request/response commands.
 *
 * Presence: per cluster `connected`, `stale` (silent for `staleAfterMissedHeartbeats` heartbeat intervals),
 * `offline` (last will or closed socket) or `certificate_expired`. Hysteresis: going stale takes several missed
 * heartbeats, coming back takes one message, so a lossy link that drops the odd heartbeat never flaps.
 * A Manager restart gives every cluster a grace period to reconnect before anything is marked stale.
 */
import type { ClusterStatus } from "../../shared/api/models.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ClusterRow, Store, StoreTx } from "../store/store.ts";
import { type ClusterWriter, createClusterWriter } from "./cluster-writer.ts";

export type PresenceState = Extract<ClusterStatus, "connected" | "stale" | "offline" | "certificate_expired">;

export interface PresenceOptions {
  store: Store;
  logger: Logger;
  clock?: () => Date;
  staleAfterMissedHeartbeats?: number;
  /** Used until a cluster tells its own interval in a presence message. */
  defaultHeartbeatIntervalMs?: number;
  /** After a Manager start, how long clusters have to reconnect before they can turn stale. */
  restartGraceMs?: number;
  /** `lastSeenAt` is written at most this often per cluster (every message would be a write storm). */
  lastSeenWriteIntervalMs?: number;
  /** Where state and `lastSeenAt` changes are written (batched); default: a writer of its own on `store`. */
  writer?: ClusterWriter;
  checkIntervalMs?: number;
  onChange?: (clusterId: string, from: ClusterStatus | null, to: PresenceState) => void;
}

interface Entry {
  state: PresenceState | null;
  lastSeenMs: number;
  heartbeatIntervalMs: number;
  lastSeenWrittenMs: number;
}

export interface PresenceTracker {
  /** Any message from the cluster: it is alive. */
  seen(clusterId: string, options?: { heartbeatIntervalMs?: number }): void;
  /** The operator said `offline` (last will or graceful stop), or its socket closed. */
  offline(clusterId: string, reason: string): void;
  /** The current state as the tracker sees it (null: never heard of since start). */
  stateOf(clusterId: string): PresenceState | null;
  counts(): Record<PresenceState, number>;
  /** Evaluates staleness now (also runs on a timer once started). */
  check(): Promise<void>;
  start(): Promise<void>;
  /** Resolves when every state write issued so far is committed (or failed and was logged). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/** Statuses presence owns; others (pending_bootstrap, bootstrapping, error) change only when the operator talks. */
const PRESENCE_STATES = new Set<ClusterStatus>(["connected", "stale", "offline", "certificate_expired"]);

export function createPresenceTracker(options: PresenceOptions): PresenceTracker {
  const clock = options.clock ?? (() => new Date());
  const missed = options.staleAfterMissedHeartbeats ?? 3;
  const defaultInterval = options.defaultHeartbeatIntervalMs ?? 10_000;
  const grace = options.restartGraceMs ?? 60_000;
  const lastSeenEvery = options.lastSeenWriteIntervalMs ?? 15_000;
  const log = options.logger.child({ component: "presence" });
  const writer = options.writer ?? createClusterWriter({ store: options.store, logger: options.logger });
  const entries = new Map<string, Entry>();
  let startedAtMs = clock().getTime(); // reset in start()
  let timer: ReturnType<typeof setInterval> | null = null;

  const entry = (clusterId: string): Entry => {
    let e = entries.get(clusterId);
    if (!e) {
      e = { state: null, lastSeenMs: 0, heartbeatIntervalMs: defaultInterval, lastSeenWrittenMs: 0 };
      entries.set(clusterId, e);
    }
    return e;
  };

  type StatePatch = { status?: PresenceState; lastSeenAt?: string };

  /** The row change for a state patch: a status change clears the previous status reason. */
  const rowChanges = (row: ClusterRow, patch: StatePatch): Partial<ClusterRow> => ({
    ...patch,
    ...(patch.status && patch.status !== row.status ? { statusReason: null } : {}),
  });

  // A failed write is logged by the writer, once per batch (as before, a lost state write is not retried).
  const ignore = () => undefined;

  /** Queues status/lastSeenAt; a concurrent update (hello, the API) is re-read in the writer, never overwritten. */
  function enqueueWrite(clusterId: string, patch: StatePatch): void {
    writer.patch(clusterId, (row) => rowChanges(row, patch)).catch(ignore);
  }

  /** Moves the in-memory state and returns the row patch to write, or null when nothing changed. */
  function move(clusterId: string, e: Entry, to: PresenceState, reason: string): StatePatch | null {
    if (e.state === to) return null;
    const from = e.state;
    e.state = to;
    log.info("cluster presence changed", { cluster: clusterId, from, to, reason });
    e.lastSeenWrittenMs = e.lastSeenMs;
    options.onChange?.(clusterId, from, to);
    return { status: to, ...(e.lastSeenMs > 0 ? { lastSeenAt: new Date(e.lastSeenMs).toISOString() } : {}) };
  }

  function transition(clusterId: string, e: Entry, to: PresenceState, reason: string): void {
    const patch = move(clusterId, e, to, reason);
    if (patch) enqueueWrite(clusterId, patch);
  }

  async function certificateExpired(tx: StoreTx, clusterId: string): Promise<boolean> {
    const certificates = await tx.clusterCertificates.listForCluster(clusterId);
    if (certificates.length === 0) return false;
    const now = clock().getTime();
    return certificates.every((c) => Date.parse(c.notAfter) <= now);
  }

  return {
    seen(clusterId, seenOptions = {}) {
      const e = entry(clusterId);
      e.lastSeenMs = clock().getTime();
      if (seenOptions.heartbeatIntervalMs) e.heartbeatIntervalMs = seenOptions.heartbeatIntervalMs;
      if (e.state !== "connected") transition(clusterId, e, "connected", "message received");
      else if (e.lastSeenMs - e.lastSeenWrittenMs >= lastSeenEvery) {
        e.lastSeenWrittenMs = e.lastSeenMs;
        enqueueWrite(clusterId, { lastSeenAt: new Date(e.lastSeenMs).toISOString() });
      }
    },
    offline(clusterId, reason) {
      const e = entry(clusterId);
      // Decided when the writer gets to it, after any earlier write for this cluster, and only once: the writer
      // may call a patch again (version conflict), the transition must not happen twice.
      let decided: { patch: StatePatch | null } | null = null;
      writer
        .patch(clusterId, async (row, tx) => {
          if (decided === null) {
            const expired = await certificateExpired(tx, clusterId).catch(() => false);
            decided = { patch: move(clusterId, e, expired ? "certificate_expired" : "offline", reason) };
          }
          return decided.patch ? rowChanges(row, decided.patch) : null;
        })
        .then(() => {
          // The row is gone (the cluster was deleted): nothing to write, but it is offline all the same.
          if (decided === null) move(clusterId, e, "offline", reason);
        })
        .catch(ignore);
    },
    stateOf: (clusterId) => entries.get(clusterId)?.state ?? null,
    counts() {
      const out: Record<PresenceState, number> = {
        connected: 0,
        stale: 0,
        offline: 0,
        certificate_expired: 0,
      };
      for (const e of entries.values()) if (e.state) out[e.state]++;
      return out;
    },
    async check() {
      const now = clock().getTime();
      for (const [clusterId, e] of entries) {
        if (e.state !== "connected") continue;
        if (now - e.lastSeenMs > missed * e.heartbeatIntervalMs) {
          transition(clusterId, e, "stale", `silent for ${Math.round((now - e.lastSeenMs) / 1000)}s`);
        }
      }
    },
    async start() {
      startedAtMs = clock().getTime();
      // Clusters the store last saw connected get the restart grace: they count as seen until the grace ends
      // (minus the usual silence allowance), so only they are shielded while they reconnect.
      let cursor: string | undefined;
      do {
        const page = await options.store.clusters.list({ limit: 500, ...(cursor ? { cursor } : {}) });
        for (const row of page.items) {
          if (!PRESENCE_STATES.has(row.status)) continue;
          const e = entry(row.id);
          e.state = row.status as PresenceState;
          e.lastSeenMs = startedAtMs + Math.max(0, grace - missed * e.heartbeatIntervalMs);
          e.lastSeenWrittenMs = e.lastSeenMs;
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      const every = options.checkIntervalMs ?? Math.max(100, Math.min(1000, Math.floor(defaultInterval / 2)));
      timer = setInterval(() => {
        this.check().catch((error) => log.warn("presence check failed", { err: error as Error }));
      }, every);
    },
    async settled() {
      await writer.flush();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      // A shared writer (the channel's) is stopped by its owner; ours is flushed.
      await writer.flush();
    },
  };
}
