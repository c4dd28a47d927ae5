/**
 * Renewal over the operator's current identity (DESIGN.md §4): the operator proves it holds the private key of a
 * certificate this CA issued by signing a short-lived compact JWS (ES256, RFC 7515) whose `x5c` header carries that
 * certificate. Verified with WebCrypto and @peculiar/x509 only (jose stays inside manager/auth).
 *
 * Header `{ alg: "ES256", typ: "kubenova-renewal+jwt", x5c: [<DER base64>] }`,
 * claims `{ sub: <cluster id>, csr_sha256: <hex SHA-256 of the CSR PEM as sent>, iat, exp }`, `exp - iat ≤ 300`.
 * Every failure is KN-401: the caller is not who it claims to be.
 */
// @peculiar/x509 needs the metadata polyfill loaded before it (NOTES.md).
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { KubeNovaError } from "../../shared/errors.ts";
import { EC_ALGORITHM } from "../../shared/pki.ts";

export const RENEWAL_PROOF_TYPE = "kubenova-renewal+jwt";
export const RENEWAL_PROOF_MAX_LIFETIME_SECONDS = 300;
/** Clock skew tolerated between a datacenter and the Manager on `iat`/`exp`. */
const SKEW_SECONDS = 60;

export interface VerifiedProof {
  /** Serial of the presented certificate, lowercase hex as parsed. */
  serial: string;
  /** SHA-256 of its DER, hex. */
  fingerprint: string;
  notAfter: Date;
}

const refuse = (reason: string) =>
  new KubeNovaError("KN-401", `renewal proof refused: ${reason}`, { context: { reason } });

const utf8 = new TextEncoder();

function decodeSegment(segment: string | undefined, what: string): Uint8Array<ArrayBuffer> {
  if (segment === undefined || !/^[A-Za-z0-9_-]+$/.test(segment)) throw refuse(`${what} is not base64url`);
  return new Uint8Array(Buffer.from(segment, "base64url"));
}

function decodeJson(segment: string | undefined, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(decodeSegment(segment, what)).toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch (error) {
    if (error instanceof KubeNovaError) throw error;
    throw refuse(`${what} is not a JSON object`);
  }
}

export async function sha256Hex(text: string): Promise<string> {
  return Buffer.from(await crypto.subtle.digest("SHA-256", utf8.encode(text))).toString("hex");
}

/** Checks the JWS, its certificate's chain to `caCertificatePem`, validity at `now`, CN, `sub` and the CSR hash. */
export async function verifyRenewalProof(options: {
  proof: string;
  csrPem: string;
  clusterId: string;
  caCertificatePem: string;
  now: Date;
}): Promise<VerifiedProof> {
  const parts = options.proof.split(".");
  if (parts.length !== 3) throw refuse("not a compact JWS");
  const header = decodeJson(parts[0], "header");
  const claims = decodeJson(parts[1], "payload");
  const signature = decodeSegment(parts[2], "signature");
  // alg pinned: no "none", no HMAC confusion.
  if (header.alg !== "ES256") throw refuse("alg must be ES256");
  if (header.typ !== undefined && header.typ !== RENEWAL_PROOF_TYPE)
    throw refuse(`typ must be ${RENEWAL_PROOF_TYPE}`);
  if (header.crit !== undefined) throw refuse("crit is not supported");
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== "string") {
    throw refuse("x5c must hold exactly the current certificate");
  }
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(Buffer.from(x5c[0], "base64")));
  } catch {
    throw refuse("x5c[0] is not a DER certificate");
  }
  const ca = new x509.X509Certificate(options.caCertificatePem);
  const caKey = await ca.publicKey.export(EC_ALGORITHM, ["verify"]);
  const chains =
    cert.issuer === ca.subject &&
    (await cert.verify({ publicKey: caKey, signatureOnly: true }).catch(() => false));
  if (!chains) throw refuse("the certificate was not issued by this Manager's CA");
  const now = options.now.getTime();
  if (now < cert.notBefore.getTime() || now >= cert.notAfter.getTime())
    throw refuse("the certificate has expired");
  const cn = cert.subjectName.getField("CN");
  if (cn.length !== 1 || cn[0] !== options.clusterId)
    throw refuse("the certificate belongs to another cluster");
  if (claims.sub !== options.clusterId) throw refuse("sub must be the cluster id");

  const publicKey = await cert.publicKey.export(EC_ALGORITHM, ["verify"]).catch(() => null);
  if (publicKey === null) throw refuse("the certificate key is not ECDSA P-256");
  const signed = utf8.encode(`${parts[0]}.${parts[1]}`);
  const valid =
    signature.byteLength === 64 &&
    (await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature, signed));
  if (!valid) throw refuse("the signature does not verify with the certificate's key");

  const { iat, exp } = claims;
  if (typeof iat !== "number" || typeof exp !== "number" || !Number.isFinite(iat) || !Number.isFinite(exp)) {
    throw refuse("iat and exp must be numbers");
  }
  const nowSeconds = now / 1000;
  if (exp <= iat || exp - iat > RENEWAL_PROOF_MAX_LIFETIME_SECONDS) {
    throw refuse(`exp must be within ${RENEWAL_PROOF_MAX_LIFETIME_SECONDS} s after iat`);
  }
  if (exp < nowSeconds - SKEW_SECONDS || iat > nowSeconds + SKEW_SECONDS) throw refuse("the proof is stale");
  if (claims.csr_sha256 !== (await sha256Hex(options.csrPem)))
    throw refuse("csr_sha256 does not match the CSR");

  const fingerprint = Buffer.from(await crypto.subtle.digest("SHA-256", cert.rawData)).toString("hex");
  return { serial: normalizeSerial(cert.serialNumber), fingerprint, notAfter: cert.notAfter };
}

/** Serials compare as lowercase hex without leading zero bytes' text. */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^(00)+(?=.)/, "");
}
