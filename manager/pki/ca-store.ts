/**
 * Where the Manager's CA and the broker's server certificate come from (DESIGN.md §4): operator-supplied files
 * (KUBENOVA_CA_CERT_FILE/KEY_FILE, KUBENOVA_BROKER_CERT_FILE/KEY_FILE), or a CA generated once and kept in the
 * store's `settings` with its key envelope-encrypted, so every Manager replica on one database signs with one CA.
 */
import { readFile } from "node:fs/promises";
import type { ManagerConfig } from "../../shared/config.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import type { Envelope } from "../crypto/envelope.ts";
import type { Store } from "../store/store.ts";
import { type CertificateAuthority, createCertificateAuthority, loadCertificateAuthority } from "./ca.ts";

/** The settings key of the generated CA; also the AAD (`settings/pki.ca`) its key is sealed with. */
export const CA_SETTING_KEY = "pki.ca";
export const CA_SETTING_AAD = `settings/${CA_SETTING_KEY}`;

/** What `settings["pki.ca"]` holds: the certificate in the clear, the PKCS#8 key as an envelope ciphertext. */
interface StoredCa {
  v: 1;
  certificatePem: string;
  privateKeyCiphertext: string;
}

function parseStoredCa(text: string): StoredCa {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KubeNovaError("KN-500", `settings "${CA_SETTING_KEY}" is not JSON`);
  }
  const record = value as Partial<StoredCa> | null;
  if (
    record === null ||
    record.v !== 1 ||
    typeof record.certificatePem !== "string" ||
    typeof record.privateKeyCiphertext !== "string"
  ) {
    throw new KubeNovaError("KN-500", `settings "${CA_SETTING_KEY}" does not hold a KubeNova CA record`);
  }
  return record as StoredCa;
}

async function fromStored(
  text: string,
  envelope: Pick<Envelope, "decryptString">,
  now?: () => Date,
): Promise<CertificateAuthority> {
  const stored = parseStoredCa(text);
  const privateKeyPem = await envelope.decryptString(stored.privateKeyCiphertext, CA_SETTING_AAD);
  return loadCertificateAuthority({
    certificatePem: stored.certificatePem,
    privateKeyPem,
    ...(now ? { now } : {}),
  });
}

async function readPem(path: string, variable: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new KubeNovaError("KN-500", `${variable}: cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The CA, from files when configured, else from the store, else generated (ECDSA P-256) and stored. Two Managers
 * starting at once on one empty database both generate one, but `putIfAbsent` lets only the first write it; the
 * loser re-reads and uses the winner's, so every replica ends up with the same CA.
 */
export async function loadOrCreateCertificateAuthority(options: {
  store: Pick<Store, "settings">;
  envelope: Pick<Envelope, "encrypt" | "decryptString">;
  logger: Logger;
  files?: { certFile: string; keyFile: string } | null;
  now?: () => Date;
}): Promise<CertificateAuthority> {
  const { store, envelope, logger, files } = options;
  const now = options.now ? { now: options.now } : {};
  if (files) {
    const certificatePem = await readPem(files.certFile, "KUBENOVA_CA_CERT_FILE");
    const privateKeyPem = await readPem(files.keyFile, "KUBENOVA_CA_KEY_FILE");
    try {
      const ca = await loadCertificateAuthority({ certificatePem, privateKeyPem, ...now });
      logger.info("certificate authority loaded from files", { certFile: files.certFile });
      return ca;
    } catch (error) {
      if (error instanceof KubeNovaError) throw error;
      throw new KubeNovaError(
        "KN-500",
        `KUBENOVA_CA_CERT_FILE/KUBENOVA_CA_KEY_FILE: not a P-256 CA certificate and PKCS#8 key: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  const existing = await store.settings.get(CA_SETTING_KEY);
  if (existing !== null) {
    logger.debug("certificate authority loaded from the store");
    return fromStored(existing, envelope, options.now);
  }
  const ca = await createCertificateAuthority(now);
  const record: StoredCa = {
    v: 1,
    certificatePem: ca.certificatePem,
    privateKeyCiphertext: await envelope.encrypt(await ca.exportPrivateKeyPem(), CA_SETTING_AAD),
  };
  if (await store.settings.putIfAbsent(CA_SETTING_KEY, JSON.stringify(record))) {
    logger.info("generated a new certificate authority and stored it (key envelope-encrypted)");
    return ca;
  }
  // Another Manager stored its CA between our read and our write: use that one.
  const winner = await store.settings.get(CA_SETTING_KEY);
  if (winner === null)
    throw new KubeNovaError("KN-500", `settings "${CA_SETTING_KEY}" vanished while starting`);
  logger.info("another Manager generated the certificate authority first; using it");
  return fromStored(winner, envelope, options.now);
}

export interface BrokerServerCertificate {
  certificatePem: string;
  privateKeyPem: string;
  /** The CA operators' client certificates chain to: what the broker trusts (`requestCert`). */
  caPem: string;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIp = (name: string) => IPV4.test(name) || name.includes(":");

/**
 * The broker's TLS server certificate: from KUBENOVA_BROKER_CERT_FILE/KEY_FILE, or issued by the CA for
 * `config.mqtt.serverNames` plus the MQTT listen host when it is a concrete address (not 0.0.0.0 / ::).
 */
export async function loadBrokerServerCertificate(options: {
  ca: CertificateAuthority;
  config: {
    pki: Pick<ManagerConfig["pki"], "brokerCertFile" | "brokerKeyFile">;
    mqtt: Pick<ManagerConfig["mqtt"], "host" | "serverNames">;
  };
  logger: Logger;
  lifetimeDays?: number;
}): Promise<BrokerServerCertificate> {
  const { ca, config, logger } = options;
  if (config.pki.brokerCertFile && config.pki.brokerKeyFile) {
    const certificatePem = await readPem(config.pki.brokerCertFile, "KUBENOVA_BROKER_CERT_FILE");
    const privateKeyPem = await readPem(config.pki.brokerKeyFile, "KUBENOVA_BROKER_KEY_FILE");
    logger.info("broker server certificate loaded from files", { certFile: config.pki.brokerCertFile });
    return { certificatePem, privateKeyPem, caPem: ca.certificatePem };
  }
  const names = new Set(config.mqtt.serverNames);
  if (!["0.0.0.0", "::", "[::]"].includes(config.mqtt.host)) names.add(config.mqtt.host);
  const all = [...names];
  const dnsNames = all.filter((n) => !isIp(n));
  const ipAddresses = all.filter(isIp);
  const issued = await ca.issueServerCertificate({
    commonName: dnsNames[0] ?? ipAddresses[0] ?? "kubenova-broker",
    dnsNames,
    ipAddresses,
    lifetimeDays: options.lifetimeDays ?? 365,
  });
  logger.info("issued the broker server certificate", { dnsNames, ipAddresses, notAfter: issued.notAfter });
  return {
    certificatePem: issued.certificatePem,
    privateKeyPem: issued.privateKeyPem,
    caPem: ca.certificatePem,
  };
}
