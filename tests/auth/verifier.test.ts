import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
} from "jose";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import {
  createTokenVerifier,
  MAX_TOKEN_BYTES,
  type TokenVerifier,
  type TokenVerifierOptions,
} from "../../manager/auth/verifier.ts";
import { KubeNovaError } from "../../shared/errors.ts";

const ISSUER = "https://kubenova.test";
const AUDIENCE = "kubenova-api";
const NOW = new Date("2031-03-04T05:06:07Z");
const nowSeconds = Math.floor(NOW.getTime() / 1000);
const SECRET = "0123456789abcdef0123456789abcdef-test-secret";

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

type KeyPair = { privateJwk: JWK; publicJwk: JWK; privateKey: CryptoKey; publicKey: CryptoKey };

async function makeKeyPair(alg: "RS256" | "ES256", kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { privateJwk, publicJwk, privateKey, publicKey };
}

function validClaims(overrides: JWTPayload = {}): JWTPayload {
  return {
    sub: "alice",
    role: "tenantOwner",
    tenant: "acme",
    token_use: "access",
    iss: ISSUER,
    aud: AUDIENCE,
    iat: nowSeconds - 10,
    nbf: nowSeconds - 10,
    exp: nowSeconds + 600,
    jti: "0190c1a0-0000-7000-8000-000000000000",
    ...overrides,
  };
}

/** Signs exactly the header and claims given (jose adds nothing), so tests can forge whatever they like. */
async function signRaw(
  header: JWTHeaderParameters,
  claims: JWTPayload,
  key: CryptoKey | Uint8Array,
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

async function expectUnauthenticated(verifier: TokenVerifier, token: string, messagePart?: RegExp) {
  let caught: unknown;
  try {
    await verifier.verify(token);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(KubeNovaError);
  const error = caught as KubeNovaError;
  expect(error.code).toBe("KN-401");
  // The message says what is wrong but never repeats the token or any of its segments.
  for (const part of token.split(".").filter((segment) => segment.length >= 8)) {
    expect(error.message).not.toContain(part);
  }
  if (messagePart) expect(error.message).toMatch(messagePart);
  return error;
}

const verifierOptions = { issuer: ISSUER, audience: AUDIENCE, now: () => NOW } as const;

describe("round trips", () => {
  test("HS256: sign then verify yields the principal", async () => {
    const signer = createTokenSigner({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
    const verifier = createTokenVerifier({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
    const { token, expiresAt } = await signer.sign({
      subject: "alice",
      role: "projectDev",
      tenant: "acme",
      project: "web",
      ttlSeconds: 3600,
    });
    expect(expiresAt.getTime()).toBe((nowSeconds + 3600) * 1000);
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      subject: "alice",
      role: "projectDev",
      tenant: "acme",
      project: "web",
      expiresAt,
    });
    expect(principal.tokenId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const header = JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString());
    expect(header).toEqual({ alg: "HS256", typ: "JWT" });
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
    expect(payload).toMatchObject({ token_use: "access", iat: nowSeconds, nbf: nowSeconds, iss: ISSUER });
  });

  test.each(["RS256", "ES256"] as const)(
    "%s: sign with a private JWK, verify against a JWKS",
    async (alg) => {
      const pair = await makeKeyPair(alg, `${alg}-key`);
      const signer = createTokenSigner({
        algorithm: alg,
        privateKey: pair.privateJwk,
        keyId: `${alg}-key`,
        ...verifierOptions,
      });
      const verifier = createTokenVerifier({
        algorithm: "JWKS",
        jwks: { document: { keys: [pair.publicJwk] } },
        ...verifierOptions,
      });
      const { token } = await signer.sign({ subject: "ops-bot", role: "ops", ttlSeconds: 60 });
      expect(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString())).toEqual({
        alg,
        typ: "JWT",
        kid: `${alg}-key`,
      });
      expect(await verifier.verify(token)).toMatchObject({ subject: "ops-bot", role: "ops", tenant: null });
    },
  );

  test("a JWKS may be given as a JSON string or a file path", async () => {
    const pair = await makeKeyPair("ES256", "file-key");
    const path = `${process.env.TMPDIR ?? "/tmp"}/kn-jwks-${crypto.randomUUID()}.json`;
    await Bun.write(path, JSON.stringify({ keys: [pair.publicJwk] }));
    const signer = createTokenSigner({
      algorithm: "ES256",
      privateKey: pair.privateJwk,
      keyId: "file-key",
      ...verifierOptions,
    });
    const { token } = await signer.sign({ subject: "bob", role: "readOnly", ttlSeconds: 60 });
    for (const jwks of [{ path }, { document: JSON.stringify({ keys: [pair.publicJwk] }) }]) {
      const verifier = createTokenVerifier({ algorithm: "JWKS", jwks, ...verifierOptions });
      expect((await verifier.verify(token)).role).toBe("readOnly");
    }
  });
});

describe("configuration", () => {
  test("refuses an HS256 secret under 32 bytes", () => {
    expect(() =>
      createTokenVerifier({ algorithm: "HS256", secret: "x".repeat(31), ...verifierOptions }),
    ).toThrow(/at least 32 bytes/);
    expect(() => createTokenSigner({ algorithm: "HS256", secret: "short", ...verifierOptions })).toThrow(
      /at least 32 bytes/,
    );
    // 11 × "é" is 22 bytes in UTF-8 but 11 characters: bytes count, not characters.
    expect(() =>
      createTokenVerifier({ algorithm: "HS256", secret: "é".repeat(16), ...verifierOptions }),
    ).not.toThrow();
    expect(() =>
      createTokenVerifier({ algorithm: "HS256", secret: "é".repeat(15), ...verifierOptions }),
    ).toThrow();
  });

  test("refuses a clock tolerance above 60 s, foreign algorithms and insecure JWKS URLs", () => {
    const jwks = { document: { keys: [] } };
    expect(() =>
      createTokenVerifier({
        algorithm: "HS256",
        secret: SECRET,
        ...verifierOptions,
        clockToleranceSeconds: 61,
      }),
    ).toThrow(/clock tolerance/);
    expect(() =>
      createTokenVerifier({
        algorithm: "JWKS",
        jwks,
        algorithms: ["HS256"] as unknown as ["RS256"],
        ...verifierOptions,
      }),
    ).toThrow(/subset/);
    expect(() =>
      createTokenVerifier({
        algorithm: "JWKS",
        jwks: { url: "http://idp.example.com/jwks" },
        ...verifierOptions,
      }),
    ).toThrow(/https/);
    expect(() =>
      createTokenVerifier({ algorithm: "JWKS", jwks: { document: "{" }, ...verifierOptions }),
    ).toThrow(/not valid JSON/);
  });
});

describe("forged and invalid tokens answer KN-401", () => {
  let rsa: KeyPair;
  let ec: KeyPair;
  let attacker: KeyPair;
  let jwksVerifier: TokenVerifier;
  let hsVerifier: TokenVerifier;
  let keyServer: ReturnType<typeof Bun.serve>;
  let keyServerRequests = 0;

  beforeAll(async () => {
    [rsa, ec, attacker] = await Promise.all([
      makeKeyPair("RS256", "rsa-1"),
      makeKeyPair("ES256", "ec-1"),
      makeKeyPair("RS256", "rsa-1"), // same kid as the real key: only the signature can tell them apart
    ]);
    jwksVerifier = createTokenVerifier({
      algorithm: "JWKS",
      jwks: { document: { keys: [rsa.publicJwk, ec.publicJwk] } },
      ...verifierOptions,
    });
    hsVerifier = createTokenVerifier({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
    // Serves the attacker's keys; a verifier that followed jku/x5u would fetch from here.
    keyServer = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => {
        keyServerRequests += 1;
        return Response.json({ keys: [attacker.publicJwk] });
      },
    });
  });
  afterAll(async () => {
    await keyServer.stop(true);
  });

  const secretBytes = () => new TextEncoder().encode(SECRET);

  test("the unforged baseline verifies (so every refusal below is the forgery's fault)", async () => {
    const rsToken = await signRaw({ alg: "RS256", typ: "JWT", kid: "rsa-1" }, validClaims(), rsa.privateKey);
    const esToken = await signRaw({ alg: "ES256", kid: "ec-1" }, validClaims(), ec.privateKey);
    const hsToken = await signRaw({ alg: "HS256", typ: "JWT" }, validClaims(), secretBytes());
    expect((await jwksVerifier.verify(rsToken)).tenant).toBe("acme");
    expect((await jwksVerifier.verify(esToken)).tenant).toBe("acme");
    expect((await hsVerifier.verify(hsToken)).tenant).toBe("acme");
  });

  test.each(["none", "None", "NONE", "nOnE"])(
    "alg %s is refused with and without a signature",
    async (alg) => {
      const unsigned = `${b64({ alg, typ: "JWT", kid: "rsa-1" })}.${b64(validClaims())}`;
      for (const verifier of [jwksVerifier, hsVerifier]) {
        await expectUnauthenticated(verifier, `${unsigned}.`, /unsigned/);
        await expectUnauthenticated(verifier, `${unsigned}.${b64("signature")}`, /algorithm is not accepted/);
      }
    },
  );

  test("an RS256 public key used as an HS256 secret (PEM and JWK bytes) is refused", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    for (const secret of [pem, JSON.stringify(rsa.publicJwk)]) {
      const token = await signRaw(
        { alg: "HS256", typ: "JWT", kid: "rsa-1" },
        validClaims(),
        new TextEncoder().encode(secret),
      );
      await expectUnauthenticated(jwksVerifier, token, /algorithm is not accepted/);
      await expectUnauthenticated(hsVerifier, token, /signature is invalid/);
    }
  });

  test("a stripped signature is refused", async () => {
    const token = await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), rsa.privateKey);
    const [header, payload] = token.split(".");
    await expectUnauthenticated(jwksVerifier, `${header}.${payload}.`, /unsigned/);
    await expectUnauthenticated(jwksVerifier, `${header}.${payload}`, /not a compact JWT/);
  });

  test("a signature from another key with the same kid is refused", async () => {
    const token = await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), attacker.privateKey);
    await expectUnauthenticated(jwksVerifier, token, /signature is invalid/);
    const otherSecret = await signRaw(
      { alg: "HS256" },
      validClaims(),
      new TextEncoder().encode(`${SECRET}!`),
    );
    await expectUnauthenticated(hsVerifier, otherSecret, /signature is invalid/);
  });

  test("an ES256 signature presented as RS256 (alg/key confusion inside the JWKS) is refused", async () => {
    const token = await signRaw({ alg: "ES256", kid: "ec-1" }, validClaims(), ec.privateKey);
    const [, payload, signature] = token.split(".");
    await expectUnauthenticated(
      jwksVerifier,
      `${b64({ alg: "RS256", kid: "ec-1" })}.${payload}.${signature}`,
    );
  });

  test.each([
    ["expired beyond the leeway", { exp: nowSeconds - 31 }, /expired/],
    ["nbf in the future beyond the leeway", { nbf: nowSeconds + 31 }, /not valid yet/],
    ["missing exp", { exp: undefined }, /no expiry/],
    ["wrong iss", { iss: "https://evil.example" }, /issuer/],
    ["missing iss", { iss: undefined }, /issuer/],
    ["wrong aud", { aud: "another-api" }, /audience/],
    ["missing aud", { aud: undefined }, /no audience/],
    ["token_use refresh", { token_use: "refresh" }, /not an access token/],
    ["token_use missing", { token_use: undefined }, /not an access token/],
    ["iat in the future", { iat: nowSeconds + 3600 }, /issued in the future/],
    ["unknown role", { role: "root" }, /claims are invalid: role/],
    ["admin carrying a tenant", { role: "admin", tenant: "acme" }, /claims are invalid: role/],
    ["projectDev without a project", { role: "projectDev" }, /claims are invalid: role/],
    ["project without tenant", { role: "readOnly", tenant: undefined, project: "web" }, /claims are invalid/],
    ["tenant that is not a DNS label", { tenant: "../acme" }, /claims are invalid: tenant/],
    ["missing sub", { sub: undefined }, /claims are invalid: sub/],
  ] as const)("correctly signed but %s", async (_name, overrides, message) => {
    const claims = validClaims(overrides as JWTPayload);
    const rs = await signRaw({ alg: "RS256", kid: "rsa-1" }, claims, rsa.privateKey);
    await expectUnauthenticated(jwksVerifier, rs, message);
    const hs = await signRaw({ alg: "HS256" }, claims, secretBytes());
    await expectUnauthenticated(hsVerifier, hs, message);
  });

  test.each(["unknown-key", "../../etc/passwd", "' OR 1=1--", "rsa-1\u0000", ""])(
    "kid %p is refused",
    async (kid) => {
      const token = await signRaw({ alg: "RS256", kid }, validClaims(), rsa.privateKey);
      await expectUnauthenticated(jwksVerifier, token, kid === "" ? /no key id/ : /kid\) is unknown/);
    },
  );

  test("a token without kid is refused by a JWKS verifier", async () => {
    const token = await signRaw({ alg: "RS256" }, validClaims(), rsa.privateKey);
    await expectUnauthenticated(jwksVerifier, token, /no key id/);
  });

  test("jku, x5u, jwk and x5c headers are refused and nothing is fetched", async () => {
    const url = `http://127.0.0.1:${keyServer.port}/jwks.json`;
    const attackerKeyHeaders: Array<Partial<JWTHeaderParameters>> = [
      { jku: url },
      { x5u: url },
      { jwk: { kty: attacker.publicJwk.kty!, n: attacker.publicJwk.n!, e: attacker.publicJwk.e! } },
      { x5c: ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"] },
    ];
    for (const extra of attackerKeyHeaders) {
      const header = { alg: "RS256", kid: "rsa-1", ...extra } as JWTHeaderParameters;
      const forged = await signRaw(header, validClaims(), attacker.privateKey);
      await expectUnauthenticated(jwksVerifier, forged, /key references are not accepted/);
      // Even correctly signed with the real key: a token pointing elsewhere for its key is not ours.
      const genuine = await signRaw(header, validClaims(), rsa.privateKey);
      await expectUnauthenticated(jwksVerifier, genuine, /key references are not accepted/);
      const hs = await signRaw({ ...header, alg: "HS256" }, validClaims(), secretBytes());
      await expectUnauthenticated(hsVerifier, hs, /key references are not accepted/);
    }
    // Give any stray background fetch a moment to arrive before asserting none did.
    await Bun.sleep(50);
    expect(keyServerRequests).toBe(0);
  });

  test.each(["at+jwt", "application/at+jwt", "JWE", "refresh+jwt"])("typ %p is refused", async (typ) => {
    const token = await signRaw({ alg: "RS256", kid: "rsa-1", typ }, validClaims(), rsa.privateKey);
    await expectUnauthenticated(jwksVerifier, token, /typ/);
  });

  test.each(["JWT", "jwt", "application/jwt"])("typ %p is accepted", async (typ) => {
    const token = await signRaw({ alg: "RS256", kid: "rsa-1", typ }, validClaims(), rsa.privateKey);
    expect((await jwksVerifier.verify(token)).subject).toBe("alice");
  });

  test("an unknown critical header is refused", async () => {
    // jose refuses to sign with an unknown crit, so sign the bytes directly.
    const input = `${b64({ alg: "RS256", kid: "rsa-1", crit: ["kn-magic"], "kn-magic": true })}.${b64(validClaims())}`;
    const signature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      rsa.privateKey,
      new TextEncoder().encode(input),
    );
    const token = `${input}.${Buffer.from(signature).toString("base64url")}`;
    await expectUnauthenticated(jwksVerifier, token, /critical header/);
  });

  test("a tampered tenant claim (payload edited, signature kept) is refused", async () => {
    for (const [verifier, token] of [
      [jwksVerifier, await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), rsa.privateKey)],
      [hsVerifier, await signRaw({ alg: "HS256" }, validClaims(), secretBytes())],
    ] as const) {
      const [header, payload, signature] = token.split(".");
      const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
      expect(claims.tenant).toBe("acme");
      const edited = `${header}.${b64({ ...claims, tenant: "globex" })}.${signature}`;
      await expectUnauthenticated(verifier, edited, /signature is invalid/);
      const promoted = `${header}.${b64({ ...claims, role: "admin", tenant: undefined })}.${signature}`;
      await expectUnauthenticated(verifier, promoted, /signature is invalid/);
    }
  });

  test.each([
    ["malformed base64", "eyJhbGciOiJSUzI1NiJ9!.e30.c2ln"],
    ["base64 that is not JSON", `${b64("not json")}.${b64(validClaims())}.c2lnbmF0dXJl`],
    ["a JSON array header", `${b64([1, 2])}.${b64(validClaims())}.c2lnbmF0dXJl`],
    ["a payload that is not JSON", `${b64({ alg: "HS256" })}.${b64("[[[")}.c2lnbmF0dXJl`],
    ["a non-JWT string", "hello world"],
    ["a bearer prefix left in", "Bearer abc.def.ghi"],
    ["an empty string", ""],
    ["a JWE-shaped token", "a.b.c.d.e"],
    ["an oversize token", `${"a".repeat(MAX_TOKEN_BYTES)}.b.c`],
  ])("%s is refused", async (_name, token) => {
    await expectUnauthenticated(jwksVerifier, token);
    await expectUnauthenticated(hsVerifier, token);
  });

  test("an oversize token is refused by size alone, even when correctly signed", async () => {
    const token = await signRaw(
      { alg: "HS256" },
      validClaims({ padding: "x".repeat(MAX_TOKEN_BYTES) }),
      secretBytes(),
    );
    const error = await expectUnauthenticated(hsVerifier, token, /larger than 8192 bytes/);
    expect(error.context.reason).toBe("oversize");
  });
});

describe("clock tolerance", () => {
  async function expiredBy(seconds: number, options: Partial<TokenVerifierOptions> = {}) {
    const issuedAt = new Date(NOW.getTime() - (600 + seconds) * 1000);
    const signer = createTokenSigner({
      algorithm: "HS256",
      secret: SECRET,
      issuer: ISSUER,
      audience: AUDIENCE,
      now: () => issuedAt,
    });
    const { token } = await signer.sign({ subject: "alice", role: "readOnly", ttlSeconds: 600 });
    const verifier = createTokenVerifier({
      algorithm: "HS256",
      secret: SECRET,
      ...verifierOptions,
      ...options,
    } as TokenVerifierOptions);
    return verifier.verify(token);
  }

  test("a token expired 20 s ago is accepted at the default 30 s tolerance", async () => {
    expect((await expiredBy(20)).subject).toBe("alice");
  });

  test("a token expired 90 s ago is refused", async () => {
    await expect(expiredBy(90)).rejects.toMatchObject({ code: "KN-401", message: "token has expired" });
  });

  test("a tolerance of 0 refuses a token expired 1 s ago", async () => {
    await expect(expiredBy(1, { clockToleranceSeconds: 0 })).rejects.toMatchObject({ code: "KN-401" });
  });

  test("nbf 20 s ahead is accepted, 40 s ahead is refused", async () => {
    for (const [ahead, ok] of [
      [20, true],
      [40, false],
    ] as const) {
      const later = new Date(NOW.getTime() + ahead * 1000);
      const signer = createTokenSigner({
        algorithm: "HS256",
        secret: SECRET,
        issuer: ISSUER,
        audience: AUDIENCE,
        now: () => later,
      });
      const { token } = await signer.sign({ subject: "alice", role: "readOnly", ttlSeconds: 600 });
      const verifier = createTokenVerifier({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
      if (ok) expect((await verifier.verify(token)).role).toBe("readOnly");
      else await expect(verifier.verify(token)).rejects.toMatchObject({ code: "KN-401" });
    }
  });
});

describe("verified-token cache", () => {
  const signAt = async (at: Date, ttlSeconds = 600) =>
    (
      await createTokenSigner({
        algorithm: "HS256",
        secret: SECRET,
        issuer: ISSUER,
        audience: AUDIENCE,
        now: () => at,
      }).sign({ subject: "alice", role: "tenantOwner", tenant: "acme", ttlSeconds })
    ).token;

  test("a remembered token is still refused once it expires", async () => {
    let clock = NOW;
    const verifier = createTokenVerifier({
      algorithm: "HS256",
      secret: SECRET,
      ...verifierOptions,
      now: () => clock,
    });
    const token = await signAt(NOW, 60);
    expect((await verifier.verify(token)).subject).toBe("alice");
    clock = new Date(NOW.getTime() + 60_000 + 29_000); // inside the 30 s tolerance
    expect((await verifier.verify(token)).subject).toBe("alice");
    clock = new Date(NOW.getTime() + 60_000 + 31_000);
    await expectUnauthenticated(verifier, token, /expired/);
  });

  test("a remembered token is refused before its nbf when the clock goes back", async () => {
    let clock = NOW;
    const verifier = createTokenVerifier({
      algorithm: "HS256",
      secret: SECRET,
      ...verifierOptions,
      now: () => clock,
    });
    const token = await signAt(NOW);
    await verifier.verify(token);
    clock = new Date(NOW.getTime() - 31_000);
    await expectUnauthenticated(verifier, token);
  });

  test("a forgery of a remembered token (signature or claims edited) is refused", async () => {
    const verifier = createTokenVerifier({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
    const token = await signAt(NOW);
    await verifier.verify(token);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith("AA") ? "AB" : "AA"}`;
    await expectUnauthenticated(verifier, `${header}.${payload}.${flipped}`, /signature/);
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const widened = b64({ ...claims, role: "admin", tenant: undefined });
    await expectUnauthenticated(verifier, `${header}.${widened}.${signature}`);
    expect((await verifier.verify(token)).role).toBe("tenantOwner");
  });

  test("each caller gets its own principal: changing one does not change the next", async () => {
    const verifier = createTokenVerifier({ algorithm: "HS256", secret: SECRET, ...verifierOptions });
    const token = await signAt(NOW);
    const first = await verifier.verify(token);
    first.role = "admin";
    first.tenant = null;
    expect(await verifier.verify(token)).toMatchObject({ role: "tenantOwner", tenant: "acme" });
  });

  test("peek answers only what verify accepted and remembers, within the same time window", async () => {
    let clock = NOW;
    const verifier = createTokenVerifier({
      algorithm: "HS256",
      secret: SECRET,
      ...verifierOptions,
      now: () => clock,
    });
    const token = await signAt(NOW, 60);
    expect(verifier.peek?.(token)).toBeUndefined(); // never verified: no signature check happens in peek
    expect(verifier.peek?.(`${token}x`)).toBeUndefined();
    await verifier.verify(token);
    expect(verifier.peek?.(token)).toMatchObject({ subject: "alice", role: "tenantOwner", tenant: "acme" });
    const peeked = verifier.peek?.(token);
    expect(peeked).toBeDefined();
    if (peeked) peeked.role = "admin";
    expect(verifier.peek?.(token)?.role).toBe("tenantOwner");
    clock = new Date(NOW.getTime() + 60_000 + 31_000); // past exp and the 30 s tolerance
    expect(verifier.peek?.(token)).toBeUndefined();
    clock = new Date(NOW.getTime() - 31_000); // before iat minus the tolerance
    expect(verifier.peek?.(token)).toBeUndefined();
  });
});
