/**
 * The broker's security contract over real mutual-TLS sockets with mqtt.js clients (DESIGN.md §4): who may
 * connect, subscribe, publish and receive, the limits, revocation and takeover. Every refusal is also counted.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import { type Broker, type BrokerOptions, createBroker } from "../../broker/broker.ts";
import type { Bus } from "../../manager/bus/bus.ts";
import { createEmbeddedBus } from "../../manager/bus/embedded.ts";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { managerSubscription, topicFor } from "../../shared/topics.ts";
import {
  clusterId,
  collect,
  connectOrFail,
  endAll,
  issueIdentity,
  makePki,
  type Pki,
  subackCode,
  tryConnect,
  waitFor,
} from "./fixtures.ts";
import { selfSignedIdentity } from "./self-signed.ts";

const A = clusterId(0xa);
const B = clusterId(0xb);

interface Harness {
  pki: Pki;
  broker: Broker;
  bus: Bus;
  logger: ReturnType<typeof createMemoryLogger>;
  allowed: Set<string>;
  events: string[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(overrides: Partial<BrokerOptions> = {}, pkiIn?: Pki): Promise<Harness> {
  const pki = pkiIn ?? (await makePki());
  const logger = createMemoryLogger("debug");
  const allowed = new Set([A, B]);
  const events: string[] = [];
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => allowed.has(id),
    limits: { maxPayloadBytes: 4096, publishRatePerSecond: 1000 },
    logger,
    onClientConnected: (id) => events.push(`connected ${id}`),
    onClientDisconnected: (id, reason) => events.push(`disconnected ${id} ${reason}`),
    ...overrides,
  });
  const bus = createEmbeddedBus({ broker, logger });
  cleanups.push(async () => {
    await bus.close();
    await broker.close();
  });
  return { pki, broker, bus, logger, allowed, events };
}

function track(...clients: MqttClient[]): void {
  cleanups.push(() => endAll(...clients));
}

async function operator(h: Harness, id: string): Promise<MqttClient> {
  const client = await connectOrFail({
    port: h.broker.port,
    caPem: h.pki.ca.certificatePem,
    identity: await h.pki.identity(id),
    clientId: id,
  });
  track(client);
  return client;
}

function logged(h: Harness, msg: string): Array<Record<string, unknown>> {
  return h.logger.records.filter((r) => r.msg === msg);
}

/** A raw mutual-TLS socket as `id` that reads (and keeps) what the broker sends; `closed` flips on close. */
async function rawSocket(h: Harness, id: string) {
  const tls = await import("node:tls");
  const identity = await h.pki.identity(id);
  const socket = tls.connect({
    host: "127.0.0.1",
    port: h.broker.port,
    ca: h.pki.ca.certificatePem,
    cert: identity.certificatePem,
    key: identity.privateKeyPem,
  });
  cleanups.push(async () => void socket.destroy());
  const state = { socket, closed: false, received: Buffer.alloc(0) };
  socket.on("error", () => {});
  socket.on("data", (data: Buffer) => {
    state.received = Buffer.concat([state.received, data]);
  });
  socket.on("close", () => {
    state.closed = true;
  });
  await new Promise((resolve) => socket.once("secureConnect", resolve));
  return state;
}

describe("broker: who may connect", () => {
  test("an enrolled operator connects, publishes to the Manager and receives its desired state", async () => {
    const h = await start();
    const got: Array<{ topic: string; payload: string }> = [];
    await h.bus.subscribe(managerSubscription("status"), (topic, payload) => {
      got.push({ topic, payload: new TextDecoder().decode(payload) });
    });
    const client = await operator(h, A);
    const received = collect(client);
    const granted = await client.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    await client.publishAsync(topicFor(A, "status"), '{"ok":true}', { qos: 1 });
    await waitFor(() => got.length === 1, 5000, "status at the Manager");
    expect(got[0]).toEqual({ topic: topicFor(A, "status"), payload: '{"ok":true}' });
    await h.bus.publish(topicFor(A, "desired"), '{"revision":1}', { qos: 1 });
    await waitFor(() => received.length === 1, 5000, "desired at the operator");
    expect(received[0]).toEqual({ topic: topicFor(A, "desired"), payload: '{"revision":1}' });
    expect(h.broker.metrics.connections.accepted).toBe(1);
    await waitFor(() => h.events.includes(`connected ${A}`), 2000, "onClientConnected");
    expect(h.broker.connectedClusters()).toEqual([A]);
  });

  test.each([
    ["no client certificate", "none"],
    ["a self-signed certificate", "self-signed"],
    ["a certificate from another CA", "other-ca"],
    ["an expired certificate", "expired"],
  ] as const)("%s is refused by the TLS handshake and counted", async (_name, kind) => {
    let clock = Date.now();
    const pki = await makePki(() => new Date(clock));
    const h = await start({}, pki);
    let identity: Awaited<ReturnType<Pki["identity"]>> | undefined;
    if (kind === "self-signed") identity = await selfSignedIdentity(A);
    if (kind === "other-ca") identity = await issueIdentity(await createCertificateAuthority(), A);
    if (kind === "expired") {
      clock = Date.now() - 30 * 86_400_000;
      identity = await pki.identity(A, 3600); // issued 30 days ago for one hour, by the trusted CA
      clock = Date.now();
    }
    // Control: the same broker accepts a valid identity, so the refusal below is about the certificate.
    const control = await operator(h, B);
    expect(control.connected).toBe(true);
    const outcome = await tryConnect({
      port: h.broker.port,
      caPem: pki.ca.certificatePem,
      identity,
      clientId: A,
    });
    track(outcome.client);
    expect(outcome.connected).toBe(false);
    await waitFor(() => h.broker.metrics.connections.tlsHandshakeFailures === 1, 3000, "TLS failure counted");
    expect(h.broker.metrics.connections.accepted).toBe(1); // the control only
    expect(logged(h, "TLS handshake refused").length).toBe(1);
  });

  test.each([
    ["a clientId that is not the certificate CN", A, B, "client-id-mismatch"],
    ["a cluster the Manager does not know (or revoked)", clusterId(0xc), clusterId(0xc), "not-allowed"],
    ["a certificate whose CN is not a cluster id", "admin", "admin", "not-a-cluster-identity"],
  ] as const)(
    "%s is refused with Not authorized, logged and counted",
    async (_name, cn, clientId, reason) => {
      const h = await start();
      const outcome = await tryConnect({
        port: h.broker.port,
        caPem: h.pki.ca.certificatePem,
        identity: await h.pki.identity(cn),
        clientId,
      });
      track(outcome.client);
      expect(outcome.connected).toBe(false);
      expect(outcome.connected ? "" : outcome.error).toMatch(/Not authorized/i);
      expect(h.broker.metrics.connections.refused[reason]).toBe(1);
      expect(logged(h, "connection refused").map((r) => r.reason)).toEqual([reason]);
      expect(h.broker.metrics.connections.accepted).toBe(0);
    },
  );

  test("revoke() kicks a live session at once and refuses it afterwards", async () => {
    const h = await start();
    const identity = await h.pki.identity(A);
    const client = await connectOrFail({
      port: h.broker.port,
      caPem: h.pki.ca.certificatePem,
      identity,
      clientId: A,
    });
    track(client);
    let closed = false;
    client.on("close", () => {
      closed = true;
    });
    await waitFor(() => h.broker.connectedClusters().includes(A), 2000, "session registered");
    expect(h.broker.revoke(A)).toBe(true);
    await waitFor(() => closed, 3000, "the client to be disconnected");
    await waitFor(() => h.events.includes(`disconnected ${A} revoked`), 2000, "disconnect reason");
    const again = await tryConnect({
      port: h.broker.port,
      caPem: h.pki.ca.certificatePem,
      identity,
      clientId: A,
    });
    track(again.client);
    expect(again.connected).toBe(false);
    expect(h.broker.metrics.connections.refused.revoked).toBe(1);
  });

  test("a second connection with the same identity takes over the first, and it is logged", async () => {
    const h = await start();
    const first = await operator(h, A);
    let firstClosed = false;
    first.on("close", () => {
      firstClosed = true;
    });
    const second = await operator(h, A);
    await waitFor(() => firstClosed, 3000, "the first session to be closed");
    expect(second.connected).toBe(true);
    expect(h.broker.metrics.takeovers).toBe(1);
    expect(
      logged(h, "session takeover: a second connection with the same identity replaces the first"),
    ).toHaveLength(1);
    await waitFor(() => h.events.includes(`disconnected ${A} takeover`), 2000, "takeover reason");
  });

  test("a session ends when its client certificate expires", async () => {
    const h = await start();
    const client = await connectOrFail({
      port: h.broker.port,
      caPem: h.pki.ca.certificatePem,
      identity: await h.pki.identity(A, 2),
      clientId: A,
    });
    track(client);
    await waitFor(() => h.events.includes(`disconnected ${A} certificate-expired`), 6000, "expiry kick");
  });

  test("sessions expire each at its own certificate's end (one timer for all of them)", async () => {
    const h = await start();
    const identities = { [A]: await h.pki.identity(A, 2), [B]: await h.pki.identity(B, 5) };
    for (const id of [A, B]) {
      track(
        await connectOrFail({
          port: h.broker.port,
          caPem: h.pki.ca.certificatePem,
          identity: identities[id],
          clientId: id,
        }),
      );
    }
    await waitFor(() => h.events.includes(`disconnected ${A} certificate-expired`), 6000, "A's expiry kick");
    expect(h.events.some((e) => e.startsWith(`disconnected ${B}`))).toBe(false);
    expect(h.broker.connectedClusters()).toEqual([B]);
    await waitFor(() => h.events.includes(`disconnected ${B} certificate-expired`), 8000, "B's expiry kick");
  }, 15_000); // B's certificate ends ~5 s after it is issued: the default 5 s test timeout raced it

  test("the last will is kept as its own bytes and is still published when the connection is lost", async () => {
    const h = await start();
    const wills: string[] = [];
    await h.bus.subscribe(managerSubscription("presence"), (_topic, payload) => {
      wills.push(new TextDecoder().decode(payload));
    });
    const client = await connectOrFail({
      port: h.broker.port,
      caPem: h.pki.ca.certificatePem,
      identity: await h.pki.identity(A),
      clientId: A,
      extra: {
        will: {
          topic: topicFor(A, "presence"),
          payload: Buffer.from('{"state":"offline"}'),
          qos: 1,
          retain: true,
        },
      },
    });
    const held = (h.broker.aedes as unknown as { clients: Record<string, { will: { payload: Buffer } }> })
      .clients[A]!;
    // Not a view into the CONNECT packet's read chunk, which the session would otherwise keep alive.
    expect(held.will.payload.buffer.byteLength).toBe(held.will.payload.length);
    (client as unknown as { stream: { destroy(): void } }).stream.destroy();
    await waitFor(() => wills.includes('{"state":"offline"}'), 5000, "the will");
  });
});

describe("broker: topic ACL", () => {
  test.each([
    ["#"],
    ["+/#"],
    ["$SYS/#"],
    ["kubenova/v1/clusters/+/desired"],
    ["kubenova/v1/clusters/#"],
    [topicFor(B, "desired")],
    [topicFor(A, "status")],
  ])("subscribing to %s gets SUBACK failure and receives nothing", async (filter) => {
    const h = await start();
    const hostile = await operator(h, A);
    const received = collect(hostile);
    expect(await subackCode(hostile, filter)).toBe(0x80);
    expect(h.broker.metrics.denials.subscribeAcl).toBe(1);
    expect(logged(h, "subscription refused")[0]?.filter).toBe(filter);
    // The connection stays usable: its own desired topic is granted, and a marker there proves ordering.
    await hostile.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
    await h.bus.publish(topicFor(B, "desired"), "for B", { qos: 1 });
    await h.bus.publish(topicFor(B, "commands"), "for B", { qos: 1 });
    await h.bus.publish(topicFor(A, "status"), "report", { qos: 1 });
    await h.bus.publish(topicFor(A, "desired"), "marker", { qos: 1 });
    await waitFor(() => received.some((m) => m.payload === "marker"), 3000, "the marker");
    expect(received).toEqual([{ topic: topicFor(A, "desired"), payload: "marker" }]);
  });

  test.each([
    ["another cluster's status", topicFor(B, "status")],
    ["a manager→operator topic", topicFor(A, "desired")],
    ["another cluster's desired", topicFor(B, "desired")],
    ["$SYS", "$SYS/broker/uptime"],
    ["outside the contract", "kubenova/v1/other"],
  ])("publishing to %s is dropped and counted", async (_name, topic) => {
    const h = await start();
    const seen: string[] = [];
    for (const channel of ["status", "desired"] as const) {
      await h.bus.subscribe(`kubenova/v1/clusters/+/${channel}`, (t) => {
        seen.push(t);
      });
    }
    const victim = await operator(h, B);
    const victimGot = collect(victim);
    await victim.subscribeAsync(topicFor(B, "desired"), { qos: 1 });
    const client = await operator(h, A);
    await client.publishAsync(topic, "forged", { qos: 1 });
    // The connection survives and its own traffic still flows, which also orders the assertions.
    await client.publishAsync(topicFor(A, "status"), "legit", { qos: 1 });
    await waitFor(() => seen.includes(topicFor(A, "status")), 3000, "the legitimate status");
    expect(seen).toEqual([topicFor(A, "status")]);
    expect(victimGot).toEqual([]);
    expect(h.broker.metrics.denials.publishAcl).toBe(1);
    expect(h.broker.metrics.droppedPublishes).toBe(1);
    expect(logged(h, "publish dropped")[0]).toMatchObject({ cluster: A, topic, kind: "publishAcl" });
  });

  test("an oversize payload is refused and counted; one at the limit passes", async () => {
    const h = await start({ limits: { maxPayloadBytes: 1024, publishRatePerSecond: 1000 } });
    const got: number[] = [];
    await h.bus.subscribe(managerSubscription("usage"), (_t, payload) => {
      got.push(payload.length);
    });
    const client = await operator(h, A);
    await client.publishAsync(topicFor(A, "usage"), Buffer.alloc(1025, 1), { qos: 1 });
    await client.publishAsync(topicFor(A, "usage"), Buffer.alloc(1024, 1), { qos: 1 });
    await waitFor(() => got.length === 1, 3000, "the in-limit payload");
    expect(got).toEqual([1024]);
    expect(h.broker.metrics.denials.payloadTooLarge).toBe(1);
  });

  test("publishes above the rate are dropped and counted; sustained abuse disconnects", async () => {
    const h = await start({
      limits: { maxPayloadBytes: 4096, publishRatePerSecond: 5, abuseDropLimit: 40, abuseWindowMs: 60_000 },
    });
    let delivered = 0;
    await h.bus.subscribe(managerSubscription("events"), () => {
      delivered++;
    });
    const client = await operator(h, A);
    let closed = false;
    client.on("close", () => {
      closed = true;
    });
    // 30 at once: the burst (5) plus at most a few refilled tokens pass, the rest are dropped, still connected.
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => client.publishAsync(topicFor(A, "events"), `e${i}`, { qos: 1 })),
    );
    await waitFor(() => delivered + h.broker.metrics.denials.rateLimited === 30, 3000, "all 30 accounted");
    expect(delivered).toBeGreaterThanOrEqual(5);
    expect(delivered).toBeLessThan(12);
    expect(h.broker.metrics.droppedPublishes).toBe(30 - delivered);
    expect(closed).toBe(false);
    // Keep flooding: past 40 drops in the window the broker disconnects the client.
    for (let i = 0; i < 40 && !closed; i++) client.publish(topicFor(A, "events"), "flood", { qos: 0 });
    await waitFor(() => closed, 3000, "the abusive client to be disconnected");
    await waitFor(() => h.events.includes(`disconnected ${A} abuse`), 2000, "abuse reason");
  });

  test("malformed bytes on a TLS connection end that connection only", async () => {
    const h = await start();
    const raw = await rawSocket(h, A);
    raw.socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01])); // CONNECT, invalid length
    await waitFor(() => raw.closed, 3000, "the broker to drop the garbage connection");
    const client = await operator(h, B);
    expect(client.connected).toBe(true);
  });
});

describe("broker: packets refused at their fixed header", () => {
  // Each test sends a header that claims a body and never sends it: without the header-time limits the broker
  // waits for the body (buffering whatever comes) until the connect timeout or keepalive, both far beyond 3 s.
  const patient = { connectTimeoutMs: 60_000 } as const;

  /** CONNECT (MQTT 3.1.1, clean session, keepalive 60 s) for client id `id`. */
  function connectPacket(id: string): Buffer {
    const clientId = Buffer.from(id);
    const body = Buffer.concat([
      Buffer.from([
        0,
        4,
        ...Buffer.from("MQTT"),
        4,
        0x02,
        0,
        60,
        clientId.length >> 8,
        clientId.length & 0xff,
      ]),
      clientId,
    ]);
    return Buffer.concat([Buffer.from([0x10, body.length]), body]);
  }

  test("a first packet that is not CONNECT is refused at its first byte", async () => {
    const h = await start(patient);
    const raw = await rawSocket(h, A);
    raw.socket.write(Buffer.from([0x30, 0xff, 0xff, 0x7f])); // PUBLISH claiming 2 MiB, nothing of it sent
    await waitFor(() => raw.closed, 3000, "the broker to close the connection");
    expect(raw.received.length).toBe(0); // no CONNACK: never a session
    expect(h.broker.metrics.connections.accepted).toBe(0);
    expect(logged(h, "connection error before CONNECT completed").map((r) => r.error)).toContain(
      "First packet must be CONNECT",
    );
  });

  test("a CONNECT longer than maxConnectBytes is refused at its header; one within connects", async () => {
    const h = await start({
      ...patient,
      limits: { maxPayloadBytes: 4096, publishRatePerSecond: 1000, maxConnectBytes: 512 },
    });
    const raw = await rawSocket(h, A);
    raw.socket.write(Buffer.from([0x10, 0x81, 0x04])); // CONNECT claiming 513 bytes
    await waitFor(() => raw.closed, 3000, "the broker to close the connection");
    expect(raw.received.length).toBe(0);
    expect(logged(h, "connection error before CONNECT completed").map((r) => r.error)).toContain(
      "Packet too large: connect of 513 bytes, limit 512",
    );
    const client = await operator(h, A);
    expect(client.connected).toBe(true);
  });

  test("after CONNECT a packet longer than maxPacketBytes ends the session at its header; a payload between the limits is acked and dropped", async () => {
    const h = await start({
      ...patient,
      limits: { maxPayloadBytes: 1024, maxPacketBytes: 4096, publishRatePerSecond: 1000 },
    });
    const raw = await rawSocket(h, A);
    raw.socket.write(connectPacket(A));
    await waitFor(() => raw.received.length >= 4, 3000, "CONNACK");
    expect([...raw.received.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x00]);
    // A QoS 1 PUBLISH with a 2,000-byte payload: over maxPayloadBytes, within maxPacketBytes → PUBACK, dropped.
    const topic = Buffer.from(topicFor(A, "usage"));
    const body = Buffer.concat([
      Buffer.from([topic.length >> 8, topic.length & 0xff]),
      topic,
      Buffer.from([0x00, 0x07]),
      Buffer.alloc(2000, 0x61),
    ]);
    raw.socket.write(
      Buffer.concat([Buffer.from([0x32, (body.length & 0x7f) | 0x80, body.length >> 7]), body]),
    );
    await waitFor(() => raw.received.length >= 8, 3000, "PUBACK");
    expect([...raw.received.subarray(4, 8)]).toEqual([0x40, 0x02, 0x00, 0x07]);
    expect(h.broker.metrics.denials.payloadTooLarge).toBe(1);
    expect(raw.closed).toBe(false);
    raw.socket.write(Buffer.from([0x32, 0x81, 0x20])); // a PUBLISH claiming 4,097 bytes, nothing of it sent
    await waitFor(() => raw.closed, 3000, "the broker to close the session");
    await waitFor(() => h.events.includes(`disconnected ${A} protocol-error`), 2000, "protocol-error reason");
    expect(logged(h, "client error").map((r) => r.error)).toContain(
      "Packet too large: publish of 4097 bytes, limit 4096",
    );
  });
});

describe("broker: the Manager's identity as an external client", () => {
  test("may read every cluster's reports and write desired state, but never act as an operator", async () => {
    const h = await start({ managerIdentity: "kubenova-manager" });
    const manager = await connectOrFail({
      port: h.broker.port,
      caPem: h.pki.ca.certificatePem,
      identity: await h.pki.identity("kubenova-manager"),
      clientId: "kubenova-manager-replica-1",
    });
    track(manager);
    expect(await subackCode(manager, "#")).toBe(0x80);
    expect(await subackCode(manager, topicFor(A, "desired"))).toBe(0x80);
    expect(await subackCode(manager, managerSubscription("status"))).toBe(1);
    const got = collect(manager);
    const a = await operator(h, A);
    const atA = collect(a);
    await a.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
    await a.publishAsync(topicFor(A, "status"), "s", { qos: 1 });
    await manager.publishAsync(topicFor(A, "status"), "forged", { qos: 1 }); // an operator→manager topic: dropped
    await manager.publishAsync(topicFor(A, "desired"), "d", { qos: 1 });
    await waitFor(() => got.length === 1 && atA.length === 1, 3000, "both deliveries");
    expect(got).toEqual([{ topic: topicFor(A, "status"), payload: "s" }]);
    expect(atA).toEqual([{ topic: topicFor(A, "desired"), payload: "d" }]);
    expect(h.broker.metrics.denials.publishAcl).toBe(1);
  });
});
