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
import type { Store } from "../store/store.ts";
import { patchCluster } from "./patch-cluster.ts";

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
  checkIntervalMs?: number;
  onChange?: (clusterId: string, from: ClusterStatus | null, to: PresenceState) => void;
}

interface Entry {
  state: PresenceState | null;
  lastSeenMs: number;
  heartbeatIntervalMs: number;
  lastSeenWrittenMs: number;
  /** The last pending write, so writes for one cluster happen in order. */
  writing: Promise<void>;
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
  /** Resolves when every state write issued so far is done. */
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
  const entries = new Map<string, Entry>();
  let startedAtMs = clock().getTime(); // reset in start()
  let timer: ReturnType<typeof setInterval> | null = null;

  const entry = (clusterId: string): Entry => {
    let e = entries.get(clusterId);
    if (!e) {
      e = {
        state: null,
        lastSeenMs: 0,
        heartbeatIntervalMs: defaultInterval,
        lastSeenWrittenMs: 0,
        writing: Promise.resolve(),
      };
      entries.set(clusterId, e);
    }
    return e;
  };

  /** Writes status/lastSeenAt; a concurrent update (hello, the API) is re-read, never overwritten. */
  async function write(
    clusterId: string,
    patch: { status?: PresenceState; lastSeenAt?: string },
  ): Promise<void> {
    await patchCluster(options.store, clusterId, (row) => ({
      ...patch,
      ...(patch.status && patch.status !== row.status ? { statusReason: null } : {}),
    }));
  }

  function enqueueWrite(
    clusterId: string,
    e: Entry,
    patch: { status?: PresenceState; lastSeenAt?: string },
  ): void {
    e.writing = e.writing
      .then(() => write(clusterId, patch))
      .catch((error) => log.warn("could not record presence", { cluster: clusterId, err: error as Error }));
  }

  /** Moves the in-memory state and returns the row patch to write, or null when nothing changed. */
  function move(clusterId: string, e: Entry, to: PresenceState, reason: string) {
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
    if (patch) enqueueWrite(clusterId, e, patch);
  }

  async function certificateExpired(clusterId: string): Promise<boolean> {
    const certificates = await options.store.clusterCertificates.listForCluster(clusterId);
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
        enqueueWrite(clusterId, e, { lastSeenAt: new Date(e.lastSeenMs).toISOString() });
      }
    },
    offline(clusterId, reason) {
      const e = entry(clusterId);
      // Decided inside the write queue, so it lands after any earlier write for this cluster.
      e.writing = e.writing
        .then(async () => {
          const expired = await certificateExpired(clusterId).catch(() => false);
          const patch = move(clusterId, e, expired ? "certificate_expired" : "offline", reason);
          if (patch) await write(clusterId, patch);
        })
        .catch((error) => log.warn("could not record presence", { cluster: clusterId, err: error as Error }));
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
      await Promise.all([...entries.values()].map((e) => e.writing));
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await this.settled();
    },
  };
}
