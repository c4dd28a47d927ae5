/**
 * Access-token issuing: the tokens `POST /api/v1/tokens` hands out and the ones tests use. The claims match what
 * `createTokenVerifier` demands (`claims.ts`); authority to issue is decided beforehand by `roles.ts`.
 */
import { importJWK, type JWK, SignJWT } from "jose";
import type { Role } from "../../shared/api/models.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { ACCESS_TOKEN_USE, roleScopeProblem } from "./claims.ts";
import { type AsymmetricAlgorithm, hs256SecretBytes } from "./verifier.ts";

/** A private JWK (RFC 7517), re-exported so callers outside `manager/auth` need not import jose. */
export type PrivateJwk = JWK;

interface CommonSignerOptions {
  issuer: string;
  audience: string;
  /** Injectable clock for tests. */
  now?: () => Date;
}

export type TokenSignerOptions = CommonSignerOptions &
  (
    | { algorithm: "HS256"; secret: string | Uint8Array }
    | { algorithm: AsymmetricAlgorithm; privateKey: PrivateJwk; keyId: string }
  );

export interface SignClaims {
  subject: string;
  role: Role;
  tenant?: string | undefined;
  project?: string | undefined;
  ttlSeconds: number;
}

export interface SignedToken {
  token: string;
  expiresAt: Date;
}

export interface TokenSigner {
  /** Signs an access token; throws `KN-400` for an impossible role/scope or a non-positive TTL. */
  sign(claims: SignClaims): Promise<SignedToken>;
}

/**
 * A signer for KubeNova access tokens (`typ: JWT`, `token_use: "access"`, `iat` = `nbf` = now, `exp`, `jti` a
 * UUIDv7). Construction throws a plain `Error` for a short HS256 secret or a private key without `kid`.
 */
export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  const now = options.now ?? (() => new Date());
  let getKey: () => Promise<CryptoKey | Uint8Array>;
  let keyId: string | undefined;
  if (options.algorithm === "HS256") {
    const secret = hs256SecretBytes(options.secret);
    getKey = () => Promise.resolve(secret);
  } else {
    if (options.keyId.length === 0) throw new Error("the JWT signing key needs a key id (kid)");
    if (options.privateKey.d === undefined) throw new Error("the JWT signing key must be a private key");
    keyId = options.keyId;
    const { algorithm, privateKey } = options;
    // Imported once, on first use, so construction stays synchronous; a bad key rejects the first sign().
    let imported: Promise<CryptoKey | Uint8Array> | undefined;
    getKey = () => {
      imported ??= importJWK(privateKey, algorithm) as Promise<CryptoKey | Uint8Array>;
      return imported;
    };
  }

  return {
    async sign(claims: SignClaims): Promise<SignedToken> {
      const problem = roleScopeProblem(claims);
      if (problem !== null) throw new KubeNovaError("KN-400", problem);
      if (!Number.isSafeInteger(claims.ttlSeconds) || claims.ttlSeconds <= 0) {
        throw new KubeNovaError("KN-400", "ttlSeconds must be a positive integer");
      }
      if (claims.subject.length === 0) throw new KubeNovaError("KN-400", "subject must not be empty");
      const issuedAt = Math.floor(now().getTime() / 1000);
      const expiresAtSeconds = issuedAt + claims.ttlSeconds;
      const payload: Record<string, string> = { role: claims.role, token_use: ACCESS_TOKEN_USE };
      if (claims.tenant !== undefined) payload.tenant = claims.tenant;
      if (claims.project !== undefined) payload.project = claims.project;
      const token = await new SignJWT(payload)
        .setProtectedHeader({
          alg: options.algorithm,
          typ: "JWT",
          ...(keyId === undefined ? {} : { kid: keyId }),
        })
        .setSubject(claims.subject)
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setIssuedAt(issuedAt)
        .setNotBefore(issuedAt)
        .setExpirationTime(expiresAtSeconds)
        .setJti(uuidv7())
        .sign(await getKey());
      return { token, expiresAt: new Date(expiresAtSeconds * 1000) };
    },
  };
}
