/**
 * @module broker/admission — the broker's mutual-TLS listener with handshake admission control. At most
 * `maxInFlight` TLS handshakes (the crypto) run at a time; the excess waits, unread, in a bounded queue and is
 * closed before any crypto when it has waited too long or the queue is full. Without the cap a reconnect storm collapses: every handshake slows every other one past the
 * operators' connect timeout, the clients give up and the server's handshake work is wasted (docs/benchmarks.md,
 * reconnect storm: 5,109 failed handshakes for 2,500 operators).
 */
import type net from "node:net";
import tls from "node:tls";

export interface HandshakeAdmission {
  /** Handshakes in progress at most. */
  maxInFlight: number;
  /** Connections waiting for a slot at most; a connection beyond this is closed unread at once. */
  maxQueued: number;
  /**
   * A connection that waited longer than this for a slot is closed unread (its client is about to give up); one
   * that would wait longer than this — its place in the queue times the recent handshake rate — is closed at
   * once, so its client can retry elsewhere or later instead of waiting only to be shed.
   */
  maxQueueWaitMs: number;
  /** A handshake not finished within this is aborted, so a stalled client cannot hold a slot. */
  handshakeTimeoutMs: number;
}

export interface AdmissionMetrics {
  /**
   * Connections closed before any crypto: the queue was full, they waited past `maxQueueWaitMs`, or they would
   * have (expected wait at arrival).
   */
  shed: number;
  inFlight: number;
  queued: number;
}

export interface MutualTlsListenerOptions {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** Null: every handshake starts at once (no admission control). */
  admission: HandshakeAdmission | null;
  /** A verified client (requestCert + rejectUnauthorized against `caPem`): hand it to the protocol. */
  onSecureConnection(socket: tls.TLSSocket): void;
  /** A handshake that failed: no or bad certificate, garbage, a client hanging up, the handshake timeout. */
  onHandshakeFailure(error: Error, remoteAddress: string | undefined): void;
  /** A connection was shed (closed unread, counted in `metrics.shed`). */
  onShed(reason: ShedReason): void;
}

/** Why a connection was shed: queue full, waited too long, or would have waited too long (at arrival). */
export type ShedReason = "queue-full" | "queue-wait" | "expected-wait";

export interface MutualTlsListener {
  readonly server: net.Server;
  readonly metrics: AdmissionMetrics;
  /** Closes every socket this listener still holds (queued, in handshake, or handed over). */
  destroyAll(): void;
}

interface Waiting {
  socket: tls.TLSSocket;
  sinceMs: number;
}

/** A handshake in progress: when it was let in, and its deadline. */
interface InFlight {
  startedMs: number;
  timer: ReturnType<typeof setTimeout>;
}

/** The native socket under a Bun TLSSocket: pausing it stops its reads, and so its TLS handshake. */
type NativeHandle = { pause?(): void; resume?(): void } | null | undefined;
const handleOf = (socket: tls.TLSSocket) => (socket as unknown as { _handle?: NativeHandle })._handle;

/**
 * Bun's own `tls.Server` does the TLS. With admission, each new connection's native socket is paused at
 * `connection` — before it has read the ClientHello, so before any crypto — and resumed when it gets one of the
 * `maxInFlight` slots. (The first version wrapped a plain `net.Server`'s sockets in `new tls.TLSSocket`, which
 * keeps the plain socket and its streams beside the TLS one: ~1.5 KB of heap, ~2.4 KB of RSS per held
 * connection under Bun 1.4.5.)
 */
export function createMutualTlsListener(options: MutualTlsListenerOptions): MutualTlsListener {
  const admission = options.admission;
  const metrics: AdmissionMetrics = { shed: 0, inFlight: 0, queued: 0 };
  const sockets = new Set<tls.TLSSocket>();
  const inFlight = new Map<tls.TLSSocket, InFlight>();
  // A FIFO as an array with a moving head (shift() is O(n) on a long queue).
  let queue: Waiting[] = [];
  let head = 0;
  /**
   * Moving average of a successful handshake's duration (ms), null until the first. With the slots full the
   * listener completes `maxInFlight / handshakeMs` handshakes per ms (Little's law), so a newcomer behind
   * `queued` others waits about `queued * handshakeMs / maxInFlight`.
   */
  let handshakeMs: number | null = null;

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
      settle(socket, true);
      // rejectUnauthorized already refused an unverified peer; this is the second lock on the same door.
      if (!socket.authorized) {
        options.onHandshakeFailure(
          new Error(String(socket.authorizationError ?? "unauthorized")),
          socket.remoteAddress,
        );
        socket.destroy();
        return;
      }
      options.onSecureConnection(socket);
    },
  );
  server.on("tlsClientError", (error, socket) => {
    // Under admission a handshake is reported once: here, or by its close or timeout if those came first.
    if (admission === null || settle(socket, false)) options.onHandshakeFailure(error, socket?.remoteAddress);
    socket?.destroy();
  });
  server.on("connection", (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on("close", onClose);
    if (admission === null) return;
    socket.on("error", ignore); // a queued socket's errors end it; an admitted one's are the handshake's
    if (metrics.inFlight < admission.maxInFlight && head === queue.length) {
      start(socket);
      return;
    }
    handleOf(socket)?.pause?.();
    if (metrics.queued >= admission.maxQueued) return shed(socket, "queue-full");
    if (expectedWaitMs() > admission.maxQueueWaitMs) return shed(socket, "expected-wait");
    queue.push({ socket, sinceMs: performance.now() });
    metrics.queued++;
  });

  /** Shared by every socket (`this`): a held connection keeps no closure of this module. */
  function onClose(this: tls.TLSSocket): void {
    sockets.delete(this);
    if (settle(this, false)) {
      options.onHandshakeFailure(new Error("connection closed during the TLS handshake"), this.remoteAddress);
    }
  }

  function expectedWaitMs(): number {
    if (admission === null || handshakeMs === null) return 0;
    return ((metrics.queued + 1) * handshakeMs) / admission.maxInFlight;
  }

  function shed(socket: tls.TLSSocket, reason: ShedReason): void {
    metrics.shed++;
    socket.destroy();
    options.onShed(reason);
  }

  function start(socket: tls.TLSSocket): void {
    const limits = admission!;
    metrics.inFlight++;
    const timer = setTimeout(
      onHandshakeTimeout,
      limits.handshakeTimeoutMs,
      socket,
      limits.handshakeTimeoutMs,
    );
    timer.unref?.();
    inFlight.set(socket, { startedMs: performance.now(), timer });
    handleOf(socket)?.resume?.();
  }

  function onHandshakeTimeout(socket: tls.TLSSocket, timeoutMs: number): void {
    if (!settle(socket, false)) return;
    options.onHandshakeFailure(
      new Error(`TLS handshake timed out after ${timeoutMs} ms`),
      socket.remoteAddress,
    );
    socket.destroy();
  }

  /** Ends a handshake in progress and frees its slot; false if the socket holds none (already settled). */
  function settle(socket: tls.TLSSocket | null | undefined, succeeded: boolean): boolean {
    const handshake = socket ? inFlight.get(socket) : undefined;
    if (!socket || !handshake) return false;
    inFlight.delete(socket);
    clearTimeout(handshake.timer);
    socket.off("error", ignore);
    if (succeeded) {
      const tookMs = performance.now() - handshake.startedMs;
      handshakeMs = handshakeMs === null ? tookMs : handshakeMs + (tookMs - handshakeMs) * 0.05;
    }
    metrics.inFlight--;
    admitNext();
    return true;
  }

  function admitNext(): void {
    if (admission === null) return;
    const now = performance.now();
    while (metrics.inFlight < admission.maxInFlight && head < queue.length) {
      const waiting = queue[head]!;
      queue[head++] = undefined as unknown as Waiting;
      metrics.queued--;
      if (waiting.socket.destroyed) continue;
      if (now - waiting.sinceMs > admission.maxQueueWaitMs) {
        shed(waiting.socket, "queue-wait");
        continue;
      }
      start(waiting.socket);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  return {
    server,
    metrics,
    destroyAll() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
  };
}

function ignore(): void {}
