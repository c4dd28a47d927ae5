/**
 * @module shared/topics — the MQTT topic contract (DESIGN.md §3): one topic root per cluster and a fixed
 * direction per channel. The broker's ACL, the Manager's subscriptions, the operator's client and the Mosquitto
 * example ACL are all generated from this one table.
 */

export const TOPIC_ROOT = "kubenova/v1/clusters";

/** Channels the Manager publishes and operators subscribe to. */
export const MANAGER_TO_OPERATOR = ["desired", "commands", "acks"] as const;
/** Channels operators publish and the Manager subscribes to. */
export const OPERATOR_TO_MANAGER = ["hello", "status", "usage", "events", "replies", "presence"] as const;

export type ManagerChannel = (typeof MANAGER_TO_OPERATOR)[number];
export type OperatorChannel = (typeof OPERATOR_TO_MANAGER)[number];
export type Channel = ManagerChannel | OperatorChannel;

export interface ChannelSpec {
  direction: "manager→operator" | "operator→manager";
  qos: 0 | 1;
  retained: boolean;
}

export const CHANNELS: Record<Channel, ChannelSpec> = {
  desired: { direction: "manager→operator", qos: 1, retained: false },
  commands: { direction: "manager→operator", qos: 1, retained: false },
  acks: { direction: "manager→operator", qos: 1, retained: false },
  hello: { direction: "operator→manager", qos: 1, retained: false },
  status: { direction: "operator→manager", qos: 1, retained: false },
  usage: { direction: "operator→manager", qos: 1, retained: false },
  events: { direction: "operator→manager", qos: 1, retained: false },
  replies: { direction: "operator→manager", qos: 1, retained: false },
  presence: { direction: "operator→manager", qos: 1, retained: true },
};

/** Cluster ids are UUIDs; nothing else may appear as a topic level (no wildcards, no `/`). */
export const CLUSTER_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function topicFor(clusterId: string, channel: Channel): string {
  return `${TOPIC_ROOT}/${clusterId}/${channel}`;
}

/** The Manager's subscription for one operator→manager channel across all clusters. */
export function managerSubscription(channel: OperatorChannel): string {
  return `${TOPIC_ROOT}/+/${channel}`;
}

export interface ParsedTopic {
  clusterId: string;
  channel: Channel;
}

/** Splits a concrete topic; null for anything outside the contract (wildcards included). */
export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split("/");
  if (parts.length !== 5 || `${parts[0]}/${parts[1]}/${parts[2]}` !== TOPIC_ROOT) return null;
  const clusterId = parts[3]!;
  const channel = parts[4]! as Channel;
  if (!CLUSTER_ID_PATTERN.test(clusterId) || !(channel in CHANNELS)) return null;
  return { clusterId, channel };
}

/** ACL for an operator: publish only its own operator→manager topics. */
export function operatorMayPublish(clusterId: string, topic: string): boolean {
  const parsed = parseTopic(topic);
  return (
    parsed !== null &&
    parsed.clusterId === clusterId &&
    CHANNELS[parsed.channel].direction === "operator→manager"
  );
}

/** ACL for an operator: subscribe only to its own manager→operator topics, exactly (no wildcard filters). */
export function operatorMaySubscribe(clusterId: string, filter: string): boolean {
  if (filter.includes("+") || filter.includes("#") || filter.startsWith("$")) return false;
  const parsed = parseTopic(filter);
  return (
    parsed !== null &&
    parsed.clusterId === clusterId &&
    CHANNELS[parsed.channel].direction === "manager→operator"
  );
}

/**
 * Mosquitto ACL lines equivalent to the functions above, for sites on an external broker with
 * `use_identity_as_username true` (the certificate CN is the username, `%u` in patterns).
 */
export function mosquittoAclPatterns(managerUsername: string): string[] {
  const lines = [
    "# KubeNova topic ACL — generated from shared/topics.ts",
    "# operators: identity = certificate CN = cluster id",
  ];
  for (const channel of OPERATOR_TO_MANAGER) lines.push(`pattern write ${TOPIC_ROOT}/%u/${channel}`);
  for (const channel of MANAGER_TO_OPERATOR) lines.push(`pattern read ${TOPIC_ROOT}/%u/${channel}`);
  lines.push("", `# the Manager`, `user ${managerUsername}`);
  for (const channel of OPERATOR_TO_MANAGER) lines.push(`topic read ${TOPIC_ROOT}/+/${channel}`);
  for (const channel of MANAGER_TO_OPERATOR) lines.push(`topic write ${TOPIC_ROOT}/+/${channel}`);
  return lines;
}

/** MQTT topic-filter matching (MQTT-4.7.1): `+` one level, `#` the rest; `$` topics never match wildcards. */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false; // MQTT-4.7.2-1
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === "#") return true;
    if (i >= t.length) return false;
    if (level !== "+" && level !== t[i]) return false;
  }
  return f.length === t.length;
}
