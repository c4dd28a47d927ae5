import { afterAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier, type JwksSource } from "../../manager/auth/verifier.ts";

const ISSUER = "https://kubenova.test";
const AUDIENCE = "kubenova-api";
const common = { issuer: ISSUER, audience: AUDIENCE } as const;

async function keyPair(alg: "RS256" | "ES256", kid: string): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
  };
}

async function issue(alg: "RS256" | "ES256", kid: string, privateJwk: JWK): Promise<string> {
  const signer = createTokenSigner({ algorithm: alg, privateKey: privateJwk, keyId: kid, ...common });
  return (await signer.sign({ subject: `signed-by-${kid}`, role: "readOnly", ttlSeconds: 300 })).token;
}

describe("key rotation", () => {
  test("local JWKS: A; then A+B (both verify); then B only (A refused)", async () => {
    const a = await keyPair("RS256", "key-a");
    const b = await keyPair("ES256", "key-b");
    const verifierWith = (keys: JWK[]) =>
      createTokenVerifier({ algorithm: "JWKS", jwks: { document: { keys } }, ...common });

    const tokenA = await issue("RS256", "key-a", a.privateJwk);
    expect((await verifierWith([a.publicJwk]).verify(tokenA)).subject).toBe("signed-by-key-a");

    const tokenB = await issue("ES256", "key-b", b.privateJwk);
    const overlap = verifierWith([a.publicJwk, b.publicJwk]);
    expect((await overlap.verify(tokenA)).subject).toBe("signed-by-key-a");
    expect((await overlap.verify(tokenB)).subject).toBe("signed-by-key-b");

    const after = verifierWith([b.publicJwk]);
    expect((await after.verify(tokenB)).subject).toBe("signed-by-key-b");
    await expect(after.verify(tokenA)).rejects.toMatchObject({
      code: "KN-401",
      message: "token signing key (kid) is unknown",
    });
  });

  describe("remote JWKS URL", () => {
    let keys: JWK[] = [];
    let requests = 0;
    let failing = false;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => {
        requests += 1;
        return failing ? new Response("down", { status: 503 }) : Response.json({ keys });
      },
    });
    afterAll(async () => {
      await server.stop(true);
    });
    const source = (): JwksSource => ({
      url: `http://127.0.0.1:${server.port}/jwks.json`,
      cooldownMs: 0,
      cacheMaxAgeMs: 100,
    });

    test("picks up a new kid at once and drops a removed one when the cache expires", async () => {
      const a = await keyPair("RS256", "key-a");
      const b = await keyPair("RS256", "key-b");
      keys = [a.publicJwk];
      const verifier = createTokenVerifier({ algorithm: "JWKS", jwks: source(), ...common });
      const tokenA = await issue("RS256", "key-a", a.privateJwk);
      expect((await verifier.verify(tokenA)).subject).toBe("signed-by-key-a");
      expect(requests).toBe(1);

      keys = [a.publicJwk, b.publicJwk];
      const tokenB = await issue("RS256", "key-b", b.privateJwk);
      // Unknown kid: jose refetches (cooldown 0 here) and finds B.
      expect((await verifier.verify(tokenB)).subject).toBe("signed-by-key-b");
      expect((await verifier.verify(tokenA)).subject).toBe("signed-by-key-a");

      keys = [b.publicJwk];
      await Bun.sleep(150); // past cacheMaxAge
      await expect(verifier.verify(tokenA)).rejects.toMatchObject({ code: "KN-401" });
      expect((await verifier.verify(tokenB)).subject).toBe("signed-by-key-b");
    });

    test("an unreachable key server is KN-503 (the token may be fine), not KN-401", async () => {
      const a = await keyPair("RS256", "key-a");
      keys = [a.publicJwk];
      failing = true;
      try {
        const verifier = createTokenVerifier({ algorithm: "JWKS", jwks: source(), ...common });
        const token = await issue("RS256", "key-a", a.privateJwk);
        await expect(verifier.verify(token)).rejects.toMatchObject({ code: "KN-503", retryable: true });
      } finally {
        failing = false;
      }
    });

    test("a key server that refuses connections is KN-503 too", async () => {
      const gone = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
      const url = `http://127.0.0.1:${gone.port}/jwks.json`;
      await gone.stop(true);
      const a = await keyPair("RS256", "key-a");
      const verifier = createTokenVerifier({ algorithm: "JWKS", jwks: { url, timeoutMs: 1000 }, ...common });
      const token = await issue("RS256", "key-a", a.privateJwk);
      await expect(verifier.verify(token)).rejects.toMatchObject({ code: "KN-503" });
    });
  });
});
