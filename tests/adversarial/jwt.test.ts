/**
 * Issue 9, JWT: what tests/auth/verifier.test.ts proves of the verifier alone, proved again at the edge, and key
 * rotation while real clients keep calling.
 *
 * 1. The forged tokens of the verifier suite (alg none/None, HS256 keyed with the RSA public key, stripped and
 *    foreign signatures, ES256 bytes labelled RS256, bad claims, hostile kids, key-reference headers, bad typ,
 *    critical headers, tampered claims, garbage) plus seeded single-character mutants of valid tokens, sent to
 *    `GET /api/v1/me` of a real app with a JWKS verifier and of one with an HS256 verifier: every one answers
 *    401 with `{ error: { code: "KN-401", … } }` and a `WWW-Authenticate: Bearer … error="invalid_token"`.
 * 2. Rotation under continuous traffic: the app verifies against a JWKS URL served by a local `Bun.serve`
 *    whose document the test changes (A → A+B → clients switch to B → B only). Concurrent clients call
 *    `/api/v1/me` over loopback HTTP for the whole drill; not one valid request fails, and after A is retired
 *    (and the cache has expired) an A-signed token is refused.
 *
 * CI: 400 mutants per verifier; `KN_ADVERSARIAL=long`: 4,000 and a longer drill. Replay: `KN_ADVERSARIAL_SEED`.
 */
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
import { createTokenSigner, type TokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier, MAX_TOKEN_BYTES } from "../../manager/auth/verifier.ts";
import { createApp } from "../../manager/http/app.ts";
import { AUDIENCE, createTestManager, ISSUER, TEST_SECRET, type TestManager } from "../http/harness.ts";
import { createRng, LONG_MODE, runSeed } from "./random.ts";

const SEED = runSeed();
const MUTANTS = LONG_MODE ? 4_000 : 400;
const CLIENTS = 8;
/** How long each rotation step runs; must exceed the JWKS cache age so every step sees a reload. */
const STEP_MS = LONG_MODE ? 3_000 : 600;
const CACHE_MAX_AGE_MS = 250;
const COOLDOWN_MS = 100;

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

type KeyPair = { privateJwk: JWK; publicJwk: JWK; privateKey: CryptoKey; publicKey: CryptoKey };

async function makeKeyPair(alg: "RS256" | "ES256", kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { privateJwk, publicJwk, privateKey, publicKey };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function validClaims(overrides: JWTPayload = {}): JWTPayload {
  const now = nowSeconds();
  const claims: JWTPayload = {
    sub: "alice",
    role: "tenantOwner",
    tenant: "acme",
    token_use: "access",
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now - 10,
    nbf: now - 10,
    exp: now + 600,
    jti: "0190c1a0-0000-7000-8000-000000000000",
    ...overrides,
  };
  // `undefined` means "leave the claim out" (JSON.stringify drops it, jose's SignJWT too).
  return claims;
}

/** Signs exactly the header and claims given, so the test can forge whatever it likes. */
function signRaw(header: JWTHeaderParameters, claims: JWTPayload, key: CryptoKey | Uint8Array) {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

interface Edge {
  label: string;
  m: TestManager;
  app: ReturnType<typeof createApp>;
}

async function callMe(app: ReturnType<typeof createApp>, token: string) {
  const response = await app.request("/api/v1/me", { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text: the assertion below shows it
  }
  return { status: response.status, body, challenge: response.headers.get("www-authenticate") };
}

/** The KN error body and the RFC 6750 challenge, or a description of what came back instead. */
function refusedAtTheEdge(result: Awaited<ReturnType<typeof callMe>>): string | null {
  const error = (result.body as { error?: { code?: unknown; message?: unknown; requestId?: unknown } })
    ?.error;
  if (result.status !== 401) return `status ${result.status}`;
  if (error?.code !== "KN-401" || typeof error.message !== "string" || typeof error.requestId !== "string") {
    return `body ${JSON.stringify(result.body)}`;
  }
  if (
    !result.challenge?.startsWith('Bearer realm="kubenova"') ||
    !result.challenge.includes("invalid_token")
  ) {
    return `WWW-Authenticate ${result.challenge}`;
  }
  return null;
}

describe("forged tokens through GET /api/v1/me", () => {
  let rsa: KeyPair;
  let ec: KeyPair;
  let attacker: KeyPair;
  let jwksEdge: Edge;
  let hsEdge: Edge;
  let keyServer: ReturnType<typeof Bun.serve>;
  let keyServerRequests = 0;
  const secretBytes = () => new TextEncoder().encode(TEST_SECRET);

  beforeAll(async () => {
    [rsa, ec, attacker] = await Promise.all([
      makeKeyPair("RS256", "rsa-1"),
      makeKeyPair("ES256", "ec-1"),
      makeKeyPair("RS256", "rsa-1"), // same kid as the real key: only the signature can tell them apart
    ]);
    const hs = await createTestManager();
    hsEdge = { label: "HS256", m: hs, app: hs.app };
    const js = await createTestManager();
    const verifier = createTokenVerifier({
      algorithm: "JWKS",
      jwks: { document: { keys: [rsa.publicJwk, ec.publicJwk] } },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    jwksEdge = { label: "JWKS", m: js, app: createApp({ ...js.services, verifier }) };
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
    await hsEdge.m.close();
    await jwksEdge.m.close();
  });

  /** Every forgery, each meant for one edge or both; built fresh so `exp` is relative to now. */
  async function forgeries(): Promise<Array<{ name: string; token: string; edges: Edge[] }>> {
    const both = [jwksEdge, hsEdge];
    const out: Array<{ name: string; token: string; edges: Edge[] }> = [];
    const add = (name: string, token: string, edges = both) => out.push({ name, token, edges });

    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      const unsigned = `${b64({ alg, typ: "JWT", kid: "rsa-1" })}.${b64(validClaims())}`;
      add(`alg ${alg} unsigned`, `${unsigned}.`);
      add(`alg ${alg} with a signature`, `${unsigned}.${b64("signature")}`);
    }
    for (const secret of [await exportSPKI(rsa.publicKey), JSON.stringify(rsa.publicJwk)]) {
      add(
        "RS256 public key as HS256 secret",
        await signRaw(
          { alg: "HS256", typ: "JWT", kid: "rsa-1" },
          validClaims(),
          new TextEncoder().encode(secret),
        ),
      );
    }
    const genuine = await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), rsa.privateKey);
    const [gh, gp] = genuine.split(".");
    add("stripped signature", `${gh}.${gp}.`, [jwksEdge]);
    add("two segments", `${gh}.${gp}`, [jwksEdge]);
    add(
      "foreign key, same kid",
      await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), attacker.privateKey),
      [jwksEdge],
    );
    add(
      "foreign HS256 secret",
      await signRaw({ alg: "HS256" }, validClaims(), new TextEncoder().encode(`${TEST_SECRET}!`)),
      [hsEdge],
    );
    const esToken = await signRaw({ alg: "ES256", kid: "ec-1" }, validClaims(), ec.privateKey);
    const [, esPayload, esSignature] = esToken.split(".");
    add(
      "ES256 signature labelled RS256",
      `${b64({ alg: "RS256", kid: "ec-1" })}.${esPayload}.${esSignature}`,
      [jwksEdge],
    );

    const now = nowSeconds();
    const badClaims: Array<[string, JWTPayload]> = [
      ["expired beyond the leeway", { exp: now - 31 }],
      // Far enough ahead that a slow run (the loop below can take seconds on a loaded machine) cannot reach it.
      ["nbf beyond the leeway", { nbf: now + 90 }],
      ["missing exp", { exp: undefined }],
      ["wrong iss", { iss: "https://evil.example" }],
      ["missing iss", { iss: undefined }],
      ["wrong aud", { aud: "another-api" }],
      ["missing aud", { aud: undefined }],
      ["token_use refresh", { token_use: "refresh" }],
      ["token_use missing", { token_use: undefined }],
      ["iat in the future", { iat: now + 3600 }],
      ["unknown role", { role: "root" }],
      ["admin carrying a tenant", { role: "admin", tenant: "acme" }],
      ["projectDev without a project", { role: "projectDev" }],
      ["project without tenant", { role: "readOnly", tenant: undefined, project: "web" }],
      ["tenant that is not a DNS label", { tenant: "../acme" }],
      ["missing sub", { sub: undefined }],
    ];
    for (const [name, overrides] of badClaims) {
      const claims = validClaims(overrides);
      add(`RS256 ${name}`, await signRaw({ alg: "RS256", kid: "rsa-1" }, claims, rsa.privateKey), [jwksEdge]);
      add(`HS256 ${name}`, await signRaw({ alg: "HS256" }, claims, secretBytes()), [hsEdge]);
    }
    for (const kid of ["unknown-key", "../../etc/passwd", "' OR 1=1--", "rsa-1\u0000", "", "k".repeat(300)]) {
      add(
        `kid ${JSON.stringify(kid.slice(0, 20))}`,
        await signRaw({ alg: "RS256", kid }, validClaims(), rsa.privateKey),
        [jwksEdge],
      );
    }
    add("no kid", await signRaw({ alg: "RS256" }, validClaims(), rsa.privateKey), [jwksEdge]);

    const url = `http://127.0.0.1:${keyServer.port}/jwks.json`;
    const attackerKeyHeaders: Array<Partial<JWTHeaderParameters>> = [
      { jku: url },
      { x5u: url },
      { jwk: { kty: attacker.publicJwk.kty!, n: attacker.publicJwk.n!, e: attacker.publicJwk.e! } },
      { x5c: ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"] },
    ];
    for (const extra of attackerKeyHeaders) {
      const header = { alg: "RS256", kid: "rsa-1", ...extra } as JWTHeaderParameters;
      const which = Object.keys(extra)[0];
      add(`${which} forged`, await signRaw(header, validClaims(), attacker.privateKey), [jwksEdge]);
      add(`${which} genuinely signed`, await signRaw(header, validClaims(), rsa.privateKey), [jwksEdge]);
      add(`${which} HS256`, await signRaw({ ...header, alg: "HS256" }, validClaims(), secretBytes()), [
        hsEdge,
      ]);
    }
    for (const typ of ["at+jwt", "application/at+jwt", "JWE", "refresh+jwt"]) {
      add(`typ ${typ}`, await signRaw({ alg: "RS256", kid: "rsa-1", typ }, validClaims(), rsa.privateKey), [
        jwksEdge,
      ]);
      add(`HS256 typ ${typ}`, await signRaw({ alg: "HS256", typ }, validClaims(), secretBytes()), [hsEdge]);
    }
    const critInput = `${b64({ alg: "RS256", kid: "rsa-1", crit: ["kn-magic"], "kn-magic": true })}.${b64(validClaims())}`;
    const critSignature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      rsa.privateKey,
      new TextEncoder().encode(critInput),
    );
    add("unknown critical header", `${critInput}.${Buffer.from(critSignature).toString("base64url")}`, [
      jwksEdge,
    ]);

    for (const [edge, token] of [
      [jwksEdge, genuine],
      [hsEdge, await signRaw({ alg: "HS256" }, validClaims(), secretBytes())],
    ] as const) {
      const [header, payload, signature] = token.split(".");
      const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
      add(`${edge.label} tenant edited`, `${header}.${b64({ ...claims, tenant: "globex" })}.${signature}`, [
        edge,
      ]);
      add(
        `${edge.label} promoted to admin`,
        `${header}.${b64({ ...claims, role: "admin", tenant: undefined })}.${signature}`,
        [edge],
      );
    }
    const garbage: Array<[string, string]> = [
      ["malformed base64", "eyJhbGciOiJSUzI1NiJ9!.e30.c2ln"],
      ["base64 that is not JSON", `${b64("not json")}.${b64(validClaims())}.c2lnbmF0dXJl`],
      ["a JSON array header", `${b64([1, 2])}.${b64(validClaims())}.c2lnbmF0dXJl`],
      ["a payload that is not JSON", `${b64({ alg: "HS256" })}.${b64("[[[")}.c2lnbmF0dXJl`],
      ["a non-JWT string", "hello"],
      ["a JWE-shaped token", "a.b.c.d.e"],
      ["an oversize token", `${"a".repeat(MAX_TOKEN_BYTES)}.b.c`],
      [
        "an oversize but correctly signed token",
        await signRaw({ alg: "HS256" }, validClaims({ padding: "x".repeat(MAX_TOKEN_BYTES) }), secretBytes()),
      ],
    ];
    for (const [name, token] of garbage) add(name, token);
    return out;
  }

  test("every forgery answers 401 KN-401 with a Bearer challenge on both edges; the genuine tokens answer 200", async () => {
    // The baseline: a correctly made token passes each edge, so every refusal below is the forgery's fault.
    const genuineRs = await signRaw(
      { alg: "RS256", typ: "JWT", kid: "rsa-1" },
      validClaims(),
      rsa.privateKey,
    );
    const genuineEs = await signRaw({ alg: "ES256", kid: "ec-1" }, validClaims(), ec.privateKey);
    const genuineHs = await signRaw({ alg: "HS256", typ: "JWT" }, validClaims(), secretBytes());
    expect((await callMe(jwksEdge.app, genuineRs)).status).toBe(200);
    expect((await callMe(jwksEdge.app, genuineEs)).status).toBe(200);
    expect((await callMe(hsEdge.app, genuineHs)).status).toBe(200);

    const failures: string[] = [];
    let sent = 0;
    for (const forgery of await forgeries()) {
      for (const edge of forgery.edges) {
        sent++;
        const problem = refusedAtTheEdge(await callMe(edge.app, forgery.token));
        if (problem) failures.push(`${edge.label} ${forgery.name}: ${problem}`);
      }
    }
    await Bun.sleep(50); // a stray jku/x5u fetch would arrive within this
    expect({ failures, keyServerRequests }).toEqual({ failures: [], keyServerRequests: 0 });
    expect(sent).toBeGreaterThan(80);
  });

  test(`${MUTANTS} seeded single-character mutants of valid tokens are all refused (seed ${SEED})`, async () => {
    const rng = createRng(SEED);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= ";
    const originals = [
      { edge: jwksEdge, token: await signRaw({ alg: "RS256", kid: "rsa-1" }, validClaims(), rsa.privateKey) },
      { edge: jwksEdge, token: await signRaw({ alg: "ES256", kid: "ec-1" }, validClaims(), ec.privateKey) },
      { edge: hsEdge, token: await signRaw({ alg: "HS256" }, validClaims(), secretBytes()) },
    ];
    const failures: string[] = [];
    let accepted = 0;
    for (let i = 0; i < MUTANTS; i++) {
      const { edge, token } = rng.pick(originals);
      const at = rng.int(token.length);
      const replacement = rng.pick([...alphabet]);
      if (replacement === token[at]) continue;
      const mutant = token.slice(0, at) + replacement + token.slice(at + 1);
      const result = await callMe(edge.app, mutant);
      if (result.status === 200) {
        // Only a non-canonical base64url spelling of the same signature bytes may pass (the last character's
        // unused low bits): the signed header and payload are compared as text, so they must be untouched.
        const [h, p, s] = token.split(".");
        const [mh, mp, ms] = mutant.split(".");
        const sameBytes =
          h === mh && p === mp && Buffer.from(s!, "base64url").equals(Buffer.from(ms ?? "", "base64url"));
        if (!sameBytes) failures.push(`${edge.label} accepted ${mutant}`);
        accepted++;
        continue;
      }
      const problem = refusedAtTheEdge(result);
      if (problem) failures.push(`${edge.label} mutant at ${at}: ${problem}`);
    }
    if (failures.length > 0)
      process.stderr.write(`jwt mutants failed; replay with KN_ADVERSARIAL_SEED=${SEED}\n`);
    expect(failures).toEqual([]);
    expect(accepted).toBeLessThan(MUTANTS / 10);
  });
});

describe("JWKS key rotation under continuous traffic", () => {
  test("A → A+B → clients on B → A retired: no valid request fails; A is refused afterwards", async () => {
    const [keyA, keyB] = await Promise.all([makeKeyPair("ES256", "key-a"), makeKeyPair("ES256", "key-b")]);
    let published: JWK[] = [keyA.publicJwk];
    let jwksFetches = 0;
    const keyServer = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => {
        jwksFetches++;
        return Response.json({ keys: published });
      },
    });
    const m = await createTestManager();
    const verifier = createTokenVerifier({
      algorithm: "JWKS",
      jwks: {
        url: `http://127.0.0.1:${keyServer.port}/.well-known/jwks.json`,
        cooldownMs: COOLDOWN_MS,
        cacheMaxAgeMs: CACHE_MAX_AGE_MS,
      },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const app = createApp({ ...m.services, verifier });
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
    const base = `http://127.0.0.1:${server.port}`;
    const signerOf = (pair: KeyPair): TokenSigner =>
      createTokenSigner({
        algorithm: "ES256",
        privateKey: pair.privateJwk,
        keyId: pair.privateJwk.kid!,
        issuer: ISSUER,
        audience: AUDIENCE,
      });
    const tokenOf = async (signer: TokenSigner, client: number) =>
      (await signer.sign({ subject: `client-${client}`, role: "readOnly", ttlSeconds: 600 })).token;
    const tokensA = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => tokenOf(signerOf(keyA), i)));
    const tokensB = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => tokenOf(signerOf(keyB), i)));

    let current = tokensA;
    let step = "A only";
    let running = true;
    const counts: Record<string, { ok: number; failed: number }> = {};
    const failures: string[] = [];
    const clients = Array.from({ length: CLIENTS }, async (_, client) => {
      while (running) {
        const stepNow = step;
        const token = current[client]!;
        const response = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await response.json()) as { subject?: string };
        counts[stepNow] ??= { ok: 0, failed: 0 };
        if (response.status === 200 && body.subject === `client-${client}`) counts[stepNow].ok++;
        else {
          counts[stepNow].failed++;
          if (failures.length < 10) failures.push(`${stepNow}: ${response.status} ${JSON.stringify(body)}`);
        }
      }
    });
    const phase = async (name: string, apply: () => void) => {
      apply();
      step = name;
      await Bun.sleep(STEP_MS);
    };

    try {
      await Bun.sleep(STEP_MS); // A only, clients on A
      // Publish B next to A; wait past the cache age before anyone signs with B (the rotation rule).
      await phase("A+B published, clients on A", () => {
        published = [keyA.publicJwk, keyB.publicJwk];
      });
      await phase("A+B published, clients on B", () => {
        current = tokensB;
      });
      await phase("B only (A retired), clients on B", () => {
        published = [keyB.publicJwk];
      });
      // Past the cache age with B-only traffic: the verifier has reloaded and no longer knows A.
      const stale = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${tokensA[0]}` } });
      const staleBody = (await stale.json()) as { error?: { code?: string; message?: string } };
      expect({ status: stale.status, code: staleBody.error?.code }).toEqual({ status: 401, code: "KN-401" });
      expect(staleBody.error?.message).toMatch(/kid\) is unknown/);
      expect(stale.headers.get("www-authenticate")).toContain("invalid_token");
    } finally {
      running = false;
      await Promise.all(clients);
      await server.stop(true);
      await keyServer.stop(true);
      await m.close();
    }

    const total = Object.values(counts).reduce((sum, c) => sum + c.ok + c.failed, 0);
    const failed = Object.values(counts).reduce((sum, c) => sum + c.failed, 0);
    // The drill's numbers, for the report: requests per step and how often the key server was asked.
    process.stdout.write(
      `rotation drill: ${total} requests, ${failed} failed, ${jwksFetches} JWKS fetches; ${JSON.stringify(counts)}\n`,
    );
    expect(failures).toEqual([]);
    expect(failed).toBe(0);
    expect(Object.keys(counts)).toHaveLength(4);
    for (const c of Object.values(counts)) expect(c.ok).toBeGreaterThan(100);
    // The cache really expired during the drill: more than one fetch per step.
    expect(jwksFetches).toBeGreaterThanOrEqual(4);
  });
});
