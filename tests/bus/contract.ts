/**
 * The Bus contract (manager/bus/bus.ts), run against every implementation: the embedded Aedes broker and an
 * external Mosquitto. The "operator" side is always a real mqtt.js client over mutual TLS with a certificate
 * issued by the cluster CA, so the suite exercises the topic contract exactly as an operator would.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { MqttClient } from "mqtt";
import type { Bus, BusEvent } from "../../manager/bus/bus.ts";
import { managerSubscription, topicFor } from "../../shared/topics.ts";
import { clusterId, collect, endAll, waitFor } from "../broker/fixtures.ts";

export interface BusEnvironment {
  /** A new Manager bus on the shared broker (two calls = two Manager replicas). */
  makeBus(): Promise<Bus>;
  /** A connected operator client for `clusterId` (CN = clientId = cluster id). */
  operator(clusterId: string): Promise<MqttClient>;
  /** External buses split a shared subscription across replicas; embedded subscribers each get every message. */
  sharedSubscriptions: boolean;
  close(): Promise<void>;
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

export function describeBusContract(name: string, makeEnvironment: () => Promise<BusEnvironment>): void {
  describe(`Bus contract: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
    });

    async function setup() {
      const env = await makeEnvironment();
      cleanups.push(() => env.close());
      return {
        env,
        bus: async () => {
          const bus = await env.makeBus();
          cleanups.push(() => bus.close());
          return bus;
        },
        operator: async (id: string) => {
          const client = await env.operator(id);
          cleanups.push(() => endAll(client));
          return client;
        },
      };
    }

    const A = clusterId(0x1a);
    const B = clusterId(0x1b);

    test("operator → Manager: a status report reaches the Manager's subscription with its topic", async () => {
      const s = await setup();
      const bus = await s.bus();
      const got: Array<[string, string]> = [];
      await bus.subscribe(managerSubscription("status"), (topic, payload) => {
        got.push([topic, decode(payload)]);
      });
      const a = await s.operator(A);
      const b = await s.operator(B);
      await a.publishAsync(topicFor(A, "status"), "from A", { qos: 1 });
      await b.publishAsync(topicFor(B, "status"), "from B", { qos: 1 });
      await a.publishAsync(topicFor(A, "events"), "not subscribed", { qos: 1 });
      await waitFor(() => got.length >= 2, 5000, "two status reports");
      expect(got.sort()).toEqual(
        [
          [topicFor(A, "status"), "from A"],
          [topicFor(B, "status"), "from B"],
        ].sort() as Array<[string, string]>,
      );
    });

    test("Manager → operator: desired state reaches that operator and no other", async () => {
      const s = await setup();
      const bus = await s.bus();
      const a = await s.operator(A);
      const b = await s.operator(B);
      const gotA = collect(a);
      const gotB = collect(b);
      await a.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
      await b.subscribeAsync(topicFor(B, "desired"), { qos: 1 });
      await bus.publish(topicFor(A, "desired"), '{"revision":7}', { qos: 1 });
      await bus.publish(topicFor(B, "desired"), "marker", { qos: 1 });
      await waitFor(() => gotA.length === 1 && gotB.length === 1, 5000, "both deliveries");
      expect(gotA).toEqual([{ topic: topicFor(A, "desired"), payload: '{"revision":7}' }]);
      expect(gotB).toEqual([{ topic: topicFor(B, "desired"), payload: "marker" }]);
    });

    test("QoS 1: 300 messages each way arrive complete and in order", async () => {
      const s = await setup();
      const bus = await s.bus();
      const n = 300;
      const atManager: string[] = [];
      await bus.subscribe(managerSubscription("usage"), (_topic, payload) => {
        atManager.push(decode(payload));
      });
      const a = await s.operator(A);
      const atOperator = collect(a);
      await a.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
      const up = Array.from({ length: n }, (_, i) =>
        a.publishAsync(topicFor(A, "usage"), `u${i}`, { qos: 1 }),
      );
      const down: Promise<void>[] = [];
      for (let i = 0; i < n; i++) down.push(bus.publish(topicFor(A, "desired"), `d${i}`, { qos: 1 }));
      await Promise.all([...up, ...down]);
      await waitFor(
        () => atManager.length === n && atOperator.length === n,
        15_000,
        `${n} messages each way`,
      );
      expect(atManager).toEqual(Array.from({ length: n }, (_, i) => `u${i}`));
      expect(atOperator.map((m) => m.payload)).toEqual(Array.from({ length: n }, (_, i) => `d${i}`));
    });

    test("retained presence: a Manager subscribing later still learns who is online", async () => {
      const s = await setup();
      const a = await s.operator(A);
      await a.publishAsync(topicFor(A, "presence"), "online", { qos: 1, retain: true });
      const bus = await s.bus();
      const got: Array<[string, string]> = [];
      await bus.subscribe(managerSubscription("presence"), (topic, payload) => {
        got.push([topic, decode(payload)]);
      });
      await waitFor(() => got.length >= 1, 5000, "the retained presence");
      expect(got[0]).toEqual([topicFor(A, "presence"), "online"]);
      // Clear the retained message so brokers shared between tests start clean (MQTT-3.3.1-10).
      await a.publishAsync(topicFor(A, "presence"), "", { qos: 1, retain: true });
    });

    test("unsubscribe stops delivery", async () => {
      const s = await setup();
      const bus = await s.bus();
      const events: string[] = [];
      const replies: string[] = [];
      const unsubscribe = await bus.subscribe(managerSubscription("events"), (_t, p) => {
        events.push(decode(p));
      });
      await bus.subscribe(managerSubscription("replies"), (_t, p) => {
        replies.push(decode(p));
      });
      const a = await s.operator(A);
      await a.publishAsync(topicFor(A, "events"), "before", { qos: 1 });
      await waitFor(() => events.length === 1, 5000, "the first event");
      await unsubscribe();
      await a.publishAsync(topicFor(A, "events"), "after", { qos: 1 });
      await a.publishAsync(topicFor(A, "replies"), "marker", { qos: 1 });
      await waitFor(() => replies.length === 1, 5000, "the marker on another subscription");
      expect(events).toEqual(["before"]);
    });

    test("payload bytes are preserved exactly (all byte values, invalid UTF-8, empty)", async () => {
      const s = await setup();
      const bus = await s.bus();
      const atManager: Uint8Array[] = [];
      await bus.subscribe(managerSubscription("replies"), (_t, payload) => {
        atManager.push(payload);
      });
      const a = await s.operator(A);
      const raw: Buffer[] = [];
      a.on("message", (_t, payload) => raw.push(Buffer.from(payload)));
      await a.subscribeAsync(topicFor(A, "commands"), { qos: 1 });
      const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
      await a.publishAsync(topicFor(A, "replies"), Buffer.from(bytes), { qos: 1 });
      await bus.publish(topicFor(A, "commands"), bytes, { qos: 1 });
      await bus.publish(topicFor(A, "commands"), "ünïcødé ✓", { qos: 1 });
      await waitFor(() => atManager.length === 1 && raw.length === 2, 5000, "both directions");
      expect(Buffer.from(atManager[0]!).equals(Buffer.from(bytes))).toBe(true);
      expect(raw[0]!.equals(Buffer.from(bytes))).toBe(true);
      expect(raw[1]!.toString("utf8")).toBe("ünïcødé ✓");
    });

    test("a failing handler is logged and does not stop the next message", async () => {
      const s = await setup();
      const bus = await s.bus();
      const got: string[] = [];
      await bus.subscribe(managerSubscription("hello"), async (_t, payload) => {
        const text = decode(payload);
        if (text === "boom") throw new Error("handler failed");
        got.push(text);
      });
      const a = await s.operator(A);
      await a.publishAsync(topicFor(A, "hello"), "boom", { qos: 1 });
      await a.publishAsync(topicFor(A, "hello"), "next", { qos: 1 });
      await waitFor(() => got.length === 1, 5000, "the next message");
      expect(got).toEqual(["next"]);
    });

    test("two Manager subscribers: shared subscription splits, embedded fans out", async () => {
      const s = await setup();
      const first = await s.bus();
      const second = await s.bus();
      const got: Array<{ who: number; payload: string }> = [];
      await first.subscribe(managerSubscription("events"), (_t, p) => {
        got.push({ who: 1, payload: decode(p) });
      });
      await second.subscribe(managerSubscription("events"), (_t, p) => {
        got.push({ who: 2, payload: decode(p) });
      });
      const a = await s.operator(A);
      const n = 20;
      for (let i = 0; i < n; i++) await a.publishAsync(topicFor(A, "events"), `e${i}`, { qos: 1 });
      const expected = s.env.sharedSubscriptions ? n : 2 * n;
      await waitFor(() => got.length >= expected, 5000, `${expected} deliveries`);
      const byMessage = new Map<string, number[]>();
      for (const { who, payload } of got) byMessage.set(payload, [...(byMessage.get(payload) ?? []), who]);
      expect(byMessage.size).toBe(n);
      for (const receivers of byMessage.values()) {
        expect(receivers.sort()).toEqual(s.env.sharedSubscriptions ? [expect.any(Number)] : [1, 2]);
      }
      if (s.env.sharedSubscriptions) {
        // Each message reached exactly one replica, and both replicas took part.
        expect(new Set(got.map((g) => g.who)).size).toBe(2);
      }
      expect(got.length).toBe(expected);
    });

    test("connection events reach listeners", async () => {
      const s = await setup();
      const bus = await s.bus();
      const events: BusEvent[] = [];
      bus.onEvent((event) => events.push(event));
      const a = await s.operator(A);
      if (bus.kind === "embedded") {
        await waitFor(() => events.some((e) => e.type === "client-connected"), 3000, "client-connected");
        expect(events[0]).toEqual({ type: "client-connected", clusterId: A });
        await a.endAsync();
        await waitFor(
          () => events.some((e) => e.type === "client-disconnected"),
          3000,
          "client-disconnected",
        );
        expect(events[1]).toEqual({ type: "client-disconnected", clusterId: A, reason: "client-disconnect" });
      } else {
        // External: the bus only sees its own link; operators' comings and goings arrive as presence messages.
        expect(events.filter((e) => e.type === "link-down")).toEqual([]);
      }
    });
  });
}
