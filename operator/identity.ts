/**
 * The operator's identity (DESIGN.md §4): it makes its private key itself (the key never leaves the data dir),
 * enrols once with the bootstrap token, and renews over its current identity at a jittered 70–90% of the
 * certificate's lifetime. Files are written to a temp name and renamed, so a crash never leaves half a key.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { enroll, type EnrolmentResult, renew } from "../shared/enrolment-client.ts";
import type { Logger } from "../shared/logger.ts";
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from "../shared/csr.ts";

export interface OperatorIdentity {
  clusterId: string;
  brokerUrl: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  renewAfter: Date;
  expiresAt: Date;
}

const FILE = "identity.json";

async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
}

async function save(dir: string, identity: OperatorIdentity): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(join(dir, FILE), JSON.stringify(identity), 0o600);
}

async function fromResult(result: EnrolmentResult, keys: CryptoKeyPair): Promise<OperatorIdentity> {
  return {
    clusterId: result.clusterId,
    brokerUrl: result.brokerUrl,
    caPem: result.caBundle,
    certPem: result.certificate,
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    renewAfter: new Date(result.renewAfter),
    expiresAt: new Date(result.expiresAt),
  };
}

async function load(dir: string): Promise<OperatorIdentity | null> {
  try {
    const raw = JSON.parse(await readFile(join(dir, FILE), "utf8")) as OperatorIdentity & {
      renewAfter: string;
      expiresAt: string;
    };
    return { ...raw, renewAfter: new Date(raw.renewAfter), expiresAt: new Date(raw.expiresAt) };
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return null;
    throw new Error(`the operator identity in ${dir} is unreadable: ${(error as Error).message}`);
  }
}

/** The stored identity if it is still valid, else a fresh enrolment with the bootstrap token. */
export async function loadOrEnroll(options: {
  dir: string;
  managerUrl: string;
  clusterId: string;
  bootstrapToken: string | null;
  logger: Logger;
  now?: () => Date;
}): Promise<OperatorIdentity> {
  const now = options.now ?? (() => new Date());
  const stored = await load(options.dir);
  if (stored && stored.clusterId === options.clusterId && stored.expiresAt > now()) {
    options.logger.info("using the stored identity", { expires_at: stored.expiresAt.toISOString() });
    return stored;
  }
  if (!options.bootstrapToken) {
    throw new Error(
      stored
        ? "the client certificate has expired and there is no bootstrap token: mint one (POST /api/v1/clusters/{cluster}/bootstrap-token) and restart with NOVA_BOOTSTRAP_TOKEN"
        : "no identity yet and no bootstrap token: set NOVA_BOOTSTRAP_TOKEN or NOVA_BOOTSTRAP_TOKEN_FILE",
    );
  }
  const keys = await generateKeyPair();
  const result = await enroll({
    managerUrl: options.managerUrl,
    clusterId: options.clusterId,
    bootstrapToken: options.bootstrapToken,
    keys,
  });
  const identity = await fromResult(result, keys);
  await save(options.dir, identity);
  options.logger.info("enrolled", {
    broker: identity.brokerUrl,
    expires_at: identity.expiresAt.toISOString(),
  });
  return identity;
}

/** Renews at `renewAfter` (retrying with backoff on failure) and hands each new identity to `onRenewed`. */
export function scheduleRenewal(options: {
  dir: string;
  managerUrl: string;
  current: () => OperatorIdentity;
  onRenewed: (identity: OperatorIdentity) => void;
  logger: Logger;
  now?: () => Date;
}): { stop(): void } {
  const now = options.now ?? (() => new Date());
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let failures = 0;

  const arm = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(run, Math.max(0, Math.min(delayMs, 2 ** 31 - 1)));
  };

  async function run(): Promise<void> {
    const identity = options.current();
    try {
      const newKeys = await generateKeyPair();
      const result = await renew({
        managerUrl: options.managerUrl,
        clusterId: identity.clusterId,
        currentCertPem: identity.certPem,
        currentKey: await importPrivateKeyPem(identity.keyPem),
        newKeys,
      });
      const next = await fromResult(result, newKeys);
      await save(options.dir, next);
      failures = 0;
      options.logger.info("renewed the client certificate", { expires_at: next.expiresAt.toISOString() });
      options.onRenewed(next);
      arm(next.renewAfter.getTime() - now().getTime());
    } catch (error) {
      failures++;
      const delay = Math.min(300_000, 1000 * 2 ** Math.min(failures, 8));
      options.logger.warn("certificate renewal failed; retrying", {
        err: error as Error,
        retry_in_ms: delay,
      });
      arm(delay);
    }
  }

  arm(options.current().renewAfter.getTime() - now().getTime());
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
