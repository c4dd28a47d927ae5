/**
 * @module shared/enrolment-client — the operator's side of cluster enrolment (DESIGN.md §4), also used by tests:
 * `enroll` trades the one-time bootstrap token and a CSR for a client certificate; `renew` gets a new one over the
 * current identity with a proof of possession (compact JWS, ES256, `x5c` = the current certificate). The private
 * keys never leave the caller. Standard fetch and WebCrypto only.
 */
// csr.ts, not pki.ts: the operator's enrolment must not load @peculiar/x509 (its RSS budget, docs/benchmarks.md).
import { createCsr, fromPem } from "./csr.ts";

export interface EnrolmentResult {
  clusterId: string;
  certificate: string;
  caBundle: string;
  brokerUrl: string;
  renewAfter: string;
  expiresAt: string;
}

export class EnrolmentError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
    this.name = "EnrolmentError";
  }
}

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<EnrolmentResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below with the status
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new EnrolmentError(
      response.status,
      error?.code ?? null,
      error?.message ?? `HTTP ${response.status}`,
    );
  }
  return parsed as EnrolmentResult;
}

const clusterPath = (managerUrl: string, cluster: string, action: string) =>
  `${managerUrl.replace(/\/+$/, "")}/api/v1/clusters/${encodeURIComponent(cluster)}/${action}`;

/**
 * First enrolment: the CSR's CN is `clusterId`, which the certificate will carry.
 */
export async function enroll(options: {
  managerUrl: string;
  /** The path segment: the cluster's name or id (default: the id). */
  cluster?: string;
  clusterId: string;
  bootstrapToken: string;
  keys: CryptoKeyPair;
}): Promise<EnrolmentResult> {
  const csr = await createCsr({ commonName: options.clusterId, keys: options.keys });
  return post(
    clusterPath(options.managerUrl, options.cluster ?? options.clusterId, "enroll"),
    { csr },
    { authorization: `Bearer ${options.bootstrapToken}` },
  );
}

const b64url = (bytes: Uint8Array | ArrayBuffer) => Buffer.from(bytes as ArrayBuffer).toString("base64url");

/** The renewal proof: a compact ES256 JWS signed with the current key, carrying the current certificate. */
export async function createRenewalProof(options: {
  clusterId: string;
  currentCertPem: string;
  currentKey: CryptoKey;
  csrPem: string;
  now?: Date;
  lifetimeSeconds?: number;
}): Promise<string> {
  const der = fromPem(options.currentCertPem, "CERTIFICATE");
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(options.csrPem));
  const header = { alg: "ES256", typ: "kubenova-renewal+jwt", x5c: [Buffer.from(der).toString("base64")] };
  const claims = {
    sub: options.clusterId,
    csr_sha256: Buffer.from(digest).toString("hex"),
    iat,
    exp: iat + (options.lifetimeSeconds ?? 120),
  };
  const input = `${b64url(new TextEncoder().encode(JSON.stringify(header)))}.${b64url(new TextEncoder().encode(JSON.stringify(claims)))}`;
  // WebCrypto ECDSA signatures are IEEE P1363 (r ‖ s), exactly the JWS ES256 format (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    options.currentKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${b64url(signature)}`;
}

/** Renewal: a new certificate for `newKeys`, authorized by the current certificate and key. */
export async function renew(options: {
  managerUrl: string;
  /** The path segment: the cluster's name or id (default: the id). */
  cluster?: string;
  clusterId: string;
  currentCertPem: string;
  currentKey: CryptoKey;
  newKeys: CryptoKeyPair;
}): Promise<EnrolmentResult> {
  const csr = await createCsr({ commonName: options.clusterId, keys: options.newKeys });
  const proof = await createRenewalProof({
    clusterId: options.clusterId,
    currentCertPem: options.currentCertPem,
    currentKey: options.currentKey,
    csrPem: csr,
  });
  return post(clusterPath(options.managerUrl, options.cluster ?? options.clusterId, "renew"), { csr, proof });
}
