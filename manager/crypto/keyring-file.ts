/**
 * Where the KEKs come from: `KUBENOVA_KEK` (`id1:base64key,id2:base64key`, active one from `KUBENOVA_KEK_ACTIVE`,
 * else the first listed — as in Kubernetes' EncryptionConfiguration, the first key encrypts and the others only
 * decrypt), or `<dataDir>/kek.json`, generated on first start so a single-binary install encrypts from day one.
 */
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { uuidv7 } from "../../shared/ids.ts";
import type { Logger } from "../../shared/logger.ts";
import { createKeyring, KEK_BYTES, KEY_ID_PATTERN, type Keyring, type KeyringKey } from "./envelope.ts";

export const KEYRING_FILE = "kek.json";

export interface LoadKeyringOptions {
  dataDir: string;
  /** `KUBENOVA_KEK`: `id1:base64key,id2:base64key` (standard or URL-safe base64, 32-byte keys). */
  configuredKeys?: string | undefined;
  /** `KUBENOVA_KEK_ACTIVE`: the id new secrets are wrapped with. */
  activeKeyId?: string | undefined;
  logger: Logger;
}

export interface LoadedKeyring {
  keyring: Keyring;
  source: "config" | "file" | "generated";
}

const BASE64_ANY = /^[A-Za-z0-9+/_-]+={0,2}$/;

const KeyringFile = z.object({
  version: z.literal(1),
  activeKeyId: z.string(),
  keys: z
    .array(
      z.object({ id: z.string().regex(KEY_ID_PATTERN), key: z.string(), createdAt: z.string().optional() }),
    )
    .min(1),
});
type KeyringFile = z.infer<typeof KeyringFile>;

function decodeKey(text: string, where: string, id: string): Uint8Array {
  const bytes = BASE64_ANY.test(text) ? new Uint8Array(Buffer.from(text, "base64")) : new Uint8Array(0);
  if (bytes.byteLength !== KEK_BYTES) {
    throw new Error(
      `${where}: key "${id}" must be ${KEK_BYTES} bytes, base64-encoded (got ${bytes.byteLength})`,
    );
  }
  return bytes;
}

/** Parses `KUBENOVA_KEK`; every error names the variable and the key id, never the key. */
export function parseConfiguredKeys(value: string): KeyringKey[] {
  const keys: KeyringKey[] = [];
  for (const entry of value.split(",")) {
    const trimmed = entry.trim();
    if (trimmed === "") continue;
    const colon = trimmed.indexOf(":");
    if (colon <= 0) throw new Error("KUBENOVA_KEK: each entry must be <id>:<base64 key>");
    const id = trimmed.slice(0, colon);
    if (!KEY_ID_PATTERN.test(id))
      throw new Error(`KUBENOVA_KEK: key id "${id}" must match ${KEY_ID_PATTERN.source}`);
    if (keys.some((key) => key.id === id)) throw new Error(`KUBENOVA_KEK: key id "${id}" appears twice`);
    keys.push({ id, key: decodeKey(trimmed.slice(colon + 1), "KUBENOVA_KEK", id) });
  }
  if (keys.length === 0) throw new Error("KUBENOVA_KEK: no keys given");
  return keys;
}

function keyringFrom(keys: KeyringKey[], activeKeyId: string, activeFrom: string): Keyring {
  if (!keys.some((key) => key.id === activeKeyId)) {
    throw new Error(`${activeFrom}: key-encryption key "${activeKeyId}" is not among the configured keys`);
  }
  return createKeyring({ keys, activeKeyId });
}

/**
 * The keyring from `configuredKeys`, else from `<dataDir>/kek.json`, else a newly generated KEK written there
 * (mode 0600; a warning says where, because losing that file loses every secret sealed with it).
 */
export async function loadOrCreateKeyring(options: LoadKeyringOptions): Promise<LoadedKeyring> {
  const { dataDir, configuredKeys, activeKeyId, logger } = options;
  if (configuredKeys !== undefined && configuredKeys.trim() !== "") {
    const keys = parseConfiguredKeys(configuredKeys);
    const active = activeKeyId ?? keys[0]!.id;
    return { keyring: keyringFrom(keys, active, "KUBENOVA_KEK_ACTIVE"), source: "config" };
  }

  const path = join(dataDir, KEYRING_FILE);
  const existing = await readKeyringFile(path, logger);
  if (existing !== undefined) return { keyring: fromFile(existing, path, activeKeyId), source: "file" };

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const id = `kek-${uuidv7()}`;
  const content: KeyringFile = {
    version: 1,
    activeKeyId: id,
    keys: [
      {
        id,
        key: Buffer.from(crypto.getRandomValues(new Uint8Array(KEK_BYTES))).toString("base64"),
        createdAt: new Date().toISOString(),
      },
    ],
  };
  try {
    // "wx": never overwrite a keyring another process wrote meanwhile; its secrets would become unreadable.
    await writeFile(path, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as { code?: unknown }).code !== "EEXIST") throw error;
    const raced = await readKeyringFile(path, logger);
    if (raced === undefined) throw error;
    return { keyring: fromFile(raced, path, activeKeyId), source: "file" };
  }
  await chmod(path, 0o600);
  logger.warn("generated a key-encryption key; back this file up or set KUBENOVA_KEK for production", {
    path,
    keyId: id,
  });
  return { keyring: fromFile(content, path, activeKeyId), source: "generated" };
}

function fromFile(file: KeyringFile, path: string, activeKeyId: string | undefined): Keyring {
  const keys = file.keys.map(({ id, key }) => ({ id, key: decodeKey(key, path, id) }));
  return activeKeyId === undefined
    ? keyringFrom(keys, file.activeKeyId, path)
    : keyringFrom(keys, activeKeyId, "KUBENOVA_KEK_ACTIVE");
}

async function readKeyringFile(path: string, logger: Logger): Promise<KeyringFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw new Error(`cannot read the key-encryption keyring ${path}`, { cause: error });
  }
  let parsed: KeyringFile;
  try {
    parsed = KeyringFile.parse(JSON.parse(text));
  } catch (error) {
    throw new Error(`the key-encryption keyring ${path} is malformed`, { cause: error });
  }
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    logger.warn("the key-encryption keyring is readable by other users; chmod 600 it", {
      path,
      mode: (mode & 0o777).toString(8),
    });
  }
  return parsed;
}
