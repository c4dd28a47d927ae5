/**
 * Wires the Manager's half of the channel over a Bus: presence, dispatcher, commands and ingest, plus the
 * store view whose committed change-log appends wake the dispatcher. Built once in main.ts (or a test).
 */
import type { Logger } from "../../shared/logger.ts";
import type { Bus } from "../bus/bus.ts";
import type { Store } from "../store/store.ts";
import { type CommandClient, createCommandClient } from "./commands.ts";
import { createDesiredDispatcher, type DesiredDispatcher } from "./dispatcher.ts";
import { createIngest, type Ingest, type UsagePolicy } from "./ingest.ts";
import { observeChangeLog } from "./notify.ts";
import { type ClusterWriter, createClusterWriter } from "./cluster-writer.ts";
import { createPresenceTracker, type PresenceTracker } from "./presence.ts";

export interface SyncChannelOptions {
  store: Store;
  bus: Bus;
  logger: Logger;
  clock?: () => Date;
  maxPayloadBytes?: number;
  heartbeatIntervalMs?: number;
  staleAfterMissedHeartbeats?: number;
  restartGraceMs?: number;
  commandTimeoutMs?: number;
  usagePolicy?: UsagePolicy;
  batchMaxDelayMs?: number;
  /** Presence and hello updates of cluster rows are committed together at most this often (default 100 ms). */
  clusterWriteIntervalMs?: number;
  /** Keep this many change-log revisions per cluster; older ones are compacted hourly. */
  keepRevisions?: number;
  compactEveryMs?: number;
}

export interface SyncChannel {
  /** The store the API's services must use, so their committed changes reach the clusters at once. */
  store: Store;
  presence: PresenceTracker;
  dispatcher: DesiredDispatcher;
  commands: CommandClient;
  ingest: Ingest;
  /** The batched writer of cluster rows (presence, hello). */
  clusterWriter: ClusterWriter;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSyncChannel(options: SyncChannelOptions): SyncChannel {
  const clock = options.clock ?? (() => new Date());
  const log = options.logger.child({ adapter: "channel" });
  const clusterWriter = createClusterWriter({
    store: options.store,
    logger: log,
    ...(options.clusterWriteIntervalMs !== undefined ? { intervalMs: options.clusterWriteIntervalMs } : {}),
  });
  const presence = createPresenceTracker({
    store: options.store,
    logger: log,
    writer: clusterWriter,
    clock,
    ...(options.heartbeatIntervalMs ? { defaultHeartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    ...(options.staleAfterMissedHeartbeats
      ? { staleAfterMissedHeartbeats: options.staleAfterMissedHeartbeats }
      : {}),
    ...(options.restartGraceMs !== undefined ? { restartGraceMs: options.restartGraceMs } : {}),
  });
  const reachable = (clusterId: string) => {
    const state = presence.stateOf(clusterId);
    return state === "connected" || state === "stale";
  };
  const dispatcher = createDesiredDispatcher({
    store: options.store,
    bus: options.bus,
    logger: log,
    clock,
    isReachable: reachable,
    // With the embedded broker this is the only Manager and every append comes through `store` below (notify);
    // with an external broker there may be replicas, whose appends only the store knows of.
    heartbeatRecheckMs: options.bus.kind === "embedded" ? 60_000 : 0,
    ...(options.maxPayloadBytes ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
  });
  const commands = createCommandClient({
    bus: options.bus,
    logger: log,
    clock,
    ...(options.commandTimeoutMs ? { defaultTimeoutMs: options.commandTimeoutMs } : {}),
    availability: (clusterId) => ({ online: presence.stateOf(clusterId) === "connected", since: null }),
  });
  const ingest = createIngest({
    store: options.store,
    bus: options.bus,
    logger: log,
    presence,
    dispatcher,
    commands,
    clock,
    ...(options.maxPayloadBytes ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
    ...(options.usagePolicy ? { usagePolicy: options.usagePolicy } : {}),
    ...(options.batchMaxDelayMs !== undefined ? { batchMaxDelayMs: options.batchMaxDelayMs } : {}),
    onHello: async (clusterId, body) => {
      const versions: Record<string, string> = {
        operator: body.operatorVersion,
        ...(body.kubernetesVersion ? { kubernetes: body.kubernetesVersion } : {}),
      };
      // Batched with presence; a reconnect storm repeats the same hello, which changes nothing.
      await clusterWriter.patch(clusterId, (row) =>
        JSON.stringify(row.versions) === JSON.stringify(versions) &&
        JSON.stringify(row.capabilities) === JSON.stringify(body.capabilities)
          ? null
          : { versions, capabilities: body.capabilities },
      );
    },
  });
  const store = observeChangeLog(options.store, (clusterIds) => dispatcher.notify(clusterIds));
  let removeListener: (() => void) | null = null;
  let compactTimer: ReturnType<typeof setInterval> | null = null;

  return {
    store,
    presence,
    dispatcher,
    commands,
    ingest,
    clusterWriter,
    async start() {
      await presence.start();
      removeListener = options.bus.onEvent((event) => {
        // A closed socket is offline at once (DESIGN.md §3); the last will says the same for external brokers.
        if (event.type === "client-disconnected") presence.offline(event.clusterId, event.reason);
      });
      await ingest.start();
      const keep = options.keepRevisions ?? 10_000;
      compactTimer = setInterval(() => {
        dispatcher.compact(keep).catch((error) => log.warn("compaction failed", { err: error as Error }));
      }, options.compactEveryMs ?? 3_600_000);
    },
    async stop() {
      if (compactTimer) clearInterval(compactTimer);
      removeListener?.();
      await ingest.stop();
      await dispatcher.idle();
      await presence.stop();
      await clusterWriter.stop();
    },
  };
}
