/**
 * The operator link's reconnect when the Manager is up but shedding handshakes (broker/admission.ts closes the
 * excess before TLS): retried soon with jitter (`busyRetry`), not after the refusal backoff — which a Manager that
 * is down still gets, bounded by how long it has been down.
 */
import "reflect-metadata";
import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { createBroker } from "../../broker/broker.ts";
import { backoffDelay, createOperatorLink, type OperatorLink } from "../../operator/link/link.ts";
import { openOutbox } from "../../operator/link/outbox.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { clusterId, makePki } from "../broker/fixtures.ts";
import { waitFor } from "../sync/fixtures.ts";

const A = clusterId(7);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A TCP front for the broker that sheds the first `reset` connections as handshake admission does — the
 * ClientHello left unread, the socket destroyed (the client sees a reset, then its CONNECT fails on the closed
 * socket) — and forwards the rest.
 */
async function front(brokerPort: number, reset: number, port = 0) {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => undefined);
    if (accepted <= reset) {
      socket.pause();
      setTimeout(() => socket.destroy(), 20);
      return;
    }
    const upstream = net.connect(brokerPort, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

async function world() {
  const pki = await makePki();
  const logger = createMemoryLogger("info");
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async (id) => id === A,
    limits: { maxPayloadBytes: 64 * 1024, publishRatePerSecond: 1000 },
    logger,
  });
  cleanups.push(() => broker.close());
  const identity = await pki.identity(A);
  const link = (port: number): OperatorLink => {
    const outbox = openOutbox({ path: ":memory:", maxRows: 100 });
    const created = createOperatorLink({
      clusterId: A,
      brokerUrl: `mqtts://127.0.0.1:${port}`,
      tls: () => ({
        caPem: pki.ca.certificatePem,
        certPem: identity.certificatePem,
        keyPem: identity.privateKeyPem,
      }),
      outbox,
      applier: { apply: async () => undefined, applySnapshot: async () => undefined },
      revisions: { get: async () => 0, set: async () => undefined },
      commands: async () => ({ ok: true }),
      hello: async () => ({ operatorVersion: "test", kubernetesVersion: null, capabilities: {} }),
      logger,
      // A refused or failed connection waits ~59 s: only the busy path can reconnect within the test.
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      busyRetry: { initialMs: 100, maxMs: 200 },
      random: () => 0.99,
    });
    cleanups.push(async () => {
      await created.stop();
      outbox.close();
    });
    return created;
  };
  return { broker, link, logger };
}

describe("operator link: busy Manager", () => {
  test("connections closed before the TLS handshake are retried within busyRetry, then it connects", async () => {
    const { broker, link } = await world();
    const shedding = await front(broker.port, 3);
    const operator = link(shedding.port);
    const t0 = performance.now();
    operator.start();
    await waitFor("connected through the front", () => operator.stats().connected, 5_000);
    expect(shedding.accepted()).toBe(4); // three reset before TLS, the fourth served
    // 3 busy retries of at most 99 + 198 + 198 ms: far below the 59 s a refusal would wait.
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(operator.stats().connects).toBe(1);
  });

  test("a refused connection (the Manager is down) keeps the refusal backoff", async () => {
    const { broker, link } = await world();
    // A port nothing listens on yet: the first attempt is refused (no TCP accept).
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const operator = link(port);
    operator.start();
    await Bun.sleep(200);
    const up = await front(broker.port, 0, port); // the Manager is back
    await Bun.sleep(1_000);
    // The refusal scheduled the next attempt ~59 s out: nothing reached the front yet.
    expect(up.accepted()).toBe(0);
    expect(operator.stats().connected).toBe(false);
  });

  test("the refusal backoff never waits longer than the outage so far, and still reaches its cap", () => {
    const almostOne = () => 0.999;
    // Five quick refusals within a 1.2 s outage: the ladder says up to 16 s, the outage says 1.2 s.
    expect(backoffDelay(5, 500, 30_000, almostOne, 1_200)).toBeLessThan(1_200);
    expect(backoffDelay(5, 500, 30_000, almostOne, 1_200)).toBeGreaterThan(1_100);
    // Just down: the first retry's window is initialMs, as before.
    expect(backoffDelay(0, 500, 30_000, almostOne, 0)).toBe(499);
    // A long outage: the ladder and maxMs decide.
    expect(backoffDelay(3, 500, 30_000, almostOne, 600_000)).toBe(3_996);
    expect(backoffDelay(20, 500, 30_000, almostOne, 600_000)).toBe(29_970);
  });
});
