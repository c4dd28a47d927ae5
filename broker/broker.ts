/**
 * @module broker/broker — KubeNova's MQTT broker: Aedes 1.2 behind a mutual-TLS listener. Identity is the client
 * certificate's CN (= cluster id, DESIGN.md §4), the topic ACL comes from shared/topics.ts, and every refusal is
 * logged and counted. The same code runs embedded in the Manager and as `kubenova broker`.
 */
import { once } from "node:events";
import type tls from "node:tls";
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from "aedes";
import type { Logger } from "../shared/logger.ts";
import { CLUSTER_ID_PATTERN, operatorMayPublish } from "../shared/topics.ts";
import { type CompiledAcl, compileAcl, type Identity } from "./acl.ts";
import { type AdmissionMetrics, createMutualTlsListener, type HandshakeAdmission } from "./admission.ts";
import { createTokenBucket, type TokenBucket } from "./rate-limit.ts";
import { indexRetainedMessages } from "./retained.ts";

export interface BrokerLimits {
  /** Largest PUBLISH payload accepted; larger ones are dropped and counted (DESIGN.md §3). */
  maxPayloadBytes: number;
  /**
   * Largest packet read at all (its remaining length), default 2 × `maxPayloadBytes` + 64 KiB: a longer one is
   * a protocol error that closes the connection as soon as its fixed header is read, before any of the body is
   * buffered. Between the two a PUBLISH is read, acknowledged and dropped (an operator's outbox is not stuck).
   */
  maxPacketBytes?: number;
  /**
   * Largest CONNECT (default 8 KiB: a client id, a will, credentials) — the most an unauthenticated connection
   * can make the broker buffer; a first packet that is not CONNECT is refused at its first byte.
   */
  maxConnectBytes?: number;
  /** Sustained publishes per second per connection (token bucket); the excess is dropped and counted. */
  publishRatePerSecond: number;
  /** Bucket size; default one second's worth of `publishRatePerSecond`. */
  publishBurst?: number;
  /**
   * Sustained abuse: more than this many dropped publishes (any reason) within `abuseWindowMs` disconnects the
   * client. Default 10 × publishRatePerSecond.
   */
  abuseDropLimit?: number;
  abuseWindowMs?: number;
  /**
   * Handshake admission (broker/admission.ts), off unless `maxHandshakesInFlight` is set: at most that many TLS
   * handshakes in progress (64 measured well), the excess waits unread in a queue (default 32 × that) for at most
   * `handshakeQueueWaitMs` (default 4,000: inside an operator's 10 s connect timeout) and is closed before any
   * crypto beyond it. Off when unset here; the Manager and `kubenova broker` pass KUBENOVA_MQTT_MAX_HANDSHAKES
   * (default 64): without it a storm of 10,000 reconnecting operators collapsed (38,715 handshakes abandoned
   * past the operators' connect timeout). A held connection costs the same with it as without (the listener
   * pauses Bun's own TLS sockets until admitted; docs/benchmarks.md).
   */
  maxHandshakesInFlight?: number;
  maxQueuedHandshakes?: number;
  handshakeQueueWaitMs?: number;
  /** A handshake not finished within this is aborted (default 10,000), so a stalled client frees its slot. */
  handshakeTimeoutMs?: number;
}

export interface BrokerOptions {
  /** Address to bind; `port` 0 picks a free port (see `Broker.port`). */
  host: string;
  port: number;
  /** The cluster CA that signs operators' client certificates, and the broker's server certificate and key. */
  caPem: string;
  certPem: string;
  keyPem: string;
  /** The cluster exists and is not revoked (the Manager's store, or the revocation file of `kubenova broker`). */
  isClusterAllowed(clusterId: string): Promise<boolean>;
  /**
   * A certificate CN that gets the Manager's side of the ACL, for a Manager connecting as an external client
   * (`kubenova broker`). Its clientId must be this name or start with `<name>-` so replicas do not take each
   * other over. Null: no such client is accepted.
   */
  managerIdentity?: string | null;
  limits: BrokerLimits;
  logger: Logger;
  onClientConnected?(clusterId: string): void;
  onClientDisconnected?(clusterId: string, reason: DisconnectReason): void;
  /** Aedes tuning for tests; production keeps the defaults. */
  connectTimeoutMs?: number;
}

/** The header-time limits patches/mqtt-packet@9.0.2.patch adds to mqtt-packet's parser. */
interface PacketLimits {
  connectFirst: boolean;
  maxConnectLength: number;
  maxPacketLength: number;
}

/** Why a CONNECT was refused (each is logged with the identity and counted). */
export type RefusalReason =
  | "no-certificate"
  | "client-id-mismatch"
  | "not-a-cluster-identity"
  | "revoked"
  | "not-allowed"
  | "allow-check-failed";

/** Why a session ended, as reported to `onClientDisconnected`. */
export type DisconnectReason =
  | "client-disconnect"
  | "connection-lost"
  | "keepalive-timeout"
  | "takeover"
  | "revoked"
  | "abuse"
  | "certificate-expired"
  | "protocol-error"
  | "broker-closing";

export interface BrokerMetrics {
  connections: {
    accepted: number;
    refused: Record<RefusalReason, number>;
    /** Handshakes that failed before MQTT: no certificate, unknown CA, expired, self-signed, garbage. */
    tlsHandshakeFailures: number;
    /** Connections closed before any crypto by handshake admission (too many handshakes in progress). */
    handshakesShed: number;
    active: number;
    disconnected: Record<DisconnectReason, number>;
  };
  denials: {
    publishAcl: number;
    payloadTooLarge: number;
    rateLimited: number;
    subscribeAcl: number;
    forward: number;
  };
  /** Publishes acknowledged but not delivered (sum of the publish denials). */
  droppedPublishes: number;
  /** Second connections with the same identity that replaced the first (MQTT-3.1.4-2). */
  takeovers: number;
  clientErrors: number;
}

export interface ClientEventListener {
  connected?(clusterId: string): void;
  disconnected?(clusterId: string, reason: DisconnectReason): void;
}

export interface Broker {
  readonly host: string;
  /** The bound port (the real one when `options.port` was 0). */
  readonly port: number;
  /** The in-process Aedes instance, for the embedded Manager bus (no loopback client). */
  readonly aedes: Aedes;
  readonly metrics: BrokerMetrics;
  /** Handshake admission, live: handshakes in progress, connections waiting for a slot, connections shed. */
  readonly handshakes: Readonly<AdmissionMetrics>;
  /** Refuses the cluster from now on and disconnects its live session at once; true if one was kicked. */
  revoke(clusterId: string): boolean;
  /** Cluster ids with a live session. */
  connectedClusters(): string[];
  /** Extra listeners for connect/disconnect (the embedded bus); returns the remover. */
  addClientListener(listener: ClientEventListener): () => void;
  close(): Promise<void>;
}

interface Session {
  client: Client;
  identity: Identity;
  /** Decided once at connect: the per-packet checks are Set lookups. */
  acl: CompiledAcl;
  bucket: TokenBucket;
  windowStartMs: number;
  dropsInWindow: number;
  closeReason: DisconnectReason | null;
  /** When the client certificate expires (ms since the epoch); null once kicked for it, or without one. */
  validToMs: number | null;
}

/** Published-but-dropped packets are rerouted here: no client may subscribe to `$…` (ACL) and nothing listens. */
const DROPPED_TOPIC = "$kubenova/dropped";
/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
const NOT_AUTHORIZED = 5;
const SERVER_UNAVAILABLE = 3;
const MAX_TIMER_MS = 2 ** 31 - 1;

function emptyMetrics(): BrokerMetrics {
  return {
    connections: {
      accepted: 0,
      refused: {
        "no-certificate": 0,
        "client-id-mismatch": 0,
        "not-a-cluster-identity": 0,
        revoked: 0,
        "not-allowed": 0,
        "allow-check-failed": 0,
      },
      tlsHandshakeFailures: 0,
      handshakesShed: 0,
      active: 0,
      disconnected: {
        "client-disconnect": 0,
        "connection-lost": 0,
        "keepalive-timeout": 0,
        takeover: 0,
        revoked: 0,
        abuse: 0,
        "certificate-expired": 0,
        "protocol-error": 0,
        "broker-closing": 0,
      },
    },
    denials: { publishAcl: 0, payloadTooLarge: 0, rateLimited: 0, subscribeAcl: 0, forward: 0 },
    droppedPublishes: 0,
    takeovers: 0,
    clientErrors: 0,
  };
}

function authError(returnCode: number, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

function peerCertificate(client: Client): { commonName: string | null; validTo: Date | null } {
  const socket = client.conn as Partial<tls.TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function" || socket.authorized !== true) {
    return { commonName: null, validTo: null };
  }
  const cert = socket.getPeerCertificate();
  const cn = cert?.subject?.CN as unknown;
  // A certificate with several CNs has no single identity: refuse it like a missing one.
  const commonName = typeof cn === "string" && cn.length > 0 ? cn : null;
  const validTo = cert?.valid_to ? new Date(cert.valid_to) : null;
  return { commonName, validTo: validTo && !Number.isNaN(validTo.getTime()) ? validTo : null };
}

function describe(identity: Identity): string {
  return identity.kind === "operator" ? identity.clusterId : `manager:${identity.name}`;
}

/** Starts the broker: resolves once the TLS listener is bound. */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const log = options.logger.child({ adapter: "broker" });
  const metrics = emptyMetrics();
  const revoked = new Set<string>();
  const sessions = new Map<Client, Session>();
  /** The same sessions by clientId (several during a takeover), so a connect does not scan every session. */
  const sessionsById = new Map<string, Session[]>();
  const listeners = new Set<ClientEventListener>();
  if (options.onClientConnected || options.onClientDisconnected) {
    listeners.add({ connected: options.onClientConnected, disconnected: options.onClientDisconnected });
  }
  const managerIdentity = options.managerIdentity ?? null;
  const limits = {
    maxPayloadBytes: options.limits.maxPayloadBytes,
    maxPacketBytes: options.limits.maxPacketBytes ?? 2 * options.limits.maxPayloadBytes + 64 * 1024,
    maxConnectBytes: options.limits.maxConnectBytes ?? 8 * 1024,
    rate: options.limits.publishRatePerSecond,
    burst: options.limits.publishBurst ?? options.limits.publishRatePerSecond,
    abuseDropLimit: options.limits.abuseDropLimit ?? 10 * options.limits.publishRatePerSecond,
    abuseWindowMs: options.limits.abuseWindowMs ?? 10_000,
  };
  const maxHandshakesInFlight = options.limits.maxHandshakesInFlight ?? 0;
  const handshakeAdmission: HandshakeAdmission | null =
    maxHandshakesInFlight > 0
      ? {
          maxInFlight: maxHandshakesInFlight,
          maxQueued: options.limits.maxQueuedHandshakes ?? 32 * maxHandshakesInFlight,
          maxQueueWaitMs: options.limits.handshakeQueueWaitMs ?? 4_000,
          handshakeTimeoutMs: options.limits.handshakeTimeoutMs ?? 10_000,
        }
      : null;
  let closing = false;

  function emit(event: "connected" | "disconnected", clusterId: string, reason?: DisconnectReason): void {
    for (const listener of listeners) {
      try {
        if (event === "connected") listener.connected?.(clusterId);
        else listener.disconnected?.(clusterId, reason ?? "connection-lost");
      } catch (error) {
        log.error("client event listener threw", { cluster: clusterId, event, error });
      }
    }
  }

  function liveSessionsOf(clientId: string): Session[] {
    return (sessionsById.get(clientId) ?? []).filter((s) => !s.client.closed);
  }

  function addSession(session: Session): void {
    sessions.set(session.client, session);
    const same = sessionsById.get(session.client.id);
    if (same) same.push(session);
    else sessionsById.set(session.client.id, [session]);
  }

  function removeSession(session: Session): void {
    sessions.delete(session.client);
    const same = sessionsById.get(session.client.id);
    if (!same) return;
    const index = same.indexOf(session);
    if (index >= 0) same.splice(index, 1);
    if (same.length === 0) sessionsById.delete(session.client.id);
  }

  /**
   * A session ends with its socket. One shared listener (`this` is the socket; Aedes sets `conn.client`), not a
   * closure per connection: a closure over `authenticate`'s scope would also keep Aedes' whole CONNECT chain.
   */
  function onConnectionClose(this: { client?: Client }): void {
    const session = this.client ? sessions.get(this.client) : undefined;
    if (session) removeSession(session);
  }

  function kick(session: Session, reason: DisconnectReason): void {
    session.closeReason ??= reason;
    log.warn("disconnecting client", { cluster: describe(session.identity), reason });
    session.client.close();
  }

  function refuse(
    client: Client,
    reason: RefusalReason,
    fields: Record<string, unknown>,
    done: (error: Error & { returnCode: number }, success: null) => void,
  ): void {
    metrics.connections.refused[reason]++;
    log.warn("connection refused", { reason, client_id: client.id, ...fields });
    done(
      authError(reason === "allow-check-failed" ? SERVER_UNAVAILABLE : NOT_AUTHORIZED, "Not authorized"),
      null,
    );
  }

  // DESIGN.md §3 `certificate_expired`: a session must not outlive the certificate that opened it. One timer for
  // every session, armed for the earliest expiry (a timer per session cost ~500 bytes per connection).
  let expiryTimer: ReturnType<typeof setTimeout> | null = null;
  let expiryAtMs = Number.POSITIVE_INFINITY;

  function scheduleExpiry(atMs: number): void {
    if (atMs >= expiryAtMs) return;
    if (expiryTimer) clearTimeout(expiryTimer);
    expiryAtMs = atMs;
    expiryTimer = setTimeout(expireSessions, Math.min(Math.max(0, atMs - Date.now()), MAX_TIMER_MS));
    expiryTimer.unref?.();
  }

  function expireSessions(): void {
    expiryTimer = null;
    expiryAtMs = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const session of sessions.values()) {
      if (session.validToMs === null) continue;
      if (session.validToMs > now) {
        next = Math.min(next, session.validToMs);
        continue;
      }
      session.validToMs = null;
      kick(session, "certificate-expired");
    }
    if (next !== Number.POSITIVE_INFINITY && !closing) scheduleExpiry(next);
  }

  // Connect: the identity is the certificate, never the MQTT username/password (DESIGN.md §4).
  async function authenticate(
    client: Client,
    done: (error: (Error & { returnCode: number }) | null, success: boolean | null) => void,
  ): Promise<void> {
    const { commonName, validTo } = peerCertificate(client);
    if (commonName === null) return refuse(client, "no-certificate", {}, done);
    let identity: Identity;
    if (managerIdentity !== null && commonName === managerIdentity) {
      if (client.id !== managerIdentity && !client.id.startsWith(`${managerIdentity}-`)) {
        return refuse(client, "client-id-mismatch", { certificate_cn: commonName }, done);
      }
      identity = { kind: "manager", name: managerIdentity };
    } else {
      // DESIGN.md §4: clientId ≠ certificate CN is refused, so one certificate is one session.
      if (client.id !== commonName) {
        return refuse(client, "client-id-mismatch", { certificate_cn: commonName }, done);
      }
      if (!CLUSTER_ID_PATTERN.test(commonName)) {
        return refuse(client, "not-a-cluster-identity", { certificate_cn: commonName }, done);
      }
      if (revoked.has(commonName)) return refuse(client, "revoked", { cluster: commonName }, done);
      let allowed: boolean;
      try {
        allowed = await options.isClusterAllowed(commonName);
      } catch (error) {
        return refuse(client, "allow-check-failed", { cluster: commonName, error }, done);
      }
      // A revocation may have landed while the check was running.
      if (revoked.has(commonName)) return refuse(client, "revoked", { cluster: commonName }, done);
      if (!allowed) return refuse(client, "not-allowed", { cluster: commonName }, done);
      identity = { kind: "operator", clusterId: commonName };
    }
    if (closing) return done(authError(SERVER_UNAVAILABLE, "broker closing"), null);
    for (const previous of liveSessionsOf(client.id)) {
      // MQTT-3.1.4-2: the new connection wins; Aedes closes the old one when it registers this one.
      metrics.takeovers++;
      previous.closeReason ??= "takeover";
      log.warn("session takeover: a second connection with the same identity replaces the first", {
        cluster: describe(identity),
      });
    }
    const now = performance.now();
    const session: Session = {
      client,
      identity,
      acl: compileAcl(identity),
      bucket: createTokenBucket({ ratePerSecond: limits.rate, burst: limits.burst }),
      windowStartMs: now,
      dropsInWindow: 0,
      closeReason: null,
      validToMs: validTo === null ? null : validTo.getTime(),
    };
    addSession(session);
    client.conn.on("close", onConnectionClose);
    if (session.validToMs !== null) scheduleExpiry(session.validToMs);
    metrics.connections.accepted++;
    done(null, true);
  }

  /** Counts a dropped publish; true when the client has crossed the abuse threshold and must go. */
  function drop(session: Session, kind: keyof BrokerMetrics["denials"], packet: PublishPacket): boolean {
    metrics.denials[kind]++;
    metrics.droppedPublishes++;
    const now = performance.now();
    if (now - session.windowStartMs > limits.abuseWindowMs) {
      session.windowStartMs = now;
      session.dropsInWindow = 0;
    }
    session.dropsInWindow++;
    // Rate-limit drops are the expected symptom of a burst; log them at debug so a flood cannot flood the log.
    const fields = { cluster: describe(session.identity), topic: packet.topic, kind };
    if (kind === "rateLimited") log.debug("publish dropped", fields);
    else log.warn("publish dropped", { ...fields, bytes: packet.payload.length });
    // MQTT-3.3.5-2: an unauthorized PUBLISH is either acknowledged without delivery or the connection closed.
    // We acknowledge (so an operator's outbox is not stuck on one bad row) and reroute it to nowhere.
    packet.topic = DROPPED_TOPIC;
    packet.retain = false;
    packet.payload = Buffer.alloc(0);
    return session.dropsInWindow > limits.abuseDropLimit;
  }

  function authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void {
    if (client === null) {
      // A stale last will with no live client (Aedes `_clearWills`): the stored clientId is the identity.
      const clientId = (packet as PublishPacket & { clientId?: string }).clientId ?? "";
      callback(operatorMayPublish(clientId, packet.topic) ? null : new Error("will refused"));
      return;
    }
    const session = sessions.get(client);
    if (!session) {
      callback(new Error("not authenticated"));
      return;
    }
    // The last will (presence `offline`) is published while the client closes: ACL yes, rate limit no.
    const isWill = client.closed;
    let abusive = false;
    if (!session.acl.mayPublish(packet.topic)) abusive = drop(session, "publishAcl", packet);
    else if (packet.payload.length > limits.maxPayloadBytes)
      abusive = drop(session, "payloadTooLarge", packet);
    else if (!isWill && !session.bucket.take()) abusive = drop(session, "rateLimited", packet);
    if (abusive && !isWill) {
      session.closeReason ??= "abuse";
      log.warn("disconnecting client: sustained dropped publishes", {
        cluster: describe(session.identity),
        drops_in_window: session.dropsInWindow,
      });
      callback(new Error("publish abuse"));
      return;
    }
    callback(null);
  }

  function authorizeSubscribe(
    client: Client,
    subscription: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const session = sessions.get(client);
    if (session?.acl.maySubscribe(subscription.topic)) {
      // DESIGN.md §3: every channel is QoS 1; a QoS 2 request is granted QoS 1.
      callback(null, { ...subscription, qos: Math.min(subscription.qos, 1) as 0 | 1 });
      return;
    }
    metrics.denials.subscribeAcl++;
    log.warn("subscription refused", {
      cluster: session ? describe(session.identity) : client.id,
      filter: subscription.topic,
    });
    // A null subscription is a SUBACK failure (0x80, MQTT-3.9.3) and keeps the connection.
    callback(null, null);
  }

  function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const session = sessions.get(client);
    if (session?.acl.mayReceive(packet.topic)) return packet;
    metrics.denials.forward++;
    log.warn("delivery refused", {
      cluster: session ? describe(session.identity) : client.id,
      topic: packet.topic,
    });
    return null;
  }

  const aedes = await Aedes.createBroker({
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    preConnect: (_client, packet, callback) => {
      // The will's payload is a view into the socket's read chunk; Aedes keeps the will for the whole session,
      // so without a copy it keeps the whole CONNECT chunk too (~450 bytes per operator).
      if (packet.will?.payload) packet.will.payload = Buffer.from(packet.will.payload);
      callback(null, true);
    },
    authenticate: (client, _username, _password, done) => {
      authenticate(client, done).catch((error: unknown) => {
        log.error("authenticate failed", { client_id: client.id, error });
        done(authError(SERVER_UNAVAILABLE, "Server unavailable"), null);
      });
    },
    authorizePublish,
    authorizeSubscribe,
    authorizeForward,
  });
  if (!indexRetainedMessages((aedes as unknown as { persistence: unknown }).persistence)) {
    log.warn("retained messages not indexed: every subscribe scans all of them", {});
  }

  aedes.on("clientReady", (client) => {
    const session = sessions.get(client);
    if (!session) return;
    metrics.connections.active++;
    log.info("client connected", { cluster: describe(session.identity) });
    if (session.identity.kind === "operator") emit("connected", session.identity.clusterId);
  });
  /**
   * The end of a session, reported once. Aedes does not always reach `clientDisconnect` after a socket error
   * (a reset connection), so errors end the session here too — unless another connection has taken the
   * identity over meanwhile, in which case the cluster is still connected.
   */
  const ended = new WeakSet<Client>();
  function endSession(client: Client, fallback: DisconnectReason): void {
    const session = sessions.get(client);
    if (!session || ended.has(client)) return;
    const current = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[client.id];
    if (current && current !== client) return;
    ended.add(client);
    const reason: DisconnectReason =
      session.closeReason ??
      (closing
        ? "broker-closing"
        : (client as Client & { _disconnected?: boolean })._disconnected
          ? "client-disconnect"
          : fallback);
    metrics.connections.active = Math.max(0, metrics.connections.active - 1);
    metrics.connections.disconnected[reason]++;
    log.info("client disconnected", { cluster: describe(session.identity), reason });
    if (session.identity.kind === "operator") emit("disconnected", session.identity.clusterId, reason);
  }
  aedes.on("clientDisconnect", (client) => endSession(client, "connection-lost"));
  aedes.on("keepaliveTimeout", (client) => {
    const session = sessions.get(client);
    if (session) session.closeReason ??= "keepalive-timeout";
  });
  // Hostile or broken input ends that connection only; it is logged, never thrown (DESIGN.md §3).
  aedes.on("clientError", (client, error) => {
    metrics.clientErrors++;
    const session = sessions.get(client);
    // A reset or broken socket is a lost connection; anything else the client sent us is a protocol error.
    const lost = /ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|closed/i.test(error.message);
    if (session) session.closeReason ??= lost ? "connection-lost" : "protocol-error";
    log.warn("client error", { client_id: client.id, error: error.message });
    endSession(client, "connection-lost");
  });
  aedes.on("connectionError", (client, error) => {
    metrics.clientErrors++;
    log.debug("connection error before CONNECT completed", { client_id: client.id, error: error.message });
  });
  // Aedes emits `error` for persistence failures; without a listener EventEmitter would throw.
  (aedes as unknown as NodeJS.EventEmitter).on("error", (error: Error) =>
    log.error("broker internal error", { error }),
  );

  let shedLoggedAtMs = Number.NEGATIVE_INFINITY;
  const listener = createMutualTlsListener({
    caPem: options.caPem,
    certPem: options.certPem,
    keyPem: options.keyPem,
    admission: handshakeAdmission,
    onSecureConnection(socket) {
      socket.on("error", (error) => log.debug("socket error", { error: error.message }));
      // The limits of patches/mqtt-packet@9.0.2.patch, checked at each fixed header: a garbage first byte or a
      // claimed length past them ends the connection at once, where Aedes would wait (until the connect timeout
      // or keepalive) for a body that never comes, buffering what does.
      const parser = (aedes.handle(socket) as unknown as { _parser: PacketLimits })._parser;
      parser.connectFirst = true;
      parser.maxConnectLength = limits.maxConnectBytes;
      parser.maxPacketLength = limits.maxPacketBytes;
    },
    onHandshakeFailure(error, remote) {
      metrics.connections.tlsHandshakeFailures++;
      log.warn("TLS handshake refused", { error: error.message, remote });
    },
    onShed(reason) {
      metrics.connections.handshakesShed++;
      // A storm sheds thousands: one warning per 10 s with the running total, the rest at debug.
      const now = performance.now();
      if (now - shedLoggedAtMs < 10_000) {
        log.debug("connection shed before its TLS handshake", { reason });
        return;
      }
      shedLoggedAtMs = now;
      log.warn("connections shed before their TLS handshake: too many handshakes in progress", {
        reason,
        shed_total: metrics.connections.handshakesShed,
        max_in_flight: maxHandshakesInFlight,
      });
    },
  });
  const server = listener.server;
  server.on("error", (error) => log.error("broker listener error", { error }));
  server.listen(options.port, options.host);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([error]) => {
      throw error;
    }),
  ]);
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  log.info("broker listening", { host: options.host, port });

  return {
    host: options.host,
    port,
    aedes,
    metrics,
    handshakes: listener.metrics,
    revoke(clusterId) {
      revoked.add(clusterId);
      let kicked = false;
      for (const session of sessions.values()) {
        if (session.identity.kind === "operator" && session.identity.clusterId === clusterId) {
          kick(session, "revoked");
          kicked = true;
        }
      }
      log.warn("cluster revoked", { cluster: clusterId, kicked });
      return kicked;
    },
    connectedClusters() {
      const ids = new Set<string>();
      for (const session of sessions.values()) {
        if (session.identity.kind === "operator" && session.client.connected) {
          ids.add(session.identity.clusterId);
        }
      }
      return [...ids];
    },
    addClientListener(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closing) return;
      closing = true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      listener.destroyAll();
      if (expiryTimer) clearTimeout(expiryTimer);
      await serverClosed;
      log.info("broker closed", {});
    },
  };
}
