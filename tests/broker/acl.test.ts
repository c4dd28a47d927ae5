/** The compiled per-identity ACL (Set lookups at connect) decides exactly like the parsing checks it replaces. */
import { expect, test } from "bun:test";
import { compileAcl, type Identity, mayPublish, mayReceive, maySubscribe } from "../../broker/acl.ts";
import {
  CHANNELS,
  managerSubscription,
  OPERATOR_TO_MANAGER,
  TOPIC_ROOT,
  topicFor,
} from "../../shared/topics.ts";
import { clusterId } from "./fixtures.ts";

const A = clusterId(1);
const B = clusterId(2);
const channels = [...Object.keys(CHANNELS), "nope", "", "+", "#"];
const topics = [
  ...channels.flatMap((channel) => [A, B, "+", "#", "A", ""].map((id) => `${TOPIC_ROOT}/${id}/${channel}`)),
  ...OPERATOR_TO_MANAGER.map((channel) => managerSubscription(channel)),
  `${topicFor(A, "status")}/extra`,
  `${TOPIC_ROOT}/${A}x/status`,
  `${TOPIC_ROOT}/${A}status`,
  `${TOPIC_ROOT}/${A}`,
  `${TOPIC_ROOT}/${A}/`,
  `/${topicFor(A, "status")}`,
  topicFor(A, "status").toUpperCase(),
  "$SYS/broker",
  "#",
  "+/+/+/+/+",
  "",
  `kubenova/v2/clusters/${A}/status`,
];

test.each<[string, Identity]>([
  ["operator", { kind: "operator", clusterId: A }],
  ["manager", { kind: "manager", name: "kubenova-manager" }],
])("compileAcl(%s) agrees with mayPublish, maySubscribe and mayReceive on every topic", (_name, identity) => {
  const acl = compileAcl(identity);
  let allowed = 0;
  for (const topic of topics) {
    expect([topic, acl.mayPublish(topic)]).toEqual([topic, mayPublish(identity, topic)]);
    expect([topic, acl.maySubscribe(topic)]).toEqual([topic, maySubscribe(identity, topic)]);
    expect([topic, acl.mayReceive(topic)]).toEqual([topic, mayReceive(identity, topic)]);
    if (acl.mayPublish(topic) || acl.maySubscribe(topic)) allowed++;
  }
  expect(allowed).toBeGreaterThan(0); // the table exercises both answers
});
