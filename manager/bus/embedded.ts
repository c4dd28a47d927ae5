/**
 * @module manager/bus/embedded — the Bus over the in-process Aedes broker from `createBroker`: publishes go
 * straight into Aedes and subscriptions are Aedes listeners, with no loopback MQTT client. The Manager is
 * trusted in-process, so the broker's operator ACL does not apply to it (DESIGN.md §2 embedded broker).
 */
import type { AedesPublishPacket } from "aedes";
import type { Broker } from "../../broker/broker.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { type Bus, type BusEvent, type BusHandler, type Unsubscribe, toBytes, topicMatches } from "./bus.ts";
import { createDispatcher } from "./dispatch.ts";

type Deliver = (packet: AedesPublishPacket, callback: () => void) => void;

interface RetainedStore {
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
}

export function createEmbeddedBus(options: {
  broker: Broker;
  logger: Logger;
  maxPendingPerSubscription?: number;
}): Bus {
  const { broker } = options;
  const aedes = broker.aedes;
  const log = options.logger.child({ adapter: "bus-embedded" });
  const listeners = new Set<(event: BusEvent) => void>();
  const unsubscribers = new Set<Unsubscribe>();
  let closed = false;

  function emit(event: BusEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        log.error("bus event listener threw", { event: event.type, error });
      }
    }
  }

  const removeClientListener = broker.addClientListener({
    connected: (clusterId) => emit({ type: "client-connected", clusterId }),
    disconnected: (clusterId, reason) => emit({ type: "client-disconnected", clusterId, reason }),
  });

  function assertOpen(): void {
    if (closed) throw new KubeNovaError("KN-503", "bus is closed", { retryable: true });
  }

  return {
    kind: "embedded",
    publish(topic, payload, publishOptions) {
      assertOpen();
      return new Promise((resolve, reject) => {
        aedes.publish(
          {
            cmd: "publish",
            topic,
            payload: Buffer.from(toBytes(payload)),
            qos: publishOptions.qos,
            retain: publishOptions.retain ?? false,
            dup: false,
          },
          (error) => (error ? reject(error) : resolve()),
        );
      });
    },

    async subscribe(filter: string, handler: BusHandler) {
      assertOpen();
      const dispatcher = createDispatcher({
        filter,
        handler,
        logger: log,
        maxPending: options.maxPendingPerSubscription,
      });
      // Live messages wait until the retained ones are replayed, so a handler sees retained state first.
      let replaying = true;
      const held: Array<{ topic: string; payload: Uint8Array }> = [];
      const deliver: Deliver = (packet, callback) => {
        // Aedes `$SYS` traffic never matches a contract filter; guard anyway (MQTT-4.7.2-1).
        if (topicMatches(filter, packet.topic)) {
          const message = { topic: packet.topic, payload: new Uint8Array(packet.payload as Buffer) };
          if (replaying) held.push(message);
          else dispatcher.push(message.topic, message.payload);
        }
        // Acknowledge to Aedes at once: a slow handler must not stall delivery to operators.
        callback();
      };
      await new Promise<void>((resolve, reject) => {
        // Aedes passes an error (untyped) only for absurd filters (too many levels).
        const done = (error?: Error) => (error ? reject(error) : resolve());
        aedes.subscribe(filter, deliver, done as () => void);
      });
      const persistence = (aedes as unknown as { persistence: RetainedStore }).persistence;
      for await (const packet of persistence.createRetainedStream(filter)) {
        dispatcher.push(packet.topic, new Uint8Array(packet.payload));
      }
      replaying = false;
      for (const message of held.splice(0)) dispatcher.push(message.topic, message.payload);

      let active = true;
      const unsubscribe: Unsubscribe = async () => {
        if (!active) return;
        active = false;
        unsubscribers.delete(unsubscribe);
        dispatcher.stop();
        await new Promise<void>((resolve) => aedes.unsubscribe(filter, deliver, () => resolve()));
      };
      unsubscribers.add(unsubscribe);
      return unsubscribe;
    },

    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      if (closed) return;
      closed = true;
      removeClientListener();
      await Promise.all([...unsubscribers].map((unsubscribe) => unsubscribe()));
      listeners.clear();
    },
  };
}
