/**
 * `kubenova broker` as its own process (broker/main.ts): TLS material from files, revocations from the JSON file
 * the Manager writes, and a Manager connecting as an external MQTT 3.1.1 client with its own identity.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parseBrokerConfig } from "../../broker/config.ts";
import { writeRevocationFile } from "../../broker/revocations.ts";
import { createExternalBus } from "../../manager/bus/external.ts";
import { ConfigError } from "../../shared/config.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { managerSubscription, topicFor } from "../../shared/topics.ts";
import {
  clusterId,
  collect,
  connectOrFail,
  endAll,
  makePki,
  type Pki,
  tryConnect,
  waitFor,
} from "./fixtures.ts";

const A = clusterId(0x3a);
const B = clusterId(0x3b);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function spawnBroker(): Promise<{ pki: Pki; port: number; dir: string; logs: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "kubenova-broker-"));
  const pki = await makePki();
  writeFileSync(join(dir, "ca.pem"), pki.ca.certificatePem);
  writeFileSync(join(dir, "server.pem"), pki.server.certPem);
  writeFileSync(join(dir, "server.key"), pki.server.keyPem);
  writeFileSync(join(dir, "revoked.json"), JSON.stringify({ revokedClusterIds: [B] }));
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(["bun", "run", "broker/main.ts"], {
    cwd: join(import.meta.dir, "../.."),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      KUBENOVA_MQTT_HOST: "127.0.0.1",
      KUBENOVA_MQTT_PORT: "0",
      KUBENOVA_CA_CERT_FILE: join(dir, "ca.pem"),
      KUBENOVA_BROKER_CERT_FILE: join(dir, "server.pem"),
      KUBENOVA_BROKER_KEY_FILE: join(dir, "server.key"),
      KUBENOVA_BROKER_REVOCATION_FILE: join(dir, "revoked.json"),
      KUBENOVA_LOG_LEVEL: "info",
    },
  });
  cleanups.push(async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const logs: string[] = [];
  let port = 0;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of proc.stdout) {
      buffer += decoder.decode(chunk);
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        const record = JSON.parse(line) as { msg: string; port?: number };
        if (record.msg === "broker listening") port = record.port ?? 0;
      }
    }
  })();
  await waitFor(() => port > 0 || proc.exitCode !== null, 15_000, "the broker process to listen");
  if (port === 0) throw new Error(`broker exited: ${await new Response(proc.stderr).text()}`);
  return { pki, port, dir, logs };
}

describe("kubenova broker (standalone process)", () => {
  test("serves operators, refuses revoked ones, and kicks a session when the revocation file changes", async () => {
    const { pki, port, dir, logs } = await spawnBroker();
    const revoked = await tryConnect({
      port,
      caPem: pki.ca.certificatePem,
      identity: await pki.identity(B),
      clientId: B,
    });
    cleanups.push(() => endAll(revoked.client));
    expect(revoked.connected).toBe(false);

    // The Manager, as an external MQTT 3.1.1 client (Aedes has no MQTT 5, so no shared subscriptions).
    const managerId = await pki.identity("kubenova-manager");
    const bus = await createExternalBus({
      url: `mqtts://127.0.0.1:${port}`,
      caPem: pki.ca.certificatePem,
      certPem: managerId.certificatePem,
      keyPem: managerId.privateKeyPem,
      clientId: "kubenova-manager-1",
      protocolVersion: 4,
      logger: createMemoryLogger("warn"),
    });
    cleanups.push(() => bus.close());
    const atManager: string[] = [];
    await bus.subscribe(managerSubscription("hello"), (topic) => {
      atManager.push(topic);
    });

    const client = await connectOrFail({
      port,
      caPem: pki.ca.certificatePem,
      identity: await pki.identity(A),
      clientId: A,
    });
    cleanups.push(() => endAll(client));
    const got = collect(client);
    await client.subscribeAsync(topicFor(A, "desired"), { qos: 1 });
    await client.publishAsync(topicFor(A, "hello"), "{}", { qos: 1 });
    await waitFor(() => atManager.length === 1, 5000, "hello at the Manager");
    await bus.publish(topicFor(A, "desired"), "rev 1", { qos: 1 });
    await waitFor(() => got.length === 1, 5000, "desired at the operator");

    let closed = false;
    client.on("close", () => {
      closed = true;
    });
    // The Manager replaces the file atomically (write + rename).
    await writeRevocationFile(join(dir, "revoked.json"), [B, A]);
    await waitFor(() => closed, 5000, "the revoked session to be kicked");
    expect(logs.some((l) => l.includes('"msg":"cluster revoked"') && l.includes(A))).toBe(true);
    const again = await tryConnect({
      port,
      caPem: pki.ca.certificatePem,
      identity: await pki.identity(A),
      clientId: A,
    });
    cleanups.push(() => endAll(again.client));
    expect(again.connected).toBe(false);
  });

  test("configuration errors name the variable", () => {
    expect(() => parseBrokerConfig({})).toThrow(ConfigError);
    expect(() => parseBrokerConfig({})).toThrow(/KUBENOVA_CA_CERT_FILE/);
    const base = {
      KUBENOVA_CA_CERT_FILE: "a",
      KUBENOVA_BROKER_CERT_FILE: "b",
      KUBENOVA_BROKER_KEY_FILE: "c",
    };
    expect(parseBrokerConfig(base)).toMatchObject({
      port: 8883,
      revocationFile: null,
      managerIdentity: "kubenova-manager",
    });
    expect(() => parseBrokerConfig({ ...base, KUBENOVA_MQTT_PORT: "99999" })).toThrow(/KUBENOVA_MQTT_PORT/);
  });
});
