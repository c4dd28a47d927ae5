/** Presence with an injected clock: stale after missed heartbeats, no flapping, restart grace, expiry. */
import { describe, expect, test } from "bun:test";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store } from "../../manager/store/store.ts";
import { createPresenceTracker } from "../../manager/sync/presence.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { clusterRow } from "../support/rows.ts";

async function setup(status: "pending_bootstrap" | "connected" = "pending_bootstrap") {
  const logger = createMemoryLogger();
  const store = await openSqliteStore({ path: ":memory:", logger });
  await store.migrate();
  const { id } = await store.clusters.insert(clusterRow("dc1", { status }));
  let ms = Date.now();
  const clock = { now: () => new Date(ms), advance: (by: number) => (ms += by) };
  return { store, id, clock, logger };
}

const statusOf = async (store: Store, id: string) => (await store.clusters.getById(id))?.status;

describe("presence", () => {
  test("stale only after the configured missed heartbeats; one message brings it back; a lossy link never flaps", async () => {
    const { store, id, clock, logger } = await setup();
    const changes: string[] = [];
    const presence = createPresenceTracker({
      store,
      logger,
      clock: clock.now,
      restartGraceMs: 0,
      staleAfterMissedHeartbeats: 3,
      defaultHeartbeatIntervalMs: 1000,
      checkIntervalMs: 60_000,
      onChange: (_c, _from, to) => changes.push(to),
    });
    await presence.start();
    presence.seen(id, { heartbeatIntervalMs: 1000 });
    await presence.settled();
    expect(await statusOf(store, id)).toBe("connected");

    // A lossy link: every other heartbeat lost (2 s gaps) for a minute: still connected, no flapping.
    for (let i = 0; i < 30; i++) {
      clock.advance(2000);
      await presence.check();
      presence.seen(id);
    }
    expect(changes).toEqual(["connected"]);

    clock.advance(3001);
    await presence.check();
    await presence.settled();
    expect(await statusOf(store, id)).toBe("stale");
    presence.seen(id);
    await presence.settled();
    expect(await statusOf(store, id)).toBe("connected");
    expect(changes).toEqual(["connected", "stale", "connected"]);
    await presence.stop();
    await store.close();
  });

  test("a restarted Manager does not mark connected clusters stale within the grace period", async () => {
    const { store, id, clock, logger } = await setup("connected");
    const presence = createPresenceTracker({
      store,
      logger,
      clock: clock.now,
      restartGraceMs: 30_000,
      defaultHeartbeatIntervalMs: 1000,
      checkIntervalMs: 60_000,
    });
    await presence.start();
    clock.advance(20_000);
    await presence.check();
    expect(await statusOf(store, id)).toBe("connected");
    presence.seen(id); // it reconnected within the grace period
    clock.advance(15_000);
    await presence.check();
    await presence.settled();
    // Past the grace period and silent for 15 s (> 3 heartbeats): now it is stale.
    expect(await statusOf(store, id)).toBe("stale");
    await presence.stop();
    await store.close();
  });

  test("offline at once; certificate_expired when every certificate of the cluster has expired", async () => {
    const { store, id, clock, logger } = await setup();
    const presence = createPresenceTracker({
      store,
      logger,
      clock: clock.now,
      restartGraceMs: 0,
      checkIntervalMs: 60_000,
    });
    await presence.start();
    presence.seen(id);
    presence.offline(id, "connection lost");
    await presence.settled();
    expect(await statusOf(store, id)).toBe("offline");
    await store.clusterCertificates.insert({
      serial: "01",
      clusterId: id,
      fingerprint: "ab",
      notBefore: new Date(clock.now().getTime() - 7200_000).toISOString(),
      notAfter: new Date(clock.now().getTime() - 60_000).toISOString(),
      issuedAt: new Date(clock.now().getTime() - 7200_000).toISOString(),
      revokedAt: null,
    });
    presence.seen(id);
    presence.offline(id, "connection lost");
    await presence.settled();
    expect(await statusOf(store, id)).toBe("certificate_expired");
    expect(presence.counts()).toMatchObject({ certificate_expired: 1, connected: 0 });
    await presence.stop();
    await store.close();
  });

  test("a deleted cluster that disconnects is offline in memory too (no row to write)", async () => {
    const { store, id, clock, logger } = await setup();
    const presence = createPresenceTracker({ store, logger, clock: clock.now, restartGraceMs: 0 });
    await presence.start();
    presence.seen(id);
    await presence.settled();
    await store.clusters.delete("dc1");
    presence.offline(id, "revoked");
    await presence.settled();
    expect(presence.stateOf(id)).toBe("offline");
    expect(presence.counts()).toMatchObject({ connected: 0, offline: 1 });
    await presence.stop();
    await store.close();
  });
});
