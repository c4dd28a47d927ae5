/**
 * @module broker/retained — retained messages indexed by topic. Aedes' in-memory persistence answers every
 * SUBSCRIBE by testing each retained topic against each filter, so with one retained `presence` per cluster
 * (DESIGN.md §3) every operator's subscribe scanned every cluster's presence: O(clusters) per connect and
 * O(clusters²) for a reconnect storm. Operators subscribe to exact topics only (their own manager→operator
 * channels, ACL in shared/topics.ts), which this index answers with one map lookup; wildcard filters (the
 * Manager's `kubenova/v1/clusters/+/presence`, once at start) still scan.
 */
import type { Readable } from "node:stream";
import { topicMatches } from "../shared/topics.ts";

interface RetainedPacket {
  cmd?: string;
  topic: string;
  payload: Buffer | Uint8Array;
  qos?: number;
  retain?: boolean;
  properties?: unknown;
}

/** The methods of aedes-persistence's in-memory implementation that hold retained messages. */
interface RetainedMethods {
  storeRetained(packet: RetainedPacket): Promise<void>;
  createRetainedStream(pattern: string): Iterable<RetainedPacket> | Readable;
  createRetainedStreamCombi(patterns: string[]): Iterable<RetainedPacket> | Readable;
}

const hasWildcard = (filter: string) => filter.includes("+") || filter.includes("#");

function* matching(retained: Map<string, RetainedPacket>, patterns: string[]): Generator<RetainedPacket> {
  for (const pattern of patterns) {
    if (!hasWildcard(pattern)) {
      const packet = retained.get(pattern);
      if (packet) yield packet;
      continue;
    }
    for (const [topic, packet] of retained) if (topicMatches(pattern, topic)) yield packet;
  }
}

/**
 * What Aedes reads back from a retained message (cmd, qos, topic, payload; `properties` for MQTT 5), with the
 * payload copied out: the received payload is a view into the socket's read chunk, and keeping it would keep
 * the whole chunk (the heartbeat and whatever arrived with it, ~1 KB per operator) for as long as the cluster's
 * `presence` stays retained.
 */
function compact(packet: RetainedPacket): RetainedPacket {
  const stored: RetainedPacket = {
    cmd: packet.cmd ?? "publish",
    topic: packet.topic,
    payload: Buffer.from(packet.payload),
    qos: packet.qos ?? 0,
    retain: true,
  };
  if (packet.properties !== undefined) stored.properties = packet.properties;
  return stored;
}

/**
 * Replaces the retained-message methods of Aedes' default persistence (the instance `aedes.persistence`) with
 * a topic-indexed map. Returns false, changing nothing, if the persistence is not the shape this was written
 * for (another aedes-persistence version or a custom persistence), so the broker keeps working, only slower.
 */
export function indexRetainedMessages(persistence: unknown): boolean {
  const inner = (persistence as { asyncPersistence?: Partial<RetainedMethods> } | null)?.asyncPersistence;
  if (
    !inner ||
    typeof inner.storeRetained !== "function" ||
    typeof inner.createRetainedStream !== "function" ||
    typeof inner.createRetainedStreamCombi !== "function"
  ) {
    return false;
  }
  const retained = new Map<string, RetainedPacket>();
  inner.storeRetained = async (packet) => {
    // MQTT-3.3.1-10/11: an empty retained payload deletes the topic's retained message.
    if (packet.payload.length === 0) retained.delete(packet.topic);
    else retained.set(packet.topic, compact(packet));
  };
  inner.createRetainedStream = (pattern) => matching(retained, [pattern]);
  inner.createRetainedStreamCombi = (patterns) => matching(retained, patterns);
  return true;
}
