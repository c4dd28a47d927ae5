/**
 * @module shared/pki — key pairs, CSRs and certificate facts for KubeNova's cluster PKI (DESIGN.md §4).
 * ECDSA P-256 through WebCrypto and @peculiar/x509; entry points import "reflect-metadata" first (NOTES.md).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

export const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const match = pem.match(new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`));
  if (!match) throw new Error(`not a PEM ${label}`);
  const bytes = Buffer.from(match[1]!.replace(/\s+/g, ""), "base64");
  return new Uint8Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  );
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Imports a PKCS#8 P-256 private key; `extractable` only where it must be stored again. */
export async function importPrivateKeyPem(pem: string, extractable = false): Promise<CryptoKey> {
  return crypto.subtle.importKey("pkcs8", fromPem(pem, "PRIVATE KEY"), EC_ALGORITHM, extractable, ["sign"]);
}

/** A PKCS#10 request whose subject is `CN=<commonName>`, signed by the key pair it certifies. */
export async function createCsr(options: { commonName: string; keys: CryptoKeyPair }): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [options.commonName] }],
    keys: options.keys,
    signingAlgorithm: EC_ALGORITHM,
  });
  return csr.toString("pem");
}

export interface CertificateInfo {
  subjectCommonName: string | null;
  issuerCommonName: string | null;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the DER, hex. */
  fingerprint256: string;
}

function commonName(name: x509.Name | string): string | null {
  const parsed = typeof name === "string" ? new x509.Name(name) : name;
  return parsed.getField("CN")[0] ?? null;
}

export async function certificateInfo(pem: string): Promise<CertificateInfo> {
  const cert = new x509.X509Certificate(pem);
  const digest = await crypto.subtle.digest("SHA-256", cert.rawData);
  return {
    subjectCommonName: commonName(cert.subjectName),
    issuerCommonName: commonName(cert.issuerName),
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    fingerprint256: Buffer.from(digest).toString("hex"),
  };
}

/** When to renew: a jittered point between 70% and 90% of the certificate's lifetime (DESIGN.md §4). */
export function renewalTime(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + Math.round(lifetime * (0.7 + 0.2 * random())));
}
