/**
 * @module broker/config — the variables `kubenova broker` reads (the broker as its own process, DESIGN.md §2).
 * Certificate auth and the topic ACL need no database: TLS material comes from files and revocations from a
 * JSON file the Manager writes. Shares the MQTT variable names and schemas with the Manager (shared/config.ts).
 */
import { z } from "zod";
import { ConfigError, MANAGER_ENV, parseEnv } from "../shared/config.ts";
import type { LogLevel } from "../shared/logger.ts";

export const BROKER_ENV = {
  KUBENOVA_MQTT_HOST: {
    schema: z.string().min(1).default("127.0.0.1"),
    doc: "Address the broker listens on (0.0.0.0 to expose)",
  },
  KUBENOVA_MQTT_PORT: MANAGER_ENV.KUBENOVA_MQTT_PORT,
  KUBENOVA_MQTT_MAX_PAYLOAD_BYTES: MANAGER_ENV.KUBENOVA_MQTT_MAX_PAYLOAD_BYTES,
  KUBENOVA_MQTT_PUBLISH_RATE: MANAGER_ENV.KUBENOVA_MQTT_PUBLISH_RATE,
  KUBENOVA_MQTT_MAX_HANDSHAKES: MANAGER_ENV.KUBENOVA_MQTT_MAX_HANDSHAKES,
  KUBENOVA_CA_CERT_FILE: {
    schema: z.string({ error: "is required" }).min(1),
    doc: "Cluster CA certificate (PEM) that signed the operators' client certificates",
  },
  KUBENOVA_BROKER_CERT_FILE: {
    schema: z.string({ error: "is required" }).min(1),
    doc: "The broker's server certificate (PEM)",
  },
  KUBENOVA_BROKER_KEY_FILE: {
    schema: z.string({ error: "is required" }).min(1),
    doc: "Private key (PKCS#8 PEM) for KUBENOVA_BROKER_CERT_FILE",
  },
  KUBENOVA_BROKER_REVOCATION_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'JSON `{ "revokedClusterIds": [...] }` written by the Manager; re-read on change, revoked sessions are kicked',
  },
  KUBENOVA_BROKER_MANAGER_IDENTITY: {
    schema: z.string().min(1).default("kubenova-manager"),
    doc: "Certificate CN granted the Manager's side of the ACL (clientId = CN or CN-<suffix>)",
  },
  KUBENOVA_LOG_LEVEL: MANAGER_ENV.KUBENOVA_LOG_LEVEL,
} as const;

export interface BrokerConfig {
  host: string;
  port: number;
  maxPayloadBytes: number;
  publishRatePerSecond: number;
  maxHandshakesInFlight: number;
  caCertFile: string;
  certFile: string;
  keyFile: string;
  revocationFile: string | null;
  managerIdentity: string;
  logLevel: LogLevel;
}

/** Parses the broker's environment; a bad or missing variable throws a ConfigError naming it. */
export function parseBrokerConfig(env: Record<string, string | undefined>): BrokerConfig {
  const e = parseEnv(BROKER_ENV, env);
  if (/^[0-9a-f]{8}-/.test(e.KUBENOVA_BROKER_MANAGER_IDENTITY)) {
    throw new ConfigError("KUBENOVA_BROKER_MANAGER_IDENTITY", "must not look like a cluster id");
  }
  return {
    host: e.KUBENOVA_MQTT_HOST,
    port: e.KUBENOVA_MQTT_PORT,
    maxPayloadBytes: e.KUBENOVA_MQTT_MAX_PAYLOAD_BYTES,
    publishRatePerSecond: e.KUBENOVA_MQTT_PUBLISH_RATE,
    maxHandshakesInFlight: e.KUBENOVA_MQTT_MAX_HANDSHAKES,
    caCertFile: e.KUBENOVA_CA_CERT_FILE,
    certFile: e.KUBENOVA_BROKER_CERT_FILE,
    keyFile: e.KUBENOVA_BROKER_KEY_FILE,
    revocationFile: e.KUBENOVA_BROKER_REVOCATION_FILE ?? null,
    managerIdentity: e.KUBENOVA_BROKER_MANAGER_IDENTITY,
    logLevel: e.KUBENOVA_LOG_LEVEL,
  };
}
