/**
 * @module shared/pki — key pairs, CSRs and certificate facts for KubeNova's cluster PKI (DESIGN.md §4).
 * ECDSA P-256 through WebCrypto and @peculiar/x509; entry points import "reflect-metadata" first (NOTES.md).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

// Keys, PEM and CSRs live in csr.ts, free of @peculiar/x509, so the operator can enrol without loading it.
export {
  createCsr,
  EC_ALGORITHM,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
} from "./csr.ts";

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
