/** Test fixtures for the broker and bus suites: a CA, the broker's server certificate, client identities, clients. */
import "reflect-metadata";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { type CertificateAuthority, createCertificateAuthority } from "../../manager/pki/ca.ts";
import { createCsr, exportPrivateKeyPem, generateKeyPair } from "../../shared/pki.ts";

export interface ClientIdentity {
  certificatePem: string;
  privateKeyPem: string;
}

export interface Pki {
  ca: CertificateAuthority;
  server: { certPem: string; keyPem: string };
  /** A client certificate with CN = `cn` signed by this CA. */
  identity(cn: string, lifetimeSeconds?: number): Promise<ClientIdentity>;
}

export async function issueIdentity(
  ca: CertificateAuthority,
  cn: string,
  lifetimeSeconds = 3600,
): Promise<ClientIdentity> {
  const keys = await generateKeyPair();
  const csrPem = await createCsr({ commonName: cn, keys });
  const issued = await ca.signClientCsr({ csrPem, clusterId: cn, lifetimeSeconds });
  return { certificatePem: issued.certificatePem, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export async function makePki(now?: () => Date): Promise<Pki> {
  const ca = await createCertificateAuthority(now ? { now } : {});
  const server = await ca.issueServerCertificate({
    commonName: "kubenova-broker",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    lifetimeDays: 1,
  });
  return {
    ca,
    server: { certPem: server.certificatePem, keyPem: server.privateKeyPem },
    identity: (cn, lifetimeSeconds) => issueIdentity(ca, cn, lifetimeSeconds),
  };
}

export function clusterId(n: number): string {
  return `0000${n.toString(16).padStart(4, "0")}-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;
}

export type ConnectOutcome =
  | { connected: true; client: MqttClient }
  | { connected: false; client: MqttClient; error: string };

/** Connects once (no reconnects) and reports whether CONNACK accepted the client, within `timeoutMs`. */
export async function tryConnect(options: {
  port: number;
  caPem: string;
  identity?: ClientIdentity;
  clientId: string;
  protocolVersion?: 4 | 5;
  timeoutMs?: number;
  extra?: IClientOptions;
}): Promise<ConnectOutcome> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${options.port}`, {
    clientId: options.clientId,
    ca: options.caPem,
    ...(options.identity
      ? { cert: options.identity.certificatePem, key: options.identity.privateKeyPem }
      : {}),
    protocolVersion: options.protocolVersion ?? 4,
    reconnectPeriod: 0,
    connectTimeout: options.timeoutMs ?? 5000,
    clean: true,
    ...options.extra,
  });
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => finish({ connected: false, client, error: "timeout" }),
      options.timeoutMs ?? 5000,
    );
    const finish = (outcome: ConnectOutcome) => {
      clearTimeout(timer);
      client.removeAllListeners("connect");
      resolve(outcome);
    };
    client.once("connect", () => finish({ connected: true, client }));
    client.once("error", (error) => finish({ connected: false, client, error: error.message }));
    client.once("close", () => finish({ connected: false, client, error: "closed" }));
  });
}

/** Connects and fails the test unless accepted. */
export async function connectOrFail(options: Parameters<typeof tryConnect>[0]): Promise<MqttClient> {
  const outcome = await tryConnect(options);
  if (!outcome.connected) {
    outcome.client.end(true);
    throw new Error(`expected ${options.clientId} to connect, got: ${outcome.error}`);
  }
  outcome.client.on("error", () => {});
  return outcome.client;
}

/** Polls `check` until it is true or `timeoutMs` passes (no fixed sleeps as assertions). */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** Collects messages a client receives. */
export function collect(client: MqttClient): Array<{ topic: string; payload: string }> {
  const received: Array<{ topic: string; payload: string }> = [];
  client.on("message", (topic, payload) => received.push({ topic, payload: payload.toString() }));
  return received;
}

export async function endAll(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => (c ? c.endAsync(true).catch(() => {}) : undefined)));
}

/** The SUBACK code for one filter (mqtt.js rejects a 0x80 SUBACK; the packet rides on the error). */
export async function subackCode(client: MqttClient, filter: string): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos: 1 });
    return granted[0]!.qos;
  } catch (error) {
    const packet = (error as { packet?: { granted?: Array<number | { reasonCode?: number }> } }).packet;
    const first = packet?.granted?.[0];
    if (first === undefined) throw error;
    return typeof first === "number" ? first : (first.reasonCode ?? -1);
  }
}
