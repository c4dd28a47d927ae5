/** The broker's topic-indexed retained messages: what a SUBSCRIBE gets back, exact and wildcard, and deletion. */
import { expect, test } from "bun:test";
import { Aedes } from "aedes";
import { indexRetainedMessages } from "../../broker/retained.ts";

async function retainedFor(aedes: Aedes, patterns: string[]): Promise<string[]> {
  const persistence = (aedes as unknown as { persistence: any }).persistence;
  const topics: string[] = [];
  for await (const packet of persistence.createRetainedStreamCombi(patterns)) {
    topics.push(`${packet.topic}=${Buffer.from(packet.payload).toString()}`);
  }
  return topics.sort();
}

const publish = (aedes: Aedes, topic: string, payload: string) =>
  new Promise<void>((resolve, reject) =>
    aedes.publish(
      { cmd: "publish", topic, payload: Buffer.from(payload), qos: 1, retain: true, dup: false },
      (error) => (error ? reject(error) : resolve()),
    ),
  );

test("retained messages: exact topics by lookup, wildcards by scan, empty payload deletes, latest wins", async () => {
  const aedes = await Aedes.createBroker({});
  expect(indexRetainedMessages((aedes as unknown as { persistence: unknown }).persistence)).toBe(true);
  await publish(aedes, "kubenova/v1/clusters/a/presence", "online-a");
  await publish(aedes, "kubenova/v1/clusters/b/presence", "online-b");
  await publish(aedes, "kubenova/v1/clusters/b/presence", "offline-b");
  await publish(aedes, "$SYS/x/presence", "sys");

  expect(await retainedFor(aedes, ["kubenova/v1/clusters/a/presence"])).toEqual([
    "kubenova/v1/clusters/a/presence=online-a",
  ]);
  expect(await retainedFor(aedes, ["kubenova/v1/clusters/a/desired"])).toEqual([]);
  expect(await retainedFor(aedes, ["kubenova/v1/clusters/+/presence"])).toEqual([
    "kubenova/v1/clusters/a/presence=online-a",
    "kubenova/v1/clusters/b/presence=offline-b",
  ]);
  // MQTT-4.7.2-1: a leading wildcard never matches a `$` topic.
  expect(await retainedFor(aedes, ["#"])).toHaveLength(2);
  expect(await retainedFor(aedes, ["kubenova/#", "$SYS/+/presence"])).toHaveLength(3);

  await publish(aedes, "kubenova/v1/clusters/a/presence", "");
  expect(await retainedFor(aedes, ["kubenova/v1/clusters/+/presence"])).toEqual([
    "kubenova/v1/clusters/b/presence=offline-b",
  ]);
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
});

test("a retained payload is stored as its own bytes, not as a view that keeps the received chunk alive", async () => {
  const aedes = await Aedes.createBroker({});
  expect(indexRetainedMessages((aedes as unknown as { persistence: unknown }).persistence)).toBe(true);
  // As mqtt-packet hands it over: the payload is a slice of the socket's read chunk.
  const chunk = Buffer.from(`${"x".repeat(500)}online-a${"y".repeat(500)}`);
  const payload = chunk.subarray(500, 508);
  await new Promise<void>((resolve, reject) =>
    aedes.publish(
      { cmd: "publish", topic: "kubenova/v1/clusters/a/presence", payload, qos: 1, retain: true, dup: false },
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  const persistence = (aedes as unknown as { persistence: any }).persistence;
  const stored: Array<{ payload: Uint8Array; qos: number; cmd: string }> = [];
  for await (const packet of persistence.createRetainedStreamCombi(["kubenova/v1/clusters/a/presence"])) {
    stored.push(packet);
  }
  expect(stored).toHaveLength(1);
  expect(Buffer.from(stored[0]!.payload).toString()).toBe("online-a");
  expect(stored[0]!.payload.buffer.byteLength).toBe(8);
  expect(stored[0]!.qos).toBe(1);
  expect(stored[0]!.cmd).toBe("publish");
  // The copy is independent of the chunk (which the socket may reuse).
  chunk.fill(0);
  expect(await retainedFor(aedes, ["kubenova/v1/clusters/a/presence"])).toEqual([
    "kubenova/v1/clusters/a/presence=online-a",
  ]);
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
});

test("an unknown persistence is left alone", () => {
  expect(indexRetainedMessages({})).toBe(false);
  expect(indexRetainedMessages(null)).toBe(false);
});
