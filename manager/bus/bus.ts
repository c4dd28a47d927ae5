/**
 * @module manager/bus — the Manager's port to MQTT (DESIGN.md §2–§3): publish to operators, subscribe to their
 * reports, hear about connections. Two implementations: `embedded.ts` (the in-process Aedes broker) and
 * `external.ts` (mqtt.js to an existing broker such as Mosquitto or EMQX, with shared subscriptions).
 * The broker is transport only and may lose anything; durability lives in the store and the operator's outbox.
 */

export type BusQoS = 0 | 1;

export interface BusPublishOptions {
  qos: BusQoS;
  retain?: boolean;
}

/**
 * Receives one message. Calls for one subscription are serialized in arrival order; a rejected promise is
 * logged and the next message is delivered (a handler failure must never stop ingest).
 */
export type BusHandler = (topic: string, payload: Uint8Array) => void | Promise<void>;

export type Unsubscribe = () => Promise<void>;

/** Connection events: operators coming and going (embedded), or the Manager's own broker link (external). */
export type BusEvent =
  | { type: "client-connected"; clusterId: string }
  | { type: "client-disconnected"; clusterId: string; reason: string }
  | { type: "link-up" }
  | { type: "link-down"; reason: string };

export interface Bus {
  readonly kind: "embedded" | "external";
  /** Resolves when the broker has taken the message (QoS 1: PUBACK on external; routed on embedded). */
  publish(topic: string, payload: Uint8Array | string, options: BusPublishOptions): Promise<void>;
  /** Subscribes `filter` (a contract filter such as `managerSubscription("status")`); retained messages first. */
  subscribe(filter: string, handler: BusHandler): Promise<Unsubscribe>;
  /** Registers a connection-event listener; returns the remover. */
  onEvent(listener: (event: BusEvent) => void): () => void;
  close(): Promise<void>;
}

export { topicMatches } from "../../shared/topics.ts";

export function toBytes(payload: Uint8Array | string): Uint8Array {
  return typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
}
