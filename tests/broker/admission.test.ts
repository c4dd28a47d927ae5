/** Handshake admission (broker/admission.ts): a cap on TLS handshakes in progress, the excess shed before crypto. */
import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { type Broker, createBroker } from "../../broker/broker.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { clusterId, endAll, makePki, type Pki, tryConnect, waitFor } from "./fixtures.ts";

const A = clusterId(1);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(limits: {
  handshakeQueueWaitMs?: number;
  maxQueuedHandshakes?: number;
  handshakeTimeoutMs?: number;
}) {
  const pki = await makePki();
  const logger = createMemoryLogger("debug");
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => id === A,
    limits: { maxPayloadBytes: 4096, publishRatePerSecond: 1000, maxHandshakesInFlight: 1, ...limits },
    logger,
  });
  cleanups.push(() => broker.close());
  return { pki, broker, logger };
}

/** A TCP connection that never sends a ClientHello: it holds a handshake slot until the handshake timeout. */
async function stalledClient(broker: Broker): Promise<net.Socket> {
  const socket = net.connect(broker.port, "127.0.0.1");
  socket.on("error", () => undefined);
  await new Promise((resolve) => socket.once("connect", resolve));
  cleanups.push(() => void socket.destroy());
  return socket;
}

async function operatorConnects(pki: Pki, broker: Broker, timeoutMs: number) {
  const outcome = await tryConnect({
    port: broker.port,
    caPem: pki.ca.certificatePem,
    identity: await pki.identity(A),
    clientId: A,
    timeoutMs,
  });
  cleanups.push(() => endAll(outcome.client));
  return outcome;
}

describe("broker: handshake admission", () => {
  test("a connection waiting past the queue wait is closed before any crypto, counted and logged", async () => {
    const { pki, broker, logger } = await start({ handshakeQueueWaitMs: 200, handshakeTimeoutMs: 1_500 });
    await stalledClient(broker); // takes the only slot
    await waitFor(() => broker.handshakes.inFlight === 1, 3_000, "stalled handshake in flight");
    const outcome = await operatorConnects(pki, broker, 4_000);
    // Queued behind the stalled handshake; when the slot frees (timeout) it has waited too long: shed, not served.
    expect(outcome.connected).toBe(false);
    expect(broker.metrics.connections.handshakesShed).toBe(1);
    expect(broker.metrics.connections.tlsHandshakeFailures).toBe(1); // the stalled one, by the handshake timeout
    expect(broker.metrics.connections.accepted).toBe(0);
    expect(
      logger.records.some((r) => String(r.msg).startsWith("connections shed before their TLS handshake")),
    ).toBe(true);
    // The slot is free again: the same operator now connects.
    const retry = await operatorConnects(pki, broker, 4_000);
    expect(retry.connected).toBe(true);
  });

  test("a connection beyond the queue bound is shed at once; a queued one is served when the slot frees", async () => {
    const { pki, broker } = await start({
      maxQueuedHandshakes: 1,
      handshakeQueueWaitMs: 5_000,
      handshakeTimeoutMs: 800,
    });
    await stalledClient(broker); // in flight
    await waitFor(() => broker.handshakes.inFlight === 1, 3_000, "stalled handshake in flight");
    await stalledClient(broker); // queued (the queue holds one)
    await waitFor(() => broker.handshakes.queued === 1, 3_000, "stalled handshake queued");
    const shedAtOnce = await operatorConnects(pki, broker, 3_000);
    expect(shedAtOnce.connected).toBe(false);
    expect(broker.metrics.connections.handshakesShed).toBe(1);
    // The first stalled handshake times out and the queued stalled one gets the slot; an operator arriving now is
    // queued behind it and served when that one times out too, well within its queue wait.
    await waitFor(
      () => broker.metrics.connections.tlsHandshakeFailures === 1,
      3_000,
      "first handshake timed out",
    );
    expect(broker.handshakes.inFlight).toBe(1);
    const served = await operatorConnects(pki, broker, 5_000);
    expect(served.connected).toBe(true);
    expect(broker.metrics.connections.tlsHandshakeFailures).toBe(2);
  });

  test("a connection that would wait past the queue wait is shed on arrival, not after waiting", async () => {
    // No queue wait at all: any learned handshake time is past it. (With 1 ms this took 3.0 s once, most likely
    // a loopback handshake learned at under 1 ms, so the connection queued until the stalled one timed out.)
    const { pki, broker, logger } = await start({ handshakeQueueWaitMs: 0, handshakeTimeoutMs: 3_000 });
    // One handshake teaches the listener how long one takes, and frees its slot.
    const first = await operatorConnects(pki, broker, 3_000);
    expect(first.connected).toBe(true);
    expect(broker.handshakes.inFlight).toBe(0);
    await endAll(first.client);
    await stalledClient(broker); // takes the only slot for 3 s
    await waitFor(() => broker.handshakes.inFlight === 1, 3_000, "stalled handshake in flight");
    const t0 = performance.now();
    const outcome = await operatorConnects(pki, broker, 5_000);
    expect(outcome.connected).toBe(false);
    // Closed at once — not queued until the stalled handshake times out (3 s) and shed only then.
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(broker.metrics.connections.handshakesShed).toBe(1);
    expect(broker.handshakes.queued).toBe(0);
    expect(
      logger.records.some(
        (r) =>
          String(r.msg).startsWith("connections shed before their TLS handshake") &&
          (r as { reason?: string }).reason === "expected-wait",
      ),
    ).toBe(true);
  });

  test("handshakes below the cap are not delayed and still require a verified certificate", async () => {
    const { pki, broker } = await start({});
    const ok = await operatorConnects(pki, broker, 3_000);
    expect(ok.connected).toBe(true);
    const anonymous = await tryConnect({
      port: broker.port,
      caPem: pki.ca.certificatePem,
      clientId: A,
      timeoutMs: 3_000,
    });
    cleanups.push(() => endAll(anonymous.client));
    expect(anonymous.connected).toBe(false);
    expect(broker.metrics.connections.tlsHandshakeFailures).toBe(1);
    expect(broker.metrics.connections.handshakesShed).toBe(0);
  });

  test("an admitted connection is the TLS server's own socket, with no plain socket kept beside it", async () => {
    const { pki, broker } = await start({});
    const ok = await operatorConnects(pki, broker, 3_000);
    expect(ok.connected).toBe(true);
    const clients = (broker.aedes as unknown as { clients: Record<string, { conn: object }> }).clients;
    const conn = clients[A]!.conn as { encrypted?: boolean; _parent?: unknown };
    // A TLSSocket wrapped around a net.Socket keeps it as `_parent` (~2.4 KB more per held connection).
    expect(conn.encrypted).toBe(true);
    expect(conn._parent ?? null).toBeNull();
    expect(broker.handshakes.inFlight).toBe(0);
  });
});
