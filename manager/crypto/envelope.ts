/**
 * @module manager/crypto — secrets at rest (DESIGN.md §4): envelope encryption with a keyring of key-encryption keys
 * (KEKs), and loading that keyring from configuration or the data directory. WebCrypto only.
 *
 * This file: the envelope. Each record gets a fresh random 256-bit data key; the record is sealed with AES-256-GCM
 * under that key, and the data key is sealed (wrapped) with AES-256-GCM under the active KEK. The caller's AAD —
 * the row the ciphertext belongs to, e.g. `clusters/<id>/kubeconfig` — is authenticated by both seals, so a
 * ciphertext copied to another row does not decrypt.
 *
 * Serialized form, one ASCII string (every field base64url without padding, canonical encoding enforced):
 *
 *     kn1.<kid>.<wrap>.<iv>.<sealed>
 *
 * - `kn1`     format version.
 * - `<kid>`   id of the KEK that wrapped the data key (`[A-Za-z0-9_-]{1,64}`, readable without any key).
 * - `<wrap>`  60 bytes: 12-byte wrap IV ‖ AES-256-GCM(KEK, data key, AAD "kubenova/envelope/v1/wrap\0<kid>\0<aad>")
 *             (32-byte key + 16-byte tag).
 * - `<iv>`    12 random bytes, the data IV.
 * - `<sealed>` AES-256-GCM(data key, plaintext, AAD "kubenova/envelope/v1/data\0<aad>"): ciphertext ‖ 16-byte tag.
 *
 * The data AAD leaves out the kid on purpose: `rewrap` moves a record to a new KEK by replacing `<kid>` and `<wrap>`
 * only. Distinct prefixes keep a wrapped key from ever being accepted as data and vice versa.
 *
 * Any failure to open a ciphertext — bad format, unknown kid, wrong AAD, a flipped bit — is a
 * `KubeNovaError("KN-500")` with `context.reason` `format` | `unknown_key` | `authentication`: the ciphertext comes
 * from our own store, so failing to open it is a server-side fault (corruption, tampering or a missing key), never
 * something the API caller can fix. No partial plaintext is ever returned.
 */
import { KubeNovaError } from "../../shared/errors.ts";

export const ENVELOPE_VERSION = "kn1";
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const KEK_BYTES = 32;

const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAP_BYTES = IV_BYTES + DATA_KEY_BYTES + TAG_BYTES;
const WRAP_AAD_PREFIX = "kubenova/envelope/v1/wrap\u0000";
const DATA_AAD_PREFIX = "kubenova/envelope/v1/data\u0000";
const BASE64URL = /^[A-Za-z0-9_-]*$/;

const encoder = new TextEncoder();

// ── Keyring ─────────────────────────────────────────────────────────────────────────────────────────────────────

export interface KeyringKey {
  id: string;
  /** Exactly 32 bytes. */
  key: Uint8Array;
}

export interface KeyringOptions {
  keys: readonly KeyringKey[];
  /** The KEK new records (and rewraps) are sealed with. */
  activeKeyId: string;
}

/** A set of KEKs by id, one of them active. Keys are imported into WebCrypto lazily, as non-extractable. */
export interface Keyring {
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  has(keyId: string): boolean;
  /** The imported KEK, or `undefined` for an id that is not in the keyring. */
  cryptoKey(keyId: string): Promise<CryptoKey> | undefined;
}

/** Builds a keyring; throws a plain `Error` (a configuration problem) for bad ids, sizes or an absent active id. */
export function createKeyring(options: KeyringOptions): Keyring {
  if (options.keys.length === 0) throw new Error("the keyring needs at least one key-encryption key");
  const raw = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const { id, key } of options.keys) {
    if (!KEY_ID_PATTERN.test(id)) {
      throw new Error(`key-encryption key id "${id}" must match ${KEY_ID_PATTERN.source}`);
    }
    if (raw.has(id)) throw new Error(`key-encryption key id "${id}" appears twice`);
    if (key.byteLength !== KEK_BYTES) {
      throw new Error(
        `key-encryption key "${id}" must be exactly ${KEK_BYTES} bytes (got ${key.byteLength})`,
      );
    }
    raw.set(id, Uint8Array.from(key)); // a private copy: later changes to the caller's array cannot reach it
  }
  if (!raw.has(options.activeKeyId)) {
    throw new Error(`the active key-encryption key "${options.activeKeyId}" is not in the keyring`);
  }
  const imported = new Map<string, Promise<CryptoKey>>();
  return {
    activeKeyId: options.activeKeyId,
    keyIds: [...raw.keys()],
    has: (keyId) => raw.has(keyId),
    cryptoKey(keyId) {
      const bytes = raw.get(keyId);
      if (bytes === undefined) return undefined;
      let key = imported.get(keyId);
      if (key === undefined) {
        key = crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
        imported.set(keyId, key);
      }
      return key;
    },
  };
}

// ── Envelope ────────────────────────────────────────────────────────────────────────────────────────────────────

export interface Envelope {
  /** Seals `plaintext` (a string is UTF-8 encoded) for the row named by `aad`. */
  encrypt(plaintext: string | Uint8Array, aad: string): Promise<string>;
  /** Opens a ciphertext sealed for the same `aad`; throws `KN-500` if it cannot be authenticated. */
  decrypt(ciphertext: string, aad: string): Promise<Uint8Array>;
  /** `decrypt` for UTF-8 text; invalid UTF-8 is a `KN-500` too. */
  decryptString(ciphertext: string, aad: string): Promise<string>;
  /**
   * Re-wraps the data key under the active KEK; the data IV and sealed data stay byte-for-byte the same. The whole
   * record is authenticated first, so a rotation never carries a corrupted row forward. A record already under the
   * active KEK is returned unchanged (callers can skip the write).
   */
  rewrap(ciphertext: string, aad: string): Promise<string>;
  /** The id of the KEK a ciphertext is wrapped with; throws `KN-500` for something that is not an envelope. */
  keyIdOf(ciphertext: string): string;
}

interface ParsedEnvelope {
  keyId: string;
  wrap: Uint8Array;
  iv: Uint8Array;
  sealed: Uint8Array;
}

const openFailure = (message: string, reason: string, context: Record<string, unknown> = {}): KubeNovaError =>
  new KubeNovaError("KN-500", message, { context: { reason, ...context } });

const notAnEnvelope = () => openFailure("ciphertext is not a KubeNova envelope", "format");

function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Decodes base64url and refuses non-canonical text (Buffer ignores stray trailing bits; we do not). */
function fromBase64url(text: string): Uint8Array {
  if (!BASE64URL.test(text)) throw notAnEnvelope();
  const bytes = new Uint8Array(Buffer.from(text, "base64url"));
  if (toBase64url(bytes) !== text) throw notAnEnvelope();
  return bytes;
}

function parse(ciphertext: string): ParsedEnvelope {
  if (typeof ciphertext !== "string") throw notAnEnvelope();
  const parts = ciphertext.split(".");
  if (parts.length !== 5) throw notAnEnvelope();
  const [version, keyId, wrapText, ivText, sealedText] = parts as [string, string, string, string, string];
  if (version !== ENVELOPE_VERSION || !KEY_ID_PATTERN.test(keyId)) throw notAnEnvelope();
  const wrap = fromBase64url(wrapText);
  const iv = fromBase64url(ivText);
  const sealed = fromBase64url(sealedText);
  if (wrap.byteLength !== WRAP_BYTES || iv.byteLength !== IV_BYTES || sealed.byteLength < TAG_BYTES) {
    throw notAnEnvelope();
  }
  return { keyId, wrap, iv, sealed };
}

function serialize({ keyId, wrap, iv, sealed }: ParsedEnvelope): string {
  return [ENVELOPE_VERSION, keyId, toBase64url(wrap), toBase64url(iv), toBase64url(sealed)].join(".");
}

function checkAad(aad: string): void {
  // An empty AAD would bind the ciphertext to nothing; that is always a caller bug.
  if (typeof aad !== "string" || aad.length === 0) throw new Error("envelope AAD must be a non-empty string");
}

const randomBytes = (length: number): Uint8Array<ArrayBuffer> =>
  crypto.getRandomValues(new Uint8Array(length));

const importDataKey = (bytes: Uint8Array<ArrayBuffer>, usage: "encrypt" | "decrypt"): Promise<CryptoKey> =>
  crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, [usage]);

/** Envelope encryption over `keyring`; see the module comment for the format and the error contract. */
export function createEnvelope(keyring: Keyring): Envelope {
  const kek = (keyId: string): Promise<CryptoKey> => {
    const key = keyring.cryptoKey(keyId);
    if (key === undefined) {
      throw openFailure(
        `ciphertext was sealed with key-encryption key "${keyId}", which is not in the keyring`,
        "unknown_key",
        { keyId },
      );
    }
    return key;
  };

  const wrapDataKey = async (dataKey: Uint8Array<ArrayBuffer>, aad: string): Promise<Uint8Array> => {
    const keyId = keyring.activeKeyId;
    const iv = randomBytes(IV_BYTES);
    const additionalData = encoder.encode(`${WRAP_AAD_PREFIX}${keyId}\u0000${aad}`);
    const sealedKey = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData },
      await kek(keyId),
      dataKey,
    );
    const wrap = new Uint8Array(WRAP_BYTES);
    wrap.set(iv, 0);
    wrap.set(new Uint8Array(sealedKey), IV_BYTES);
    return wrap;
  };

  const unwrapDataKey = async (envelope: ParsedEnvelope, aad: string): Promise<Uint8Array<ArrayBuffer>> => {
    const key = await kek(envelope.keyId);
    const additionalData = encoder.encode(`${WRAP_AAD_PREFIX}${envelope.keyId}\u0000${aad}`);
    try {
      const dataKey = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: envelope.wrap.slice(0, IV_BYTES), additionalData },
        key,
        envelope.wrap.slice(IV_BYTES),
      );
      return new Uint8Array(dataKey);
    } catch {
      throw openFailure("ciphertext could not be authenticated (data key)", "authentication", {
        keyId: envelope.keyId,
      });
    }
  };

  const open = async (envelope: ParsedEnvelope, aad: string): Promise<Uint8Array> => {
    const dataKeyBytes = await unwrapDataKey(envelope, aad);
    const dataKey = await importDataKey(dataKeyBytes, "decrypt");
    dataKeyBytes.fill(0);
    try {
      const plaintext = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: envelope.iv.slice(),
          additionalData: encoder.encode(`${DATA_AAD_PREFIX}${aad}`),
        },
        dataKey,
        envelope.sealed.slice(),
      );
      return new Uint8Array(plaintext);
    } catch {
      throw openFailure("ciphertext could not be authenticated", "authentication", { keyId: envelope.keyId });
    }
  };

  return {
    async encrypt(plaintext, aad) {
      checkAad(aad);
      const bytes = typeof plaintext === "string" ? encoder.encode(plaintext) : plaintext;
      const dataKeyBytes = randomBytes(DATA_KEY_BYTES);
      const iv = randomBytes(IV_BYTES);
      const dataKey = await importDataKey(dataKeyBytes, "encrypt");
      const sealed = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: encoder.encode(`${DATA_AAD_PREFIX}${aad}`) },
        dataKey,
        Uint8Array.from(bytes),
      );
      const wrap = await wrapDataKey(dataKeyBytes, aad);
      dataKeyBytes.fill(0);
      return serialize({ keyId: keyring.activeKeyId, wrap, iv, sealed: new Uint8Array(sealed) });
    },

    async decrypt(ciphertext, aad) {
      checkAad(aad);
      return open(parse(ciphertext), aad);
    },

    async decryptString(ciphertext, aad) {
      checkAad(aad);
      const bytes = await open(parse(ciphertext), aad);
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw openFailure("decrypted secret is not valid UTF-8 text", "encoding");
      }
    },

    async rewrap(ciphertext, aad) {
      checkAad(aad);
      const envelope = parse(ciphertext);
      (await open(envelope, aad)).fill(0); // authenticate the whole record before moving it
      if (envelope.keyId === keyring.activeKeyId) return ciphertext;
      const dataKeyBytes = await unwrapDataKey(envelope, aad);
      const wrap = await wrapDataKey(dataKeyBytes, aad);
      dataKeyBytes.fill(0);
      return serialize({ ...envelope, keyId: keyring.activeKeyId, wrap });
    },

    keyIdOf(ciphertext) {
      return parse(ciphertext).keyId;
    },
  };
}
