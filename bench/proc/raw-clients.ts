/**
 * @module bench/proc/raw-clients — the baselines' load generator: bare mqtt.js clients and bare TLS handshakes
 * with the same client certificates. Commands: hold (connect identities [from, to) and keep them), pubsub
 * (QoS1 publish → subscribe through the broker), handshakes (mutual-TLS handshakes as fast as they go), exit.
 */
import "reflect-metadata";
import tls from "node:tls";
import mqtt, { type MqttClient } from "mqtt";
import { childConfig, send, serveCommands } from "../lib.ts";
import { loadPki } from "../pki.ts";

interface Config {
  pkiPath: string;
  from: number;
  to: number;
  port: number;
}

const config = childConfig<Config>();
const pki = loadPki(config.pkiPath);
const identities = pki.identities.slice(config.from, config.to);
const held: MqttClient[] = [];

function connect(index: number, clean = true): Promise<MqttClient> {
  const identity = identities[index]!;
  const client = mqtt.connect(`mqtts://127.0.0.1:${config.port}`, {
    clientId: identity.clusterId,
    protocolVersion: 4,
    clean,
    keepalive: 30,
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    ca: pki.caPem,
    cert: identity.certPem,
    key: pki.clientKeyPem,
  });
  client.on("error", () => undefined);
  return new Promise((resolve, reject) => {
    client.once("connect", () => resolve(client));
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
}

send({ type: "ready", pid: process.pid });

await serveCommands(async (command) => {
  switch (command.cmd) {
    case "hold": {
      const t0 = Date.now();
      let failed = 0;
      // A bounded number of handshakes in flight, as the link's jittered reconnects would produce.
      let next = 0;
      const worker = async () => {
        while (next < identities.length) {
          const index = next++;
          try {
            held.push(await connect(index));
          } catch {
            failed++;
          }
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      return { t0, t1: Date.now(), connected: held.length, failed };
    }
    case "pubsub": {
      const messages = command.messages as number;
      const payload = Buffer.alloc(command.bytes ?? 300, "x");
      const window = command.window ?? 1000;
      const subscriber = await connect(0);
      const publisher = await connect(1);
      await subscriber.subscribeAsync("bench/pubsub", { qos: 1 });
      let received = 0;
      const done = new Promise<void>((resolve) => {
        subscriber.on("message", () => {
          if (++received === messages) resolve();
        });
      });
      const t0 = performance.now();
      let sent = 0;
      let acked = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (sent < messages && sent - acked < window) {
            sent++;
            publisher.publish("bench/pubsub", payload, { qos: 1 }, () => {
              acked++;
              if (acked === messages) resolve();
              else pump();
            });
          }
        };
        pump();
      });
      await Promise.race([done, Bun.sleep(command.timeoutMs ?? 60_000)]);
      const seconds = (performance.now() - t0) / 1000;
      await Promise.all([subscriber.endAsync(true), publisher.endAsync(true)]);
      return { messages, received, seconds, perSecond: received / seconds };
    }
    case "handshakes": {
      const count = command.count as number;
      const concurrency = command.concurrency ?? 32;
      // Another listener than the one this process was started for (the broker path after the bare listener).
      const port = (command.port as number | undefined) ?? config.port;
      let next = 0;
      let failed = 0;
      const t0 = performance.now();
      const one = (index: number) =>
        new Promise<void>((resolve) => {
          const identity = identities[index % identities.length]!;
          const socket = tls.connect({
            host: "127.0.0.1",
            port,
            ca: pki.caPem,
            cert: identity.certPem,
            key: pki.clientKeyPem,
            servername: "localhost",
          });
          socket.once("secureConnect", () => {
            socket.destroy();
            resolve();
          });
          socket.once("error", () => {
            failed++;
            resolve();
          });
        });
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) await one(next++);
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      return { count, failed, seconds, perSecond: (count - failed) / seconds };
    }
    case "exit":
      for (const client of held) client.end(true);
      return {};
    default:
      throw new Error(`unknown command ${command.cmd}`);
  }
});
