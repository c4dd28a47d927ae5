/**
 * @module manager/bus/external — the Bus over an existing broker (Mosquitto, EMQX, VerneMQ, HiveMQ, or
 * `kubenova broker`) through mqtt.js, authenticated by the Manager's client certificate (DESIGN.md §2
 * scale-out). The only file in manager/ that imports `mqtt`.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { type Bus, type BusEvent, type BusHandler, toBytes, topicMatches } from "./bus.ts";
import { createDispatcher, type Dispatcher } from "./dispatch.ts";

export interface ExternalBusOptions {
  /** `mqtts://host:port` (config `mqtt.externalUrl`). */
  url: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  /**
   * MQTT clientId. Mosquitto with `use_identity_as_username` accepts any; `kubenova broker` requires the
   * certificate CN or `<CN>-<suffix>`. Give each replica its own (e.g. `kubenova-manager-<hostname>`).
   */
  clientId: string;
  /** 5 (default) for shared subscriptions; 4 for MQTT 3.1.1-only brokers such as `kubenova broker` (Aedes). */
  protocolVersion?: 4 | 5;
  /**
   * MQTT 5 shared-subscription group: subscriptions become `$share/<group>/<filter>`, so N Manager replicas split
   * the load and each message reaches exactly one of them. Null disables (every replica gets everything).
   * Default `kubenova` with MQTT 5, null with MQTT 3.1.1.
   */
  sharedGroup?: string | null;
  /**
   * QoS 1 publishes awaiting PUBACK at once, and the receive maximum advertised to the broker. Small on purpose:
   * Mosquitto 2.0.11 stalls on QoS 1 over TLS with hundreds in flight (NOTES.md; fixed in 2.0.13).
   */
  inflightWindow?: number;
  /** Reconnect backoff: doubles from `minMs` to `maxMs`, with ±50% jitter against reconnect stampedes (§7). */
  reconnect?: { minMs?: number; maxMs?: number };
  connectTimeoutMs?: number;
  keepaliveSeconds?: number;
  logger: Logger;
  maxPendingPerSubscription?: number;
}

interface Entry {
  filter: string;
  dispatcher: Dispatcher;
}

/** Connects (resolves on the first CONNACK, or rejects after `connectTimeoutMs`) and returns the bus. */
export async function createExternalBus(options: ExternalBusOptions): Promise<Bus> {
  const log = options.logger.child({ adapter: "bus-external" });
  const protocolVersion = options.protocolVersion ?? 5;
  const sharedGroup =
    options.sharedGroup === undefined ? (protocolVersion === 5 ? "kubenova" : null) : options.sharedGroup;
  if (sharedGroup !== null && protocolVersion !== 5) {
    throw new KubeNovaError("KN-400", "shared subscriptions need MQTT 5 (protocolVersion 5)");
  }
  const window = Math.max(1, options.inflightWindow ?? 16);
  const minBackoffMs = options.reconnect?.minMs ?? 500;
  const maxBackoffMs = options.reconnect?.maxMs ?? 30_000;
  const listeners = new Set<(event: BusEvent) => void>();
  const entries = new Set<Entry>();
  let attempts = 0;
  let linkUp = false;
  let closed = false;

  const clientOptions: IClientOptions = {
    clientId: options.clientId,
    protocolVersion,
    ca: options.caPem,
    cert: options.certPem,
    key: options.keyPem,
    rejectUnauthorized: true,
    clean: true,
    keepalive: options.keepaliveSeconds ?? 30,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    reconnectPeriod: minBackoffMs,
    resubscribe: true,
    ...(protocolVersion === 5 ? { properties: { receiveMaximum: window } } : {}),
  };
  const client: MqttClient = mqtt.connect(options.url, clientOptions);

  function emit(event: BusEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        log.error("bus event listener threw", { event: event.type, error });
      }
    }
  }

  client.on("connect", () => {
    attempts = 0;
    client.options.reconnectPeriod = minBackoffMs;
    if (!linkUp) {
      linkUp = true;
      log.info("broker link up", { url: options.url });
      emit({ type: "link-up" });
    }
  });
  client.on("close", () => {
    if (closed) return;
    // mqtt.js reads `reconnectPeriod` each time it schedules a reconnect: exponential backoff with jitter.
    attempts++;
    const base = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(attempts - 1, 16));
    client.options.reconnectPeriod = Math.round(base * (0.5 + Math.random()));
    if (linkUp) {
      linkUp = false;
      log.warn("broker link down", { url: options.url });
      emit({ type: "link-down", reason: "connection closed" });
    }
  });
  client.on("error", (error) => log.warn("broker link error", { url: options.url, error: error.message }));
  client.on("message", (topic, payload) => {
    const bytes = new Uint8Array(payload);
    for (const entry of entries) {
      if (topicMatches(entry.filter, topic)) entry.dispatcher.push(topic, bytes);
    }
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      client.end(true);
      reject(new KubeNovaError("KN-503", `could not connect to the MQTT broker at ${options.url}`));
    }, options.connectTimeoutMs ?? 10_000);
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off("connect", onConnect);
    };
    client.on("connect", onConnect);
  });

  // A counting semaphore over QoS 1 publishes (see `inflightWindow`).
  let inflight = 0;
  const waiting: Array<() => void> = [];
  async function acquire(): Promise<void> {
    if (inflight < window) {
      inflight++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else inflight--;
  }

  const wireFilter = (filter: string) => (sharedGroup === null ? filter : `$share/${sharedGroup}/${filter}`);

  return {
    kind: "external",
    async publish(topic, payload, publishOptions) {
      if (closed) throw new KubeNovaError("KN-503", "bus is closed", { retryable: true });
      const bytes = Buffer.from(toBytes(payload));
      const opts = { qos: publishOptions.qos, retain: publishOptions.retain ?? false };
      if (publishOptions.qos === 0) {
        await client.publishAsync(topic, bytes, opts);
        return;
      }
      await acquire();
      try {
        await client.publishAsync(topic, bytes, opts);
      } finally {
        release();
      }
    },

    async subscribe(filter: string, handler: BusHandler) {
      if (closed) throw new KubeNovaError("KN-503", "bus is closed", { retryable: true });
      const entry: Entry = {
        filter,
        dispatcher: createDispatcher({
          filter,
          handler,
          logger: log,
          maxPending: options.maxPendingPerSubscription,
        }),
      };
      entries.add(entry);
      const granted = await client.subscribeAsync(wireFilter(filter), { qos: 1 }).catch((error: unknown) => {
        entries.delete(entry);
        throw error;
      });
      const refused = granted.find((g) => g.qos >= 0x80);
      if (refused) {
        entries.delete(entry);
        throw new KubeNovaError("KN-403", `the broker refused the subscription ${filter}`, {
          context: { filter: wireFilter(filter), reasonCode: refused.qos },
        });
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        entries.delete(entry);
        entry.dispatcher.stop();
        if (![...entries].some((other) => other.filter === filter) && client.connected) {
          await client.unsubscribeAsync(wireFilter(filter));
        }
      };
    },

    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const entry of entries) entry.dispatcher.stop();
      entries.clear();
      await client.endAsync();
      listeners.clear();
    },
  };
}
