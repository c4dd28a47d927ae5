/**
 * @module shared/csr — P-256 key pairs, PEM, and PKCS#10 requests with WebCrypto and a few lines of DER
 * (RFC 2986, RFC 5480, RFC 5758), with no ASN.1 library: the operator enrols and renews with these and stays
 * free of @peculiar/x509, whose import alone costs it ~13 MB of RSS (docs/benchmarks.md). shared/pki.ts
 * re-exports them for the Manager.
 */

export const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der as ArrayBuffer).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block labelled `label`. */
export function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
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

// ── DER (X.690), just what a CSR needs ─────────────────────────────────────────────────────────────────────────

function der(tag: number, content: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = content.length;
  const length =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + length.length + n);
  out[0] = tag;
  out.set(length, 1);
  out.set(content, 1 + length.length);
  return out;
}

const concat = (...parts: Uint8Array[]): Uint8Array<ArrayBuffer> => {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};
const sequence = (...parts: Uint8Array[]) => der(0x30, concat(...parts));

/** A non-negative INTEGER from big-endian bytes: leading zeros dropped, a 0x00 added when the top bit is set. */
function unsignedInteger(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return der(0x02, trimmed[0]! & 0x80 ? concat(new Uint8Array([0]), trimmed) : trimmed);
}

const OID_COMMON_NAME = new Uint8Array([0x06, 0x03, 0x55, 0x04, 0x03]); // 2.5.4.3
const OID_ECDSA_WITH_SHA256 = new Uint8Array([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]); // 1.2.840.10045.4.3.2

/** A PKCS#10 request whose subject is `CN=<commonName>`, signed by the key pair it certifies. */
export async function createCsr(options: { commonName: string; keys: CryptoKeyPair }): Promise<string> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", options.keys.publicKey));
  const subject = sequence(
    der(0x31, sequence(OID_COMMON_NAME, der(0x0c, new TextEncoder().encode(options.commonName)))),
  );
  const info = sequence(
    der(0x02, new Uint8Array([0])), // version 1
    subject,
    spki,
    der(0xa0, new Uint8Array(0)), // attributes [0]: none
  );
  // WebCrypto signs in IEEE P1363 form (r ‖ s); X.509 wants ECDSA-Sig-Value ::= SEQUENCE { r, s } (RFC 5480).
  const p1363 = new Uint8Array(await crypto.subtle.sign(EC_ALGORITHM, options.keys.privateKey, info));
  const signature = sequence(unsignedInteger(p1363.subarray(0, 32)), unsignedInteger(p1363.subarray(32)));
  const request = sequence(
    info,
    sequence(OID_ECDSA_WITH_SHA256),
    der(0x03, concat(new Uint8Array([0]), signature)), // BIT STRING, no unused bits
  );
  return toPem(request, "CERTIFICATE REQUEST");
}
