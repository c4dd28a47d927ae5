/**
 * @module bench/pki — a CA, the broker's server certificate and N real client certificates (CN = cluster id,
 * signed by the Manager's CA code). To keep 10,000 identities affordable they share one P-256 key pair; each
 * certificate is still distinct and verified by the broker on every handshake. Cached per size in the temp dir.
 */
import "reflect-metadata";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCertificateAuthority } from "../manager/pki/ca.ts";
import { uuidv7 } from "../shared/ids.ts";
import { createCsr, exportPrivateKeyPem, generateKeyPair } from "../shared/pki.ts";

export interface BenchPki {
  caPem: string;
  server: { certPem: string; keyPem: string };
  /** Shared by every identity (see the module comment). */
  clientKeyPem: string;
  identities: Array<{ clusterId: string; certPem: string }>;
}

/** Path of a JSON file holding a BenchPki with at least `count` identities. */
export async function benchPki(count: number): Promise<string> {
  const path = join(tmpdir(), `kn-bench-pki-${count}.json`);
  if (existsSync(path) && Date.now() - statSync(path).mtimeMs < 6 * 3600_000) return path;
  const ca = await createCertificateAuthority({});
  const server = await ca.issueServerCertificate({
    commonName: "kubenova-broker",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    lifetimeDays: 1,
  });
  const keys = await generateKeyPair();
  const identities: BenchPki["identities"] = [];
  for (let i = 0; i < count; i++) {
    const clusterId = uuidv7();
    const csrPem = await createCsr({ commonName: clusterId, keys });
    const issued = await ca.signClientCsr({ csrPem, clusterId, lifetimeSeconds: 12 * 3600 });
    identities.push({ clusterId, certPem: issued.certificatePem });
  }
  const pki: BenchPki = {
    caPem: ca.certificatePem,
    server: { certPem: server.certificatePem, keyPem: server.privateKeyPem },
    clientKeyPem: await exportPrivateKeyPem(keys.privateKey),
    identities,
  };
  writeFileSync(path, JSON.stringify(pki));
  return path;
}

export function loadPki(path: string): BenchPki {
  return JSON.parse(readFileSync(path, "utf8")) as BenchPki;
}
