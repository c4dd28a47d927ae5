/**
 * The channel end to end in one process, over the real embedded broker with mTLS and real operator links:
 * desired state in revision order, exactly-once reports with acks, snapshots, commands, presence.
 */
import { describe, expect, test } from "bun:test";
import { KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { makeEnvelope } from "../../shared/messages.ts";
import { createSyncWorld, waitFor } from "./fixtures.ts";

const metrics = (pods: number) => ({
  cpuRequestMillicores: 100 * pods,
  memoryRequestBytes: 2 ** 20 * pods,
  storageBytes: 0,
  loadBalancers: 0,
  pods,
  namespaces: 1,
  applications: 1,
  quotaViolations: 0,
});

// Counted from one hour read at load: an hour boundary between two calls must not give two offsets one window.
const BASE_HOUR = Math.floor(Date.now() / 3_600_000) * 3_600_000;
const hourAgo = (hours: number) => {
  const start = new Date(BASE_HOUR - hours * 3_600_000);
  return { windowStart: start.toISOString(), windowEnd: new Date(start.getTime() + 3_600_000).toISOString() };
};

describe("sync channel", () => {
  test("desired changes arrive in revision order: the backlog on hello, then every new commit", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      for (let i = 1; i <= 5; i++) {
        await world.store.changeLog.append(cluster.id, [
          { kind: "tenant", key: `t${i}`, op: "upsert", body: { i } },
        ]);
      }
      const operator = await world.operator(cluster.id);
      await waitFor("the backlog", () => operator.revision() === 5);
      // New changes committed through the channel's store view are pushed without waiting for a heartbeat.
      await world.channel.store.transaction(async (tx) => {
        await tx.changeLog.append(cluster.id, [{ kind: "app", key: "t1/web/a", op: "upsert", body: {} }]);
        await tx.changeLog.append(cluster.id, [{ kind: "app", key: "t1/web/b", op: "upsert", body: {} }]);
      });
      await waitFor("the new commits", () => operator.revision() === 7);
      expect(operator.applied.map((c) => c.revision)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      // A rolled-back transaction sends nothing.
      await world.channel.store
        .transaction(async (tx) => {
          await tx.changeLog.append(cluster.id, [{ kind: "tenant", key: "ghost", op: "upsert", body: {} }]);
          throw new Error("roll back");
        })
        .catch(() => undefined);
      await Bun.sleep(100);
      expect(operator.applied.some((c) => c.key === "ghost")).toBe(false);
      const status = await world.store.clusters.getById(cluster.id);
      expect(status?.status).toBe("connected");
      expect(status?.versions.operator).toBe("test");
      expect(status?.capabilities["core.oam.dev"]).toEqual(["v1beta1"]);
    } finally {
      await world.close();
    }
  });

  test("an operator behind the compacted log gets a snapshot; one ahead of the database too", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      for (let i = 1; i <= 6; i++) {
        await world.store.changeLog.append(cluster.id, [
          { kind: "tenant", key: `t${i}`, op: "upsert", body: {} },
        ]);
      }
      await world.store.changeLog.compact(cluster.id, 4);
      const behind = await world.operator(cluster.id, { revision: 2 });
      await waitFor("a snapshot", () => behind.snapshots.length >= 1);
      expect(behind.revision()).toBe(6);
      expect(behind.applied).toEqual([]);
      await behind.stop();

      const ahead = await world.operator(cluster.id, { revision: 99 });
      await waitFor(
        "a snapshot for a cluster ahead of the database",
        () => ahead.snapshots.length >= 1 && ahead.revision() === 6,
      );
      expect(ahead.revision()).toBe(6);
    } finally {
      await world.close();
    }
  });

  test("reports are committed once and acked; redelivered ones are counted as duplicates", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const operator = await world.operator(cluster.id);
      await waitFor("connection", () => operator.link.stats().connected);
      const ids = [1, 2, 3].map((hours) =>
        operator.link.report("usage", {
          tenant: "acme",
          ...hourAgo(hours),
          metrics: metrics(hours),
          byProject: {},
        }),
      );
      operator.link.report(
        "status",
        { objectKind: "app", key: "acme/web/site", observedGeneration: 2, phase: "Deployed", revision: 1 },
        { coalesceKey: "app/acme/web/site" },
      );
      operator.link.report("event", {
        type: "Warning",
        reason: "QuotaExceeded",
        message: "cpu",
        at: new Date().toISOString(),
        tenant: "acme",
        object: null,
      });
      await waitFor("acks for every report", () => operator.outbox.stats().pending === 0);
      const usage = await world.store.usage.list({ tenant: "acme" }, { limit: 10 });
      expect(usage.items.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect(usage.items.reduce((sum, r) => sum + r.metrics.pods, 0)).toBe(6);
      expect((await world.store.events.list({ tenant: "acme" }, { limit: 10 })).items).toHaveLength(1);
      const mirror = await world.store.statusMirror.get(cluster.id, "app", "acme/web/site");
      expect(mirror?.body.phase).toBe("Deployed");

      // The same envelope again (a re-publish after a lost ack): still one row, counted as a duplicate.
      const again = makeEnvelope({
        id: ids[0]!,
        kind: "usage",
        clusterId: cluster.id,
        body: { tenant: "acme", ...hourAgo(1), metrics: metrics(1), byProject: {} },
      });
      operator.outbox.enqueue({
        id: ids[0]!,
        channel: "usage",
        reportClass: "usage",
        payload: JSON.stringify(again),
      });
      await waitFor("the duplicate's ack", () => operator.outbox.stats().pending === 0);
      expect(world.channel.ingest.stats().duplicates).toBeGreaterThanOrEqual(1);
      expect((await world.store.usage.list({ tenant: "acme" }, { limit: 10 })).items).toHaveLength(3);
    } finally {
      await world.close();
    }
  });

  test("a backlog drains within the ack window: while acks are missing only the window is sent, then half of it again", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      // The Manager receives nothing (and so acks nothing) until ingest is started again.
      await world.channel.ingest.stop();
      const operator = await world.operator(cluster.id, { maxUnacked: 10, resendAfterMs: 400 });
      await waitFor("connection", () => operator.link.stats().connected);
      const ids = operator.link.reportMany(
        "usage",
        Array.from({ length: 50 }, (_, i) => ({
          body: { tenant: "acme", ...hourAgo(i + 1), metrics: metrics(1), byProject: {} },
        })),
      );
      expect(operator.outbox.stats().pending).toBe(50);
      await waitFor("the window sent", () => operator.link.stats().published === 10);
      await Bun.sleep(200);
      expect(operator.link.stats()).toMatchObject({ published: 10, unacked: 10 });
      // Unacked past resendAfterMs: the window halves and the oldest five go again, nothing beyond them.
      await waitFor("the window resent", () => operator.link.stats().published === 15);
      await Bun.sleep(100);
      expect(operator.link.stats()).toMatchObject({ published: 15, unacked: 5, unackedWindow: 5 });
      await world.channel.ingest.start();
      await waitFor("every report acked", () => operator.outbox.stats().pending === 0);
      // Acks grew the window back.
      expect(operator.link.stats().unackedWindow).toBeGreaterThan(5);
      const stored = await world.store.usage.list({ tenant: "acme" }, { limit: 100 });
      expect(stored.items.map((r) => r.id).sort()).toEqual([...ids].sort());
    } finally {
      await world.close();
    }
  });

  test("usage outside the acceptance window is quarantined with a reason; late usage becomes an adjustment", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const operator = await world.operator(cluster.id);
      const future = new Date(Date.now() + 3 * 3_600_000);
      operator.link.report("usage", {
        tenant: "acme",
        windowStart: future.toISOString(),
        windowEnd: new Date(future.getTime() + 3_600_000).toISOString(),
        metrics: metrics(1),
        byProject: {},
      });
      operator.link.report("usage", {
        tenant: "acme",
        ...hourAgo(24 * 40),
        metrics: metrics(1),
        byProject: {},
      });
      operator.link.report("usage", { tenant: "acme", ...hourAgo(72), metrics: metrics(2), byProject: {} });
      await waitFor("acks", () => operator.outbox.stats().pending === 0);
      const quarantined = await world.store.usageQuarantine.list({ clusterId: cluster.id }, { limit: 10 });
      expect(quarantined.items.map((q) => q.reason).sort()).toEqual(["future", "too_old"]);
      const rows = await world.store.usage.list({ tenant: "acme" }, { limit: 10 });
      expect(rows.items.map((r) => r.adjustment)).toEqual([true]);
      expect(world.channel.ingest.stats()).toMatchObject({ quarantined: 2, adjustments: 1 });
    } finally {
      await world.close();
    }
  });

  test("commands: a reply resolves the call; an unconnected cluster is refused with KN-503", async () => {
    const world = await createSyncWorld({ commandTimeoutMs: 3000 });
    try {
      const cluster = await world.addCluster("dc1");
      const offline = world.channel.commands.request({ id: cluster.id, name: "dc1" }, "issue-token", {});
      expect(offline).rejects.toMatchObject({ code: "KN-503" });
      const operator = await world.operator(cluster.id);
      await waitFor("connected", () => world.channel.presence.stateOf(cluster.id) === "connected");
      const result = await world.channel.commands.request({ id: cluster.id, name: "dc1" }, "issue-token", {
        role: "owner",
      });
      expect(result).toEqual({ name: "issue-token", args: { role: "owner" } });
      await waitFor("the reply's ack", () => operator.outbox.stats().pending === 0);
    } finally {
      await world.close();
    }
  });

  test("a command nobody answers times out with KN-504", async () => {
    const world = await createSyncWorld({ commandTimeoutMs: 300 });
    try {
      const cluster = await world.addCluster("dc1");
      // A bare client that connects (so presence says connected) but never answers commands.
      const identity = await world.pki.identity(cluster.id);
      const mqtt = (await import("mqtt")).default;
      const silent = mqtt.connect(`mqtts://127.0.0.1:${world.broker.port}`, {
        clientId: cluster.id,
        ca: world.pki.ca.certificatePem,
        cert: identity.certificatePem,
        key: identity.privateKeyPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      await new Promise((resolve) => silent.once("connect", resolve));
      const hello = makeEnvelope({
        id: uuidv7(),
        kind: "hello",
        clusterId: cluster.id,
        body: { operatorVersion: "x", lastAppliedRevision: 0, kubernetesVersion: null, capabilities: {} },
      });
      silent.publish(`kubenova/v1/clusters/${cluster.id}/hello`, JSON.stringify(hello), { qos: 1 });
      await waitFor("connected", () => world.channel.presence.stateOf(cluster.id) === "connected");
      const error = await world.channel.commands
        .request({ id: cluster.id, name: "dc1" }, "collect-usage", {})
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubeNovaError);
      expect((error as KubeNovaError).code).toBe("KN-504");
      expect((error as KubeNovaError).message).toContain("dc1");
      silent.end(true);
    } finally {
      await world.close();
    }
  });

  test("presence: connected on hello, offline at once when the operator stops, connected again on return", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const first = await world.operator(cluster.id);
      await waitFor(
        "connected",
        async () => (await world.store.clusters.getById(cluster.id))?.status === "connected",
      );
      await first.stop();
      await waitFor(
        "offline",
        async () => (await world.store.clusters.getById(cluster.id))?.status === "offline",
        5000,
      );
      const second = await world.operator(cluster.id);
      await waitFor(
        "connected again",
        async () => (await world.store.clusters.getById(cluster.id))?.status === "connected",
      );
      expect(second.link.stats().connected).toBe(true);
    } finally {
      await world.close();
    }
  });

  test("invalid payloads are counted and dropped without harming the connection", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const operator = await world.operator(cluster.id);
      await waitFor("connected", () => operator.link.stats().connected);
      const identity = await world.pki.identity(cluster.id);
      const mqtt = (await import("mqtt")).default;
      // Same identity would take the session over; use a second cluster's identity for the garbage.
      const other = await world.addCluster("dc2");
      const otherIdentity = await world.pki.identity(other.id);
      const hostile = mqtt.connect(`mqtts://127.0.0.1:${world.broker.port}`, {
        clientId: other.id,
        ca: world.pki.ca.certificatePem,
        cert: otherIdentity.certificatePem,
        key: otherIdentity.privateKeyPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      await new Promise((resolve) => hostile.once("connect", resolve));
      for (const payload of ["{", "null", JSON.stringify({ v: 9 }), "x".repeat(300 * 1024)]) {
        hostile.publish(`kubenova/v1/clusters/${other.id}/status`, payload, { qos: 1 });
      }
      await waitFor("rejections", () => {
        const r = world.channel.ingest.stats().rejected;
        return r.not_json + r.invalid >= 3;
      });
      operator.link.report("event", {
        type: "Normal",
        reason: "Still",
        message: "fine",
        at: new Date().toISOString(),
        tenant: null,
        object: null,
      });
      await waitFor("the healthy operator's ack", () => operator.outbox.stats().pending === 0);
      expect(identity.certificatePem).toContain("BEGIN CERTIFICATE");
      hostile.end(true);
    } finally {
      await world.close();
    }
  });

  test("status reports out of order: the mirror keeps the highest generation", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const operator = await world.operator(cluster.id);
      await waitFor("connected", () => operator.link.stats().connected);
      const report = (generation: number, phase: "Applying" | "Deployed") =>
        operator.link.report("status", {
          objectKind: "app",
          key: "acme/web/site",
          observedGeneration: generation,
          phase,
        });
      report(3, "Deployed");
      await waitFor(
        "the first status",
        async () => (await world.store.statusMirror.get(cluster.id, "app", "acme/web/site")) !== null,
      );
      report(1, "Applying"); // a late, older report
      report(2, "Applying");
      await waitFor("acks", () => operator.outbox.stats().pending === 0);
      const mirror = await world.store.statusMirror.get(cluster.id, "app", "acme/web/site");
      expect(mirror).toMatchObject({ observedGeneration: 3, body: { phase: "Deployed" } });
    } finally {
      await world.close();
    }
  });

  test("one report delivered three times — redelivery, a new packet id, after a reconnect — is one row", async () => {
    const world = await createSyncWorld();
    try {
      const cluster = await world.addCluster("dc1");
      const identity = await world.pki.identity(cluster.id);
      const mqtt = (await import("mqtt")).default;
      const connect = async () => {
        const client = mqtt.connect(`mqtts://127.0.0.1:${world.broker.port}`, {
          clientId: cluster.id,
          ca: world.pki.ca.certificatePem,
          cert: identity.certificatePem,
          key: identity.privateKeyPem,
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        await new Promise((resolve) => client.once("connect", resolve));
        return client;
      };
      const envelope = makeEnvelope({
        id: uuidv7(),
        kind: "usage",
        clusterId: cluster.id,
        body: { tenant: "acme", ...hourAgo(1), metrics: metrics(4), byProject: {} },
      });
      const topic = `kubenova/v1/clusters/${cluster.id}/usage`;
      const publish = (client: Awaited<ReturnType<typeof connect>>, options: { dup?: boolean }) =>
        new Promise<void>((resolve, reject) =>
          client.publish(topic, JSON.stringify(envelope), { qos: 1, ...options }, (error) =>
            error ? reject(error) : resolve(),
          ),
        );
      const first = await connect();
      await publish(first, {});
      await publish(first, { dup: true }); // MQTT redelivery (DUP flag)
      await publish(first, {}); // the operator re-publishing under a new packet id
      first.end(true);
      const second = await connect();
      await publish(second, {}); // again after a reconnect
      await waitFor(
        "four deliveries handled",
        () => world.channel.ingest.stats().committed + world.channel.ingest.stats().duplicates >= 4,
      );
      const rows = await world.store.usage.list({ tenant: "acme" }, { limit: 10 });
      expect(rows.items.map((r) => r.id)).toEqual([envelope.id]);
      expect(world.channel.ingest.stats()).toMatchObject({ committed: 1, duplicates: 3 });
      second.end(true);
    } finally {
      await world.close();
    }
  });

  test("a connection reset (no FIN, no last-will delay) is offline at once", async () => {
    const world = await createSyncWorld();
    const { startLossyProxy } = await import("../e2e/lossy-proxy.ts");
    const proxy = await startLossyProxy({
      targetPort: world.broker.port,
      delayMs: () => 0,
      stallChance: 0,
      stallMs: 0,
    });
    try {
      const cluster = await world.addCluster("dc1");
      const identity = await world.pki.identity(cluster.id);
      const mqtt = (await import("mqtt")).default;
      const client = mqtt.connect(`mqtts://127.0.0.1:${proxy.port}`, {
        clientId: cluster.id,
        ca: world.pki.ca.certificatePem,
        cert: identity.certificatePem,
        key: identity.privateKeyPem,
        protocolVersion: 4,
        reconnectPeriod: 0,
        clean: false, // a persistent session (as older operators and other MQTT clients may hold) with subscriptions to tear down
      });
      client.on("error", () => undefined);
      await new Promise((resolve) => client.once("connect", resolve));
      await new Promise((resolve) =>
        client.subscribe(`kubenova/v1/clusters/${cluster.id}/desired`, { qos: 1 }, resolve),
      );
      const hello = makeEnvelope({
        id: uuidv7(),
        kind: "hello",
        clusterId: cluster.id,
        body: { operatorVersion: "x", lastAppliedRevision: 0, kubernetesVersion: null, capabilities: {} },
      });
      client.publish(`kubenova/v1/clusters/${cluster.id}/hello`, JSON.stringify(hello), { qos: 1 });
      await waitFor("connected", () => world.channel.presence.stateOf(cluster.id) === "connected");
      proxy.reset();
      await waitFor(
        "offline after the reset",
        () => world.channel.presence.stateOf(cluster.id) === "offline",
        3000,
      );
      expect(world.broker.metrics.connections.active).toBe(0);
      client.end(true);
    } finally {
      proxy.heal();
      await proxy.close();
      await world.close();
    }
  });
});
