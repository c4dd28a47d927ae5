/** CA persistence (DESIGN.md §4 secrets at rest): one CA per database, its key envelope-encrypted, race-safe. */
import "reflect-metadata";
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import {
  CA_SETTING_KEY,
  loadBrokerServerCertificate,
  loadOrCreateCertificateAuthority,
} from "../../manager/pki/ca-store.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { createCsr, generateKeyPair } from "../../shared/pki.ts";

const envelope = createEnvelope(
  createKeyring({ keys: [{ id: "k1", key: new Uint8Array(32).fill(3) }], activeKeyId: "k1" }),
);
const logger = createMemoryLogger("debug");

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "kn-ca-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function openStore(file: string) {
  const store = await openSqliteStore({ path: file, logger });
  await store.migrate();
  return store;
}

describe("CA persistence", () => {
  test("a restarted Manager on the same store keeps the same CA; the stored key is not plaintext", () =>
    withDir(async (dir) => {
      const file = path.join(dir, "kubenova.db");
      const first = await openStore(file);
      const ca1 = await loadOrCreateCertificateAuthority({ store: first, envelope, logger });
      const stored = (await first.settings.get(CA_SETTING_KEY))!;
      const keyPem = await ca1.exportPrivateKeyPem();
      const keyBody = keyPem.split("\n")[1]!;
      expect(stored).not.toContain("PRIVATE KEY");
      expect(stored).not.toContain(keyBody);
      expect(stored).not.toContain(Buffer.from(keyPem).toString("base64").slice(0, 24));
      await first.close();

      const second = await openStore(file);
      const ca2 = await loadOrCreateCertificateAuthority({ store: second, envelope, logger });
      expect(ca2.certificatePem).toBe(ca1.certificatePem);
      // The reloaded CA signs certificates that chain to the original CA certificate.
      const keys = await generateKeyPair();
      const issued = await ca2.signClientCsr({
        csrPem: await createCsr({ commonName: "c1", keys }),
        clusterId: "c1",
        lifetimeSeconds: 3600,
      });
      const caCert = new x509.X509Certificate(ca1.certificatePem);
      expect(
        await new x509.X509Certificate(issued.certificatePem).verify({
          publicKey: await caCert.publicKey.export(),
          signatureOnly: true,
        }),
      ).toBe(true);
      // Another KEK cannot open it: the key really is sealed.
      const stranger = createEnvelope(
        createKeyring({ keys: [{ id: "k1", key: new Uint8Array(32).fill(9) }], activeKeyId: "k1" }),
      );
      await expect(
        loadOrCreateCertificateAuthority({ store: second, envelope: stranger, logger }),
      ).rejects.toThrow();
      await second.close();
    }));

  test("two Managers starting at once on one empty store end up with one CA", () =>
    withDir(async (dir) => {
      const store = await openStore(path.join(dir, "kubenova.db"));
      const cas = await Promise.all(
        [1, 2, 3, 4].map(() => loadOrCreateCertificateAuthority({ store, envelope, logger })),
      );
      expect(new Set(cas.map((ca) => ca.certificatePem)).size).toBe(1);
      expect(cas[0]!.certificatePem).toBe(
        JSON.parse((await store.settings.get(CA_SETTING_KEY))!).certificatePem,
      );
      await store.close();
    }));

  test("configured files win over the store; the broker certificate carries the configured names", () =>
    withDir(async (dir) => {
      const store = await openStore(":memory:");
      const external = await createCertificateAuthority({ commonName: "Corp CA" });
      const certFile = path.join(dir, "ca.pem");
      const keyFile = path.join(dir, "ca.key");
      await writeFile(certFile, external.certificatePem);
      await writeFile(keyFile, await external.exportPrivateKeyPem());
      const ca = await loadOrCreateCertificateAuthority({
        store,
        envelope,
        logger,
        files: { certFile, keyFile },
      });
      expect(ca.certificatePem).toBe(external.certificatePem);
      expect(await store.settings.get(CA_SETTING_KEY)).toBeNull();

      const broker = await loadBrokerServerCertificate({
        ca,
        config: {
          pki: { brokerCertFile: null, brokerKeyFile: null },
          mqtt: { host: "10.0.0.5", serverNames: ["broker.example", "127.0.0.1"] },
        },
        logger,
      });
      const cert = new x509.X509Certificate(broker.certificatePem);
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
      const names = san.names.items.map((n) => n.value);
      expect(names).toEqual(expect.arrayContaining(["broker.example", "127.0.0.1", "10.0.0.5"]));
      expect(broker.caPem).toBe(external.certificatePem);
      expect(broker.privateKeyPem).toContain("PRIVATE KEY");

      const wildcard = await loadBrokerServerCertificate({
        ca,
        config: {
          pki: { brokerCertFile: null, brokerKeyFile: null },
          mqtt: { host: "0.0.0.0", serverNames: ["b.example"] },
        },
        logger,
      });
      const wildcardNames = new x509.X509Certificate(wildcard.certificatePem)
        .getExtension(x509.SubjectAlternativeNameExtension)!
        .names.items.map((n) => n.value);
      expect(wildcardNames).toEqual(["b.example"]);
      await expect(
        loadOrCreateCertificateAuthority({
          store,
          envelope,
          logger,
          files: { certFile: path.join(dir, "missing.pem"), keyFile },
        }),
      ).rejects.toThrow(/KUBENOVA_CA_CERT_FILE/);
      await store.close();
    }));
});
