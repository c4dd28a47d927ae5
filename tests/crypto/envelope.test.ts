import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope, createKeyring, type Envelope } from "../../manager/crypto/envelope.ts";
import { loadOrCreateKeyring, parseConfiguredKeys } from "../../manager/crypto/keyring-file.ts";
import { KubeNovaError } from "../../shared/errors.ts";
import { createMemoryLogger } from "../../shared/logger.ts";

const kek = (fill: number) => new Uint8Array(32).fill(fill);
const keyringOf = (ids: string[], activeKeyId: string) =>
  createKeyring({ keys: ids.map((id, index) => ({ id, key: kek(index + 1) })), activeKeyId });
const AAD = "clusters/0190c1a0-0000-7000-8000-000000000001/kubeconfig";
const KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: s3cr3t}\n";

async function openFailure(promise: Promise<unknown>): Promise<KubeNovaError> {
  let caught: unknown;
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    caught = error;
  }
  expect(result).toBeUndefined(); // never garbage: no value at all comes back
  expect(caught).toBeInstanceOf(KubeNovaError);
  expect((caught as KubeNovaError).code).toBe("KN-500");
  return caught as KubeNovaError;
}

function decodeParts(ciphertext: string): { prefix: string; sizes: number[]; bytes: Uint8Array } {
  const parts = ciphertext.split(".");
  const binary = parts.slice(2).map((part) => Buffer.from(part, "base64url"));
  return {
    prefix: parts.slice(0, 2).join("."),
    sizes: binary.map((part) => part.byteLength),
    bytes: new Uint8Array(Buffer.concat(binary)),
  };
}

function encodeParts(prefix: string, sizes: number[], bytes: Uint8Array): string {
  const out = [prefix];
  let offset = 0;
  for (const size of sizes) {
    out.push(Buffer.from(bytes.subarray(offset, offset + size)).toString("base64url"));
    offset += size;
  }
  return out.join(".");
}

describe("envelope", () => {
  const envelope: Envelope = createEnvelope(keyringOf(["k1"], "k1"));

  test("round trip for text and bytes, with the documented format", async () => {
    const ciphertext = await envelope.encrypt(KUBECONFIG, AAD);
    expect(ciphertext).toMatch(/^kn1\.k1\.[A-Za-z0-9_-]{80}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(ciphertext).not.toContain("s3cr3t");
    expect(await envelope.decryptString(ciphertext, AAD)).toBe(KUBECONFIG);

    const bytes = crypto.getRandomValues(new Uint8Array(1000));
    expect(await envelope.decrypt(await envelope.encrypt(bytes, AAD), AAD)).toEqual(bytes);
    expect(await envelope.decrypt(await envelope.encrypt(new Uint8Array(0), AAD), AAD)).toEqual(
      new Uint8Array(0),
    );
    expect(envelope.keyIdOf(ciphertext)).toBe("k1");
  });

  test("equal plaintexts encrypt differently (fresh data key and IVs)", async () => {
    const a = await envelope.encrypt(KUBECONFIG, AAD);
    const b = await envelope.encrypt(KUBECONFIG, AAD);
    expect(a).not.toBe(b);
    const [, , wrapA, ivA, sealedA] = a.split(".");
    const [, , wrapB, ivB, sealedB] = b.split(".");
    expect(wrapA).not.toBe(wrapB);
    expect(ivA).not.toBe(ivB);
    expect(sealedA).not.toBe(sealedB);
  });

  test("a ciphertext moved to another row (wrong AAD) does not decrypt", async () => {
    const ciphertext = await envelope.encrypt(KUBECONFIG, AAD);
    for (const aad of [
      "clusters/0190c1a0-0000-7000-8000-000000000002/kubeconfig",
      `${AAD} `,
      AAD.toUpperCase(),
      "ca/key",
    ]) {
      const error = await openFailure(envelope.decrypt(ciphertext, aad));
      expect(error.context.reason).toBe("authentication");
      expect(error.message).toBe("ciphertext could not be authenticated (data key)");
    }
  });

  test("an empty AAD is a programming error", async () => {
    await expect(envelope.encrypt("x", "")).rejects.toThrow(/AAD/);
  });

  test("1,000+ single-bit flips in the decoded bytes each fail authentication", async () => {
    // 60 (wrap) + 12 (iv) + 40 + 16 (sealed + tag) = 128 bytes = 1,024 bits: every one of them gets flipped.
    const plaintext = "0123456789012345678901234567890123456789";
    const ciphertext = await envelope.encrypt(plaintext, AAD);
    const { prefix, sizes, bytes } = decodeParts(ciphertext);
    expect(bytes.byteLength * 8).toBeGreaterThanOrEqual(1000);
    expect(encodeParts(prefix, sizes, bytes)).toBe(ciphertext);
    const failures = await Promise.all(
      Array.from({ length: bytes.byteLength * 8 }, async (_, bit) => {
        const flipped = Uint8Array.from(bytes);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        return openFailure(envelope.decrypt(encodeParts(prefix, sizes, flipped), AAD));
      }),
    );
    expect(failures).toHaveLength(1024);
    expect(new Set(failures.map((error) => error.context.reason))).toEqual(new Set(["authentication"]));
    expect(await envelope.decryptString(ciphertext, AAD)).toBe(plaintext); // the original is still fine
  });

  test("every single-bit flip in the serialized text fails too (format, key id or authentication)", async () => {
    const ciphertext = await envelope.encrypt("short secret", AAD);
    const text = Buffer.from(ciphertext, "latin1");
    const reasons = new Set<unknown>();
    const attempts: Promise<KubeNovaError>[] = [];
    for (let bit = 0; bit < text.byteLength * 8; bit++) {
      const flipped = Buffer.from(text);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      attempts.push(openFailure(envelope.decrypt(flipped.toString("latin1"), AAD)));
    }
    for (const error of await Promise.all(attempts)) reasons.add(error.context.reason);
    expect(
      [...reasons].every((reason) => ["format", "unknown_key", "authentication"].includes(String(reason))),
    ).toBe(true);
    expect(reasons.has("format")).toBe(true); // non-canonical base64url is refused, not silently accepted
  });

  test.each([
    ["empty", ""],
    ["another version", "kn2.k1.AAAA.AAAA.AAAA"],
    ["too few parts", "kn1.k1.AAAA"],
    ["bad key id", "kn1.k/1.AAAA.AAAA.AAAA"],
    ["padding", "kn1.k1.AAAA=.AAAA.AAAA"],
    ["short parts", "kn1.k1.AAAA.AAAA.AAAA"],
  ])("%s is not an envelope", async (_name, ciphertext) => {
    const error = await openFailure(envelope.decrypt(ciphertext, AAD));
    expect(error.context.reason).toBe("format");
    expect(() => envelope.keyIdOf(ciphertext)).toThrow(KubeNovaError);
  });

  test("an unknown key id fails and names the id", async () => {
    const other = createEnvelope(keyringOf(["other"], "other"));
    const ciphertext = await other.encrypt(KUBECONFIG, AAD);
    const error = await openFailure(envelope.decrypt(ciphertext, AAD));
    expect(error.context).toMatchObject({ reason: "unknown_key", keyId: "other" });
    // Relabelling the record with a known kid does not help: the wrap AAD includes the kid.
    const relabelled = ciphertext.replace(/^kn1\.other\./, "kn1.k1.");
    expect((await openFailure(envelope.decrypt(relabelled, AAD))).context.reason).toBe("authentication");
  });

  test("a record under the same kid but a different key fails authentication", async () => {
    const impostor = createEnvelope(createKeyring({ keys: [{ id: "k1", key: kek(9) }], activeKeyId: "k1" }));
    const ciphertext = await impostor.encrypt(KUBECONFIG, AAD);
    expect((await openFailure(envelope.decrypt(ciphertext, AAD))).context.reason).toBe("authentication");
  });

  test("invalid UTF-8 plaintext is refused by decryptString but not by decrypt", async () => {
    const ciphertext = await envelope.encrypt(new Uint8Array([0xff, 0xfe]), AAD);
    expect(await envelope.decrypt(ciphertext, AAD)).toEqual(new Uint8Array([0xff, 0xfe]));
    expect((await openFailure(envelope.decryptString(ciphertext, AAD))).context.reason).toBe("encoding");
  });
});

describe("keyring", () => {
  test.each([
    ["no keys", { keys: [], activeKeyId: "a" }, /at least one/],
    ["31-byte key", { keys: [{ id: "a", key: new Uint8Array(31) }], activeKeyId: "a" }, /exactly 32 bytes/],
    ["33-byte key", { keys: [{ id: "a", key: new Uint8Array(33) }], activeKeyId: "a" }, /exactly 32 bytes/],
    ["dotted id", { keys: [{ id: "a.b", key: kek(1) }], activeKeyId: "a.b" }, /must match/],
    [
      "duplicate id",
      {
        keys: [
          { id: "a", key: kek(1) },
          { id: "a", key: kek(2) },
        ],
        activeKeyId: "a",
      },
      /twice/,
    ],
    ["absent active id", { keys: [{ id: "a", key: kek(1) }], activeKeyId: "b" }, /not in the keyring/],
  ])("refuses %s", (_name, options, message) => {
    expect(() => createKeyring(options)).toThrow(message);
  });

  test("later changes to the caller's key bytes do not reach the keyring", async () => {
    const bytes = kek(7);
    const envelope = createEnvelope(createKeyring({ keys: [{ id: "a", key: bytes }], activeKeyId: "a" }));
    const ciphertext = await envelope.encrypt("x", AAD);
    bytes.fill(0);
    expect(await envelope.decryptString(ciphertext, AAD)).toBe("x");
  });
});

describe("rotation", () => {
  test("rewrap moves every row to the new KEK; rows survive dropping the old one", async () => {
    const before = createEnvelope(keyringOf(["old"], "old"));
    const rows = await Promise.all(
      Array.from({ length: 25 }, async (_, index) => {
        const aad = `clusters/${index}/kubeconfig`;
        return {
          aad,
          plaintext: `secret-${index}`,
          ciphertext: await before.encrypt(`secret-${index}`, aad),
        };
      }),
    );

    const during = createEnvelope(keyringOf(["old", "new"], "new"));
    const rewrapped = await Promise.all(rows.map((row) => during.rewrap(row.ciphertext, row.aad)));
    for (const [index, ciphertext] of rewrapped.entries()) {
      const row = rows[index]!;
      expect(during.keyIdOf(ciphertext)).toBe("new");
      const [, , oldWrap, oldIv, oldSealed] = row.ciphertext.split(".");
      const [, , newWrap, newIv, newSealed] = ciphertext.split(".");
      expect(newWrap).not.toBe(oldWrap);
      expect([newIv, newSealed]).toEqual([oldIv!, oldSealed!]); // data ciphertext untouched
      expect(await during.decryptString(ciphertext, row.aad)).toBe(row.plaintext);
      expect(await during.rewrap(ciphertext, row.aad)).toBe(ciphertext); // idempotent
    }
    expect(rewrapped.filter((ciphertext) => during.keyIdOf(ciphertext) === "old")).toHaveLength(0);

    const keyring = createKeyring({ keys: [{ id: "new", key: kek(2) }], activeKeyId: "new" });
    const after = createEnvelope(keyring);
    for (const [index, ciphertext] of rewrapped.entries()) {
      expect(await after.decryptString(ciphertext, rows[index]!.aad)).toBe(rows[index]!.plaintext);
    }
    // A row that was not rewrapped is now unreadable — which is why rotation rewraps everything first.
    expect((await openFailure(after.decrypt(rows[0]!.ciphertext, rows[0]!.aad))).context.reason).toBe(
      "unknown_key",
    );
  });

  test("rewrap authenticates first: it refuses a tampered row or the wrong AAD", async () => {
    const before = createEnvelope(keyringOf(["old"], "old"));
    const during = createEnvelope(keyringOf(["old", "new"], "new"));
    const ciphertext = await before.encrypt("secret", AAD);
    await openFailure(during.rewrap(ciphertext, "clusters/other/kubeconfig"));
    const { prefix, sizes, bytes } = decodeParts(ciphertext);
    bytes[bytes.byteLength - 1]! ^= 0x01; // last tag byte of the data, which rewrap does not re-encrypt
    await openFailure(during.rewrap(encodeParts(prefix, sizes, bytes), AAD));
  });
});

describe("keyring file", () => {
  const tempDir = () => mkdtemp(join(tmpdir(), "kn-kek-"));

  test("generated once (mode 0600, logged), reused afterwards, and it decrypts what it sealed", async () => {
    const dataDir = join(await tempDir(), "nested");
    const logger = createMemoryLogger();
    const first = await loadOrCreateKeyring({ dataDir, logger });
    expect(first.source).toBe("generated");
    const path = join(dataDir, "kek.json");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]).toMatchObject({ level: "warn", path, keyId: first.keyring.activeKeyId });
    const file = JSON.parse(await readFile(path, "utf8"));
    expect(JSON.stringify(logger.records)).not.toContain(file.keys[0].key);
    expect(Buffer.from(file.keys[0].key, "base64")).toHaveLength(32);

    const ciphertext = await createEnvelope(first.keyring).encrypt(KUBECONFIG, AAD);
    const second = await loadOrCreateKeyring({ dataDir, logger });
    expect(second.source).toBe("file");
    expect(second.keyring.activeKeyId).toBe(first.keyring.activeKeyId);
    expect(await createEnvelope(second.keyring).decryptString(ciphertext, AAD)).toBe(KUBECONFIG);
    expect(logger.records).toHaveLength(1);
  });

  test("concurrent first starts agree on one keyring", async () => {
    const dataDir = await tempDir();
    const logger = createMemoryLogger();
    const loaded = await Promise.all([1, 2, 3].map(() => loadOrCreateKeyring({ dataDir, logger })));
    expect(new Set(loaded.map((l) => l.keyring.activeKeyId)).size).toBe(1);
  });

  test("configured keys win; the first listed is active unless KUBENOVA_KEK_ACTIVE says otherwise", async () => {
    const dataDir = await tempDir();
    const logger = createMemoryLogger();
    const a = Buffer.from(kek(1)).toString("base64");
    const b = Buffer.from(kek(2)).toString("base64url").replace(/=+$/, "");
    const configuredKeys = ` new:${a} , old:${b}`;
    const loaded = await loadOrCreateKeyring({ dataDir, configuredKeys, logger });
    expect(loaded.source).toBe("config");
    expect(loaded.keyring.activeKeyId).toBe("new");
    expect(loaded.keyring.keyIds).toEqual(["new", "old"]);
    await expect(stat(join(dataDir, "kek.json"))).rejects.toThrow();
    const pinned = await loadOrCreateKeyring({ dataDir, configuredKeys, activeKeyId: "old", logger });
    expect(pinned.keyring.activeKeyId).toBe("old");
    await expect(
      loadOrCreateKeyring({ dataDir, configuredKeys, activeKeyId: "gone", logger }),
    ).rejects.toThrow(/KUBENOVA_KEK_ACTIVE/);
  });

  test.each([
    ["a 16-byte key", `k1:${Buffer.alloc(16).toString("base64")}`, /KUBENOVA_KEK: key "k1" must be 32 bytes/],
    ["a 33-byte key", `k1:${Buffer.alloc(33).toString("base64")}`, /KUBENOVA_KEK: key "k1" must be 32 bytes/],
    ["no id", Buffer.alloc(32).toString("base64"), /KUBENOVA_KEK: each entry/],
    ["a bad id", `k.1:${Buffer.alloc(32).toString("base64")}`, /KUBENOVA_KEK: key id/],
    ["not base64", `k1:${"!".repeat(44)}`, /KUBENOVA_KEK: key "k1"/],
    [
      "a duplicate id",
      `k1:${Buffer.alloc(32).toString("base64")},k1:${Buffer.alloc(32).toString("base64")}`,
      /twice/,
    ],
  ])("KUBENOVA_KEK with %s is refused", (_name, value, message) => {
    expect(() => parseConfiguredKeys(value)).toThrow(message);
  });

  test("a malformed keyring file is refused with its path", async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, "kek.json"), "{}", { mode: 0o600 });
    await expect(loadOrCreateKeyring({ dataDir, logger: createMemoryLogger() })).rejects.toThrow(
      /kek\.json is malformed/,
    );
  });
});
