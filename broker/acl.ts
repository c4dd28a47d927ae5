/**
 * @module broker/acl — who may publish, subscribe and receive what on the broker (DESIGN.md §4 "Topic ACL").
 * Every decision is derived from shared/topics.ts; this file only adds the Manager's side for a Manager that
 * connects as an ordinary mTLS client (the embedded Manager bypasses the broker's ACL in-process).
 */
import {
  CHANNELS,
  MANAGER_TO_OPERATOR,
  managerSubscription,
  OPERATOR_TO_MANAGER,
  type OperatorChannel,
  operatorMayPublish,
  operatorMaySubscribe,
  parseTopic,
  TOPIC_ROOT,
} from "../shared/topics.ts";

/** An authenticated peer: an operator (CN = cluster id) or the Manager's configured identity. */
export type Identity = { kind: "operator"; clusterId: string } | { kind: "manager"; name: string };

/** Manager side: publish only manager→operator topics of a concrete cluster. */
export function managerMayPublish(topic: string): boolean {
  const parsed = parseTopic(topic);
  return parsed !== null && CHANNELS[parsed.channel].direction === "manager→operator";
}

const MANAGER_FILTERS = new Set<string>(
  OPERATOR_TO_MANAGER.map((channel: OperatorChannel) => managerSubscription(channel)),
);

/**
 * Manager side: subscribe to an operator→manager channel across all clusters (`kubenova/v1/clusters/+/status`)
 * or of one cluster. Never `#`, never `$SYS`, never a manager→operator topic.
 */
export function managerMaySubscribe(filter: string): boolean {
  if (MANAGER_FILTERS.has(filter)) return true;
  if (filter.includes("+") || filter.includes("#") || filter.startsWith("$")) return false;
  const parsed = parseTopic(filter);
  return parsed !== null && CHANNELS[parsed.channel].direction === "operator→manager";
}

export function mayPublish(identity: Identity, topic: string): boolean {
  return identity.kind === "operator"
    ? operatorMayPublish(identity.clusterId, topic)
    : managerMayPublish(topic);
}

export function maySubscribe(identity: Identity, filter: string): boolean {
  return identity.kind === "operator"
    ? operatorMaySubscribe(identity.clusterId, filter)
    : managerMaySubscribe(filter);
}

/**
 * The second guard at delivery time: a message reaches an operator only if it is one of that cluster's own
 * manager→operator topics, and reaches the Manager only if it travels operator→manager. Even a subscription
 * that slipped past `maySubscribe` cannot leak another cluster's traffic.
 */
export function mayReceive(identity: Identity, topic: string): boolean {
  const parsed = parseTopic(topic);
  if (parsed === null) return false;
  const direction = CHANNELS[parsed.channel].direction;
  if (identity.kind === "manager") return direction === "operator→manager";
  return parsed.clusterId === identity.clusterId && direction === "manager→operator";
}

/** Exposed for documentation and tests: the channels each side may publish. */
export const PUBLISHABLE = { operator: OPERATOR_TO_MANAGER, manager: MANAGER_TO_OPERATOR } as const;

const OPERATOR_PUBLISHES = new Set<string>(OPERATOR_TO_MANAGER);
const OPERATOR_RECEIVES = new Set<string>(MANAGER_TO_OPERATOR);

/** An identity's ACL decided once at connect: for an operator each check is a prefix test and one Set lookup. */
export interface CompiledAcl {
  mayPublish(topic: string): boolean;
  maySubscribe(filter: string): boolean;
  mayReceive(topic: string): boolean;
}

/**
 * Compiles the checks above for one identity. An operator's allowed topics are a fixed, small list (its own
 * topic root × the channels of each direction), and the same exact strings are what `operatorMayPublish`,
 * `operatorMaySubscribe` and `mayReceive` accept for a valid cluster id (the broker checks the CN against
 * CLUSTER_ID_PATTERN before it gets here). The Manager's side keeps the parsing checks: it is one client.
 */
export function compileAcl(identity: Identity): CompiledAcl {
  return identity.kind === "manager" ? MANAGER_ACL : new OperatorAcl(identity.clusterId);
}

const MANAGER_ACL: CompiledAcl = {
  mayPublish: (topic) => managerMayPublish(topic),
  maySubscribe: (filter) => managerMaySubscribe(filter),
  mayReceive: (topic) => mayReceive({ kind: "manager", name: "" }, topic),
};

const ROOT = `${TOPIC_ROOT}/`;
const SLASH = 47;

/**
 * One object per client holding its cluster id (the identity's own string); the methods and channel sets are
 * shared. Closures per client cost ~400 bytes of heap per connection more (three functions, their scope, the
 * object), a prefix string per client ~90 more, and the broker holds one of these per operator.
 */
class OperatorAcl implements CompiledAcl {
  constructor(private readonly clusterId: string) {}

  /** The channel of `<root>/<clusterId>/<channel>`, or "" for any other topic. */
  private channelOf(topic: string): string {
    const end = ROOT.length + this.clusterId.length;
    return topic.startsWith(ROOT) &&
      topic.startsWith(this.clusterId, ROOT.length) &&
      topic.charCodeAt(end) === SLASH
      ? topic.slice(end + 1)
      : "";
  }

  mayPublish(topic: string): boolean {
    return OPERATOR_PUBLISHES.has(this.channelOf(topic));
  }

  maySubscribe(filter: string): boolean {
    return OPERATOR_RECEIVES.has(this.channelOf(filter));
  }

  mayReceive(topic: string): boolean {
    return OPERATOR_RECEIVES.has(this.channelOf(topic));
  }
}
