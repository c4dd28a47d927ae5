/**
 * @module manager/pki — the Manager's certificate authority: issues the broker's server certificate and signs
 * operators' CSRs into client certificates whose CN is the cluster id (DESIGN.md §4).
 */
// @peculiar/x509 needs the metadata polyfill loaded before it (NOTES.md).
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { KubeNovaError } from "../../shared/errors.ts";
import { EC_ALGORITHM, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from "../../shared/pki.ts";

export interface IssuedCertificate {
  certificatePem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateAuthority {
  readonly certificatePem: string;
  /** The CA key as PKCS#8 PEM, for envelope-encrypted storage (never logged, never returned by the API). */
  exportPrivateKeyPem(): Promise<string>;
  issueServerCertificate(options: {
    commonName: string;
    dnsNames: string[];
    ipAddresses: string[];
    lifetimeDays: number;
  }): Promise<IssuedCertificate & { privateKeyPem: string }>;
  /** Signs a CSR whose CN must equal `clusterId`; the certificate allows clientAuth only. */
  signClientCsr(options: {
    csrPem: string;
    clusterId: string;
    lifetimeSeconds: number;
  }): Promise<IssuedCertificate>;
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive INTEGER (RFC 5280 §4.1.2.2)
  return Buffer.from(bytes).toString("hex");
}

/** Backdating absorbs clock skew between the Manager and the datacenters (DESIGN.md §7). */
const BACKDATE_MS = 5 * 60 * 1000;

function invalidCsr(message: string): KubeNovaError {
  return new KubeNovaError("KN-400", `csr: ${message}`, { details: [{ path: "csr", message }] });
}

function makeAuthority(
  cert: x509.X509Certificate,
  keys: CryptoKeyPair,
  now: () => Date,
): CertificateAuthority {
  const certificatePem = cert.toString("pem");
  return {
    certificatePem,
    exportPrivateKeyPem: () => exportPrivateKeyPem(keys.privateKey),
    async issueServerCertificate(options) {
      const serverKeys = await generateKeyPair();
      const notBefore = new Date(now().getTime() - BACKDATE_MS);
      const notAfter = new Date(now().getTime() + options.lifetimeDays * 86_400_000);
      const serialNumber = randomSerial();
      const names = [
        ...options.dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...options.ipAddresses.map((value) => ({ type: "ip" as const, value })),
      ];
      const issued = await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: [{ CN: [options.commonName] }],
        issuer: cert.subject,
        notBefore,
        notAfter,
        signingKey: keys.privateKey,
        publicKey: serverKeys.publicKey,
        signingAlgorithm: EC_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names),
          await x509.AuthorityKeyIdentifierExtension.create(cert),
        ],
      });
      return {
        certificatePem: issued.toString("pem"),
        privateKeyPem: await exportPrivateKeyPem(serverKeys.privateKey),
        serialNumber,
        notBefore,
        notAfter,
      };
    },
    async signClientCsr(options) {
      let csr: x509.Pkcs10CertificateRequest;
      try {
        csr = new x509.Pkcs10CertificateRequest(options.csrPem);
      } catch {
        throw invalidCsr("not a PEM-encoded PKCS#10 certificate request");
      }
      if (!(await csr.verify())) throw invalidCsr("the request's signature does not verify");
      const cn = csr.subjectName.getField("CN");
      if (cn.length !== 1 || cn[0] !== options.clusterId) {
        throw invalidCsr(`the subject must be CN=${options.clusterId} (the cluster id)`);
      }
      const algorithm = csr.publicKey.algorithm as EcKeyAlgorithm;
      if (algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
        throw invalidCsr("the key must be ECDSA P-256");
      }
      const serialNumber = randomSerial();
      const notBefore = new Date(now().getTime() - BACKDATE_MS);
      const notAfter = new Date(now().getTime() + options.lifetimeSeconds * 1000);
      const issued = await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: [{ CN: [options.clusterId] }],
        issuer: cert.subject,
        notBefore,
        notAfter,
        signingKey: keys.privateKey,
        publicKey: await csr.publicKey.export(EC_ALGORITHM, ["verify"]),
        signingAlgorithm: EC_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(cert),
        ],
      });
      return { certificatePem: issued.toString("pem"), serialNumber, notBefore, notAfter };
    },
  };
}

/** A new self-signed CA (ECDSA P-256, pathLen 0: it signs leaf certificates only). */
export async function createCertificateAuthority(
  options: { commonName?: string; lifetimeDays?: number; now?: () => Date } = {},
): Promise<CertificateAuthority> {
  const now = options.now ?? (() => new Date());
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [options.commonName ?? "KubeNova Cluster CA"], O: ["KubeNova"] }],
    notBefore: new Date(now().getTime() - BACKDATE_MS),
    notAfter: new Date(now().getTime() + (options.lifetimeDays ?? 3650) * 86_400_000),
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return makeAuthority(cert, keys, now);
}

/** A CA from its certificate and PKCS#8 key (files, or the envelope-encrypted copy in the store). */
export async function loadCertificateAuthority(options: {
  certificatePem: string;
  privateKeyPem: string;
  now?: () => Date;
}): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(options.certificatePem);
  const privateKey = await importPrivateKeyPem(options.privateKeyPem, true);
  const publicKey = await cert.publicKey.export(EC_ALGORITHM, ["verify"]);
  return makeAuthority(cert, { privateKey, publicKey }, options.now ?? (() => new Date()));
}
