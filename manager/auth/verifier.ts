/**
 * Access-token verification (DESIGN.md §4 "REST auth"). Every failure is a `KN-401` whose message says what was
 * wrong without echoing the token; an unreachable remote JWKS is a `KN-503` (the token may be fine).
 */
import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import { KubeNovaError } from "../../shared/errors.ts";
import { ACCESS_TOKEN_USE, type Principal, principalFromClaims, TokenClaims } from "./claims.ts";

/** Tokens longer than this are refused before any decoding (a KubeNova token is well under 1 KiB). */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** HS256 secrets shorter than this are refused (RFC 7518 §3.2: key at least as long as the hash output). */
export const MIN_HS256_SECRET_BYTES = 32;
/** Upper bound for the clock tolerance: more would let expired tokens live noticeably longer. */
export const MAX_CLOCK_TOLERANCE_SECONDS = 60;
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

export type AsymmetricAlgorithm = "RS256" | "ES256";
export const ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = ["RS256", "ES256"];

/** Where the public keys come from. A URL is fetched by jose with caching and a re-fetch cooldown. */
export type JwksSource =
  | { document: JSONWebKeySet | string }
  | { path: string }
  | { url: string; cooldownMs?: number; cacheMaxAgeMs?: number; timeoutMs?: number };

interface CommonVerifierOptions {
  /** Expected `iss`. */
  issuer: string;
  /** Expected `aud` (the token must carry it). */
  audience: string;
  /** Leeway for `exp`/`nbf`/`iat`, 0…60 s; default 30 s. */
  clockToleranceSeconds?: number;
  /** Injectable clock for tests. */
  now?: () => Date;
}

export type TokenVerifierOptions = CommonVerifierOptions &
  (
    | { algorithm: "HS256"; secret: string | Uint8Array }
    | { algorithm: "JWKS"; jwks: JwksSource; algorithms?: readonly AsymmetricAlgorithm[] }
  );

export interface TokenVerifier {
  /** The principal a valid access token stands for; throws `KN-401` (or `KN-503`, see module doc) otherwise. */
  verify(token: string): Promise<Principal>;
  /**
   * The principal of a token `verify` accepted and still remembers, within its time window — synchronously, no
   * signature check; undefined otherwise (the caller then goes through `verify`).
   */
  peek?(token: string): Principal | undefined;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Header parameters that point at, or embed, a key. jose ignores them; KubeNova refuses tokens carrying them. */
const KEY_REFERENCE_HEADERS = ["jku", "x5u", "jwk", "x5c"] as const;
const MAX_KID_LENGTH = 256;
/** Verified tokens remembered at most this many at once (oldest forgotten first)… */
export const VERIFIED_CACHE_ENTRIES = 10_000;
/**
 * …and for at most this long (or the remote JWKS cache age, if shorter), so a key withdrawn from a JWKS stops
 * opening the API as soon as jose would have noticed it.
 */
export const VERIFIED_CACHE_MS = 60_000;

interface Verified {
  principal: Principal;
  /** Epoch ms from which the token is accepted (nbf/iat minus the tolerance). */
  from: number;
  /** Epoch ms until which it is accepted: exp plus the tolerance, capped by the cache lifetime. */
  until: number;
}

const unauthenticated = (message: string, reason: string): KubeNovaError =>
  new KubeNovaError("KN-401", message, { context: { reason } });

/** UTF-8 bytes of an HS256 secret; throws a plain `Error` (a configuration problem) when it is too short. */
export function hs256SecretBytes(secret: string | Uint8Array): Uint8Array {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  if (bytes.byteLength < MIN_HS256_SECRET_BYTES) {
    throw new Error(
      `the JWT HS256 secret must be at least ${MIN_HS256_SECRET_BYTES} bytes (got ${bytes.byteLength})`,
    );
  }
  return bytes;
}

function jwksUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`the JWKS URL is not a valid URL`);
  }
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname);
  // Keys fetched over plain HTTP could be replaced in transit, which forges every token: HTTPS except on loopback.
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && loopback)) {
    throw new Error("the JWKS URL must use https (plain http is allowed only for loopback addresses)");
  }
  return parsed;
}

function localJwks(source: { document: JSONWebKeySet | string } | { path: string }): JWTVerifyGetKey {
  let document: unknown;
  if ("path" in source) {
    let text: string;
    try {
      text = readFileSync(source.path, "utf8");
    } catch (error) {
      throw new Error(`cannot read the JWKS file ${source.path}`, { cause: error });
    }
    document = parseJwksJson(text, `the JWKS file ${source.path}`);
  } else {
    document =
      typeof source.document === "string"
        ? parseJwksJson(source.document, "the JWKS document")
        : source.document;
  }
  try {
    return createLocalJWKSet(document as JSONWebKeySet);
  } catch (error) {
    throw new Error("the JWKS document is not a valid JSON Web Key Set", { cause: error });
  }
}

function parseJwksJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON`, { cause: error });
  }
}

/** The claim names jose reports are our own option names, so they are safe to put into a message. */
function describeJoseError(error: unknown, remote: boolean): KubeNovaError {
  if (error instanceof joseErrors.JWTExpired) return unauthenticated("token has expired", "expired");
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "nbf":
        return unauthenticated("token is not valid yet (nbf)", "not_yet_valid");
      case "exp":
        return error.reason === "missing"
          ? unauthenticated("token has no expiry (exp)", "missing_exp")
          : unauthenticated("token expiry (exp) is invalid", "invalid_exp");
      case "iss":
        return error.reason === "missing"
          ? unauthenticated("token has no issuer (iss)", "missing_iss")
          : unauthenticated("token issuer (iss) is not accepted", "wrong_iss");
      case "aud":
        return error.reason === "missing"
          ? unauthenticated("token has no audience (aud)", "missing_aud")
          : unauthenticated("token audience (aud) is not accepted", "wrong_aud");
      default:
        return unauthenticated(`token claim "${error.claim}" is invalid`, "invalid_claim");
    }
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return unauthenticated("token signature is invalid", "bad_signature");
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return unauthenticated("token algorithm is not accepted", "alg_not_allowed");
  }
  if (error instanceof joseErrors.JOSENotSupported) {
    return unauthenticated("token uses an unsupported algorithm or critical header (crit)", "unsupported");
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return unauthenticated("token signing key (kid) is unknown", "unknown_kid");
  }
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return unauthenticated("token signing key (kid) is ambiguous", "ambiguous_kid");
  }
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) {
    return unauthenticated("token is malformed", "malformed");
  }
  // The key server timed out, answered non-200 (a plain JOSEError) or sent a broken set: not the caller's fault.
  if (
    error instanceof joseErrors.JWKSTimeout ||
    error instanceof joseErrors.JWKSInvalid ||
    (error instanceof joseErrors.JOSEError && error.code === "ERR_JOSE_GENERIC")
  ) {
    return new KubeNovaError("KN-503", "the token signing keys are unavailable", { cause: error });
  }
  if (error instanceof joseErrors.JOSEError) {
    return unauthenticated("token could not be verified", "unverifiable");
  }
  // Not jose's own error. With a remote JWKS that is the fetch failing (network); otherwise a bug.
  return remote
    ? new KubeNovaError("KN-503", "the token signing keys are unavailable", { cause: error })
    : new KubeNovaError("KN-500", "token verification failed unexpectedly", { cause: error });
}

/** `typ` (RFC 7515 §4.1.9) may be absent or `JWT`, compared case-insensitively without `application/`. */
function isJwtType(typ: unknown): boolean {
  if (typ === undefined) return true;
  if (typeof typ !== "string") return false;
  return typ.toLowerCase().replace(/^application\//, "") === "jwt";
}

/**
 * A verifier for KubeNova access tokens. Construction validates the configuration and throws a plain `Error`
 * naming what is wrong (short secret, unreadable JWKS, insecure URL, tolerance out of range).
 *
 * Checks, in order: size ≤ 8 KiB and compact-JWS shape (before any decoding); protected header (`alg` in the pinned
 * list, no `jku`/`x5u`/`jwk`/`x5c`, `typ` absent or `JWT`, `kid` present in JWKS mode); signature; `exp` (required),
 * `nbf`, `iss`, `aud` with the clock tolerance; then the KubeNova claims (`token_use: "access"`, role and scope).
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (
    !Number.isFinite(clockToleranceSeconds) ||
    clockToleranceSeconds < 0 ||
    clockToleranceSeconds > MAX_CLOCK_TOLERANCE_SECONDS
  ) {
    throw new Error(`the JWT clock tolerance must be between 0 and ${MAX_CLOCK_TOLERANCE_SECONDS} seconds`);
  }
  if (options.issuer.length === 0 || options.audience.length === 0) {
    throw new Error("the JWT issuer and audience must not be empty");
  }
  const now = options.now ?? (() => new Date());

  let algorithms: string[];
  let key: Uint8Array | JWTVerifyGetKey;
  let requireKid: boolean;
  let remote = false;
  /** How long a verified token is remembered; never longer than the remote key set is trusted unrefreshed. */
  let rememberMs = VERIFIED_CACHE_MS;
  if (options.algorithm === "HS256") {
    algorithms = ["HS256"];
    key = hs256SecretBytes(options.secret);
    requireKid = false;
  } else {
    algorithms = [...(options.algorithms ?? ASYMMETRIC_ALGORITHMS)];
    if (algorithms.length === 0 || algorithms.some((alg) => !ASYMMETRIC_ALGORITHMS.includes(alg as never))) {
      throw new Error(
        `the JWKS algorithms must be a non-empty subset of ${ASYMMETRIC_ALGORITHMS.join(", ")}`,
      );
    }
    const source = options.jwks;
    remote = "url" in source;
    if ("url" in source) rememberMs = Math.min(rememberMs, source.cacheMaxAgeMs ?? 10 * 60_000);
    key =
      "url" in source
        ? createRemoteJWKSet(jwksUrl(source.url), {
            cooldownDuration: source.cooldownMs ?? 30_000,
            cacheMaxAge: source.cacheMaxAgeMs ?? 10 * 60_000,
            timeoutDuration: source.timeoutMs ?? 5_000,
          })
        : localJwks(source);
    // With several keys (rotation) a token without kid would match more than one: demand it.
    requireKid = true;
  }

  const checkHeader = (token: string): void => {
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
    } catch {
      throw unauthenticated("token header is malformed", "malformed");
    }
    // Exact, case-sensitive match: "none", "None", "NONE", "HS256" against a JWKS are all refused here.
    if (typeof header.alg !== "string" || !algorithms.includes(header.alg)) {
      throw unauthenticated(`token algorithm is not accepted (expected ${algorithms.join(" or ")})`, "alg");
    }
    for (const name of KEY_REFERENCE_HEADERS) {
      if (Object.hasOwn(header, name)) {
        throw unauthenticated(`token header carries "${name}"; key references are not accepted`, "key_ref");
      }
    }
    if (!isJwtType(header.typ)) {
      throw unauthenticated("token type (typ) is not an access token", "typ");
    }
    if (requireKid && (typeof header.kid !== "string" || header.kid.length === 0)) {
      throw unauthenticated("token has no key id (kid)", "missing_kid");
    }
    if (typeof header.kid === "string" && header.kid.length > MAX_KID_LENGTH) {
      throw unauthenticated("token key id (kid) is too long", "unknown_kid");
    }
  };

  /**
   * Signature checks dominate an authenticated GET (WebCrypto HMAC/ECDSA through jose: ~25–50 µs of a ~100 µs
   * request). A token that passed every check is remembered by its exact compact form — header, claims and
   * signature, so nothing else can match it — and only its time window is re-checked on the next request.
   * Failures are never cached: a forged token pays the full price every time.
   */
  const verified = new Map<string, Verified>();
  const remember = (token: string, principal: Principal, claims: TokenClaims, at: number): void => {
    const tolerance = clockToleranceSeconds * 1000;
    const notBefore = Math.max(claims.nbf ?? 0, claims.iat ?? 0) * 1000;
    if (verified.size >= VERIFIED_CACHE_ENTRIES) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
    verified.set(token, {
      principal,
      from: notBefore - tolerance,
      until: Math.min(claims.exp * 1000 + tolerance, at + rememberMs),
    });
  };

  return {
    peek(token: string): Principal | undefined {
      const hit = verified.get(token);
      if (hit === undefined) return undefined;
      const at = now().getTime();
      return at >= hit.from && at < hit.until ? { ...hit.principal } : undefined;
    },
    async verify(token: string): Promise<Principal> {
      if (typeof token !== "string" || token.length === 0) throw unauthenticated("token is empty", "empty");
      const currentDate = now();
      const hit = verified.get(token);
      if (hit) {
        const at = currentDate.getTime();
        // Outside the window the full path below runs again and answers exactly as it would have uncached.
        if (at >= hit.from && at < hit.until) return { ...hit.principal };
        verified.delete(token);
      }
      if (token.length > MAX_TOKEN_BYTES) {
        throw unauthenticated(`token is larger than ${MAX_TOKEN_BYTES} bytes`, "oversize");
      }
      if (!COMPACT_JWS.test(token)) throw unauthenticated("token is not a compact JWT", "malformed");
      if (token.endsWith(".")) throw unauthenticated("token is unsigned", "unsigned");
      checkHeader(token);

      let payload: unknown;
      try {
        const result = await jwtVerify(token, key as JWTVerifyGetKey, {
          algorithms,
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: clockToleranceSeconds,
          requiredClaims: ["exp"],
          currentDate,
        });
        payload = result.payload;
      } catch (error) {
        throw describeJoseError(error, remote);
      }

      const useClaim = (payload as { token_use?: unknown }).token_use;
      if (useClaim !== ACCESS_TOKEN_USE) {
        throw unauthenticated(
          `token is not an access token (token_use must be "${ACCESS_TOKEN_USE}")`,
          "use",
        );
      }
      const parsed = TokenClaims.safeParse(payload);
      if (!parsed.success) {
        const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join(".") || "(claims)"))];
        throw unauthenticated(`token claims are invalid: ${fields.join(", ")}`, "claims");
      }
      const claims = parsed.data;
      // jose checks iat only with maxTokenAge; a token issued in the future signals a broken or hostile issuer.
      if (claims.iat !== undefined && claims.iat > currentDate.getTime() / 1000 + clockToleranceSeconds) {
        throw unauthenticated("token was issued in the future (iat)", "iat");
      }
      const principal = principalFromClaims(claims);
      remember(token, principal, claims, currentDate.getTime());
      return { ...principal };
    },
  };
}
