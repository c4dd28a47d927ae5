/**
 * @module broker/admission — the broker's mutual-TLS listener with handshake admission control. A plain TCP
 * listener accepts; at most `maxInFlight` sockets are wrapped in a server-side TLSSocket (the crypto) at a time;
 * the excess waits, unread, in a bounded queue and is closed before any crypto when it has waited too long or the
 * queue is full. Without the cap a reconnect storm collapses: every handshake slows every other one past the
 * operators' connect timeout, the clients give up and the server's handshake work is wasted (docs/benchmarks.md,
 * reconnect storm: 5,109 failed handshakes for 2,500 operators).
 */
import net from "node:net";
import tls from "node:tls";

export interface HandshakeAdmission {
  /** Handshakes in progress at most. */
  maxInFlight: number;
  /** Connections waiting for a slot at most; a connection beyond this is closed unread at once. */
  maxQueued: number;
  /** A connection that waited longer than this for a slot is closed unread (its client is about to give up). */
  maxQueueWaitMs: number;
  /** A handshake not finished within this is aborted, so a stalled client cannot hold a slot. */
  handshakeTimeoutMs: number;
}

export interface AdmissionMetrics {
  /** Connections closed before any crypto: the queue was full or they waited past `maxQueueWaitMs`. */
  shed: number;
  inFlight: number;
  queued: number;
}

export interface MutualTlsListenerOptions {
  caPem: string;
  certPem: string;
  keyPem: string;
  /**
   * Null: Bun's own `tls.Server` does the handshakes with no cap (no admission control, and ~2.6 KB less per
   * connection: a wrapped TLSSocket keeps the plain socket beside it — 21.6 vs 19.0 KB per held connection,
   * measured under Bun 1.4.5).
   */
  admission: HandshakeAdmission | null;
  /** A verified client (requestCert + rejectUnauthorized against `caPem`): hand it to the protocol. */
  onSecureConnection(socket: tls.TLSSocket): void;
  /** A handshake that failed: no or bad certificate, garbage, a client hanging up, the handshake timeout. */
  onHandshakeFailure(error: Error, remoteAddress: string | undefined): void;
  /** A connection was shed (closed unread, counted in `metrics.shed`). */
  onShed(reason: "queue-full" | "queue-wait"): void;
}

export interface MutualTlsListener {
  readonly server: net.Server;
  readonly metrics: AdmissionMetrics;
  /** Closes every socket this listener still holds (queued, in handshake, or handed over). */
  destroyAll(): void;
}

interface Waiting {
  raw: net.Socket;
  sinceMs: number;
}

export function createMutualTlsListener(options: MutualTlsListenerOptions): MutualTlsListener {
  if (options.admission === null) return createUncappedListener(options);
  const admission: HandshakeAdmission = options.admission;
  // One context for every connection: a context per socket would repeat the CA and key parsing per handshake.
  const secureContext = tls.createSecureContext({
    ca: options.caPem,
    cert: options.certPem,
    key: options.keyPem,
    minVersion: "TLSv1.2",
  });
  const metrics: AdmissionMetrics = { shed: 0, inFlight: 0, queued: 0 };
  const sockets = new Set<net.Socket>();
  // A FIFO as an array with a moving head (shift() is O(n) on a long queue).
  let queue: Waiting[] = [];
  let head = 0;

  function shed(raw: net.Socket, reason: "queue-full" | "queue-wait"): void {
    metrics.shed++;
    raw.destroy();
    options.onShed(reason);
  }

  function release(): void {
    metrics.inFlight--;
    admitNext();
  }

  function admitNext(): void {
    const now = performance.now();
    while (metrics.inFlight < admission.maxInFlight && head < queue.length) {
      const waiting = queue[head]!;
      queue[head++] = undefined as unknown as Waiting;
      metrics.queued--;
      if (waiting.raw.destroyed) continue;
      if (now - waiting.sinceMs > admission.maxQueueWaitMs) {
        shed(waiting.raw, "queue-wait");
        continue;
      }
      handshake(waiting.raw);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  function handshake(raw: net.Socket): void {
    metrics.inFlight++;
    let settled = false;
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext,
      requestCert: true,
      rejectUnauthorized: true,
    });
    sockets.add(socket);
    const timer = setTimeout(() => {
      fail(new Error(`TLS handshake timed out after ${admission.handshakeTimeoutMs} ms`));
      socket.destroy();
    }, admission.handshakeTimeoutMs);
    timer.unref?.();
    function fail(error: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      release();
      options.onHandshakeFailure(error, raw.remoteAddress);
    }
    socket.once("secure", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      release();
      // rejectUnauthorized already refused an unverified peer; this is the second lock on the same door.
      if (!socket.authorized) {
        options.onHandshakeFailure(
          new Error(String(socket.authorizationError ?? "unauthorized")),
          raw.remoteAddress,
        );
        socket.destroy();
        return;
      }
      options.onSecureConnection(socket);
    });
    socket.on("error", (error) => fail(error));
    socket.once("close", () => {
      sockets.delete(socket);
      fail(new Error("connection closed during the TLS handshake"));
    });
  }

  const server = net.createServer((raw) => {
    raw.on("error", () => undefined); // reported through the TLSSocket once admitted; unread until then
    if (metrics.inFlight < admission.maxInFlight && head === queue.length) {
      handshake(raw);
      return;
    }
    if (metrics.queued >= admission.maxQueued) {
      shed(raw, "queue-full");
      return;
    }
    sockets.add(raw);
    raw.once("close", () => sockets.delete(raw));
    queue.push({ raw, sinceMs: performance.now() });
    metrics.queued++;
  });

  return {
    server,
    metrics,
    destroyAll() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}

/** Bun's tls.Server, every handshake started at once (see `admission: null`). */
function createUncappedListener(options: MutualTlsListenerOptions): MutualTlsListener {
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(
    {
      ca: options.caPem,
      cert: options.certPem,
      key: options.keyPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    },
    (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      options.onSecureConnection(socket);
    },
  );
  server.on("tlsClientError", (error, socket) => {
    options.onHandshakeFailure(error, socket?.remoteAddress);
    socket?.destroy();
  });
  return {
    server,
    metrics: { shed: 0, inFlight: 0, queued: 0 },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}
