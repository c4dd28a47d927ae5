/**
 * shared/csr.ts writes PKCS#10 by hand (no ASN.1 library): what @peculiar/x509 (the Manager's CA) and OpenSSL
 * read must verify and carry the requested CN, for any signature — r and s with or without a high bit or
 * leading zero bytes, hence many keys.
 */
import "reflect-metadata";
import { expect, test } from "bun:test";
import * as x509 from "@peculiar/x509";
import { createCsr, generateKeyPair } from "../../shared/csr.ts";

x509.cryptoProvider.set(crypto);

test("CSRs verify with @peculiar/x509 and carry the CN, across many keys", async () => {
  const cn = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  for (let i = 0; i < 64; i++) {
    const keys = await generateKeyPair();
    const csr = new x509.Pkcs10CertificateRequest(await createCsr({ commonName: cn, keys }));
    expect(await csr.verify()).toBe(true);
    expect(csr.subjectName.getField("CN")).toEqual([cn]);
    expect(csr.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
  }
});

test("OpenSSL verifies the self-signature and reads the subject", async () => {
  const pem = await createCsr({ commonName: "dc1-cluster", keys: await generateKeyPair() });
  const openssl = Bun.spawnSync(["openssl", "req", "-noout", "-verify", "-subject"], {
    stdin: new TextEncoder().encode(pem),
  });
  expect(openssl.exitCode).toBe(0);
  expect(`${openssl.stdout}${openssl.stderr}`).toMatch(/verify OK/i);
  expect(openssl.stdout.toString()).toContain("CN = dc1-cluster");
});
