/**
 * The HS256 secret: from configuration (`KUBENOVA_JWT_SECRET`) in production, or a development secret generated once
 * into the data directory so a single-binary edge install works out of the box and survives restarts.
 */
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../shared/logger.ts";
import { MIN_HS256_SECRET_BYTES } from "./verifier.ts";

export const JWT_SECRET_FILE = "jwt-secret";
const GENERATED_SECRET_BYTES = 48;

export interface LoadJwtSecretOptions {
  dataDir: string;
  /** The configured secret (`KUBENOVA_JWT_SECRET`), if any. */
  configuredSecret?: string | undefined;
  logger: Logger;
}

export interface JwtSecret {
  secret: string;
  source: "config" | "file" | "generated";
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown }).code === "ENOENT";
}

/**
 * The configured secret (validated: ≥ 32 UTF-8 bytes), else `<dataDir>/jwt-secret`, else a new 48-byte random
 * base64url secret written there with mode 0600 (and a warning, since every Manager replica must share one secret).
 */
export async function loadOrCreateJwtSecret(options: LoadJwtSecretOptions): Promise<JwtSecret> {
  const { dataDir, configuredSecret, logger } = options;
  if (configuredSecret !== undefined && configuredSecret !== "") {
    const length = utf8Length(configuredSecret);
    if (length < MIN_HS256_SECRET_BYTES) {
      throw new Error(
        `KUBENOVA_JWT_SECRET must be at least ${MIN_HS256_SECRET_BYTES} bytes (UTF-8); it has ${length}`,
      );
    }
    return { secret: configuredSecret, source: "config" };
  }

  const path = join(dataDir, JWT_SECRET_FILE);
  const existing = await readSecretFile(path, logger);
  if (existing !== undefined) return { secret: existing, source: "file" };

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(GENERATED_SECRET_BYTES))).toString(
    "base64url",
  );
  try {
    // "wx": never overwrite a secret another process wrote meanwhile; that would invalidate its tokens.
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as { code?: unknown }).code !== "EEXIST") throw error;
    const raced = await readSecretFile(path, logger);
    if (raced !== undefined) return { secret: raced, source: "file" };
    throw error;
  }
  await chmod(path, 0o600); // the umask may have narrowed the mode further, never widened it; make it exact
  logger.warn("generated a development JWT secret; set KUBENOVA_JWT_SECRET for production", { path });
  return { secret, source: "generated" };
}

async function readSecretFile(path: string, logger: Logger): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new Error(`cannot read the JWT secret file ${path}`, { cause: error });
  }
  const secret = text.trim();
  if (utf8Length(secret) < MIN_HS256_SECRET_BYTES) {
    throw new Error(
      `the JWT secret in ${path} is shorter than ${MIN_HS256_SECRET_BYTES} bytes; delete it or fix it`,
    );
  }
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    logger.warn("the JWT secret file is readable by other users; chmod 600 it", {
      path,
      mode: (mode & 0o777).toString(8),
    });
  }
  return secret;
}
