/**
 * @module manager/main — builds the Manager's dependencies once from its configuration and serves them.
 * Used by `kubenova manager`, `kubenova migrate` and `kubenova token`, so all three see the same data dir,
 * database and secrets.
 */
import { mkdir, readFile } from "node:fs/promises";
import type { ManagerConfig } from "../shared/config.ts";
import { KubeNovaError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { loadOrCreateJwtSecret } from "./auth/secret.ts";
import { createTokenSigner, type PrivateJwk, type TokenSigner } from "./auth/signer.ts";
import { createTokenVerifier, type TokenVerifier } from "./auth/verifier.ts";
import { createEnvelope, type Envelope } from "./crypto/envelope.ts";
import { loadOrCreateKeyring } from "./crypto/keyring-file.ts";
import { createApp } from "./http/app.ts";
import type { AppServices } from "./http/context.ts";
import { openStore } from "./store/index.ts";
import type { Store } from "./store/store.ts";
import { KUBENOVA_VERSION } from "./version.ts";

export interface TokenKeys {
  verifier: TokenVerifier;
  signer: TokenSigner | null;
}

/** The token verifier and, where the Manager holds a signing key, the signer (HS256 always; JWKS if configured). */
export async function loadTokenKeys(config: ManagerConfig, logger: Logger): Promise<TokenKeys> {
  const common = {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    clockToleranceSeconds: config.jwt.leewaySeconds,
  };
  if (config.jwt.jwks) {
    const jwks = /^https?:\/\//.test(config.jwt.jwks) ? { url: config.jwt.jwks } : { path: config.jwt.jwks };
    const verifier = createTokenVerifier({
      ...common,
      algorithm: "JWKS",
      jwks,
      algorithms: config.jwt.algorithms,
    });
    let signer: TokenSigner | null = null;
    if (config.jwt.signingKeyFile) {
      const jwk = JSON.parse(await readFile(config.jwt.signingKeyFile, "utf8")) as PrivateJwk;
      const algorithm = jwk.kty === "EC" ? "ES256" : "RS256";
      signer = createTokenSigner({ ...common, algorithm, privateKey: jwk, keyId: jwk.kid ?? "" });
    }
    return { verifier, signer };
  }
  const { secret } = await loadOrCreateJwtSecret({
    dataDir: config.dataDir,
    configuredSecret: config.jwt.secret ?? undefined,
    logger,
  });
  return {
    verifier: createTokenVerifier({ ...common, algorithm: "HS256", secret }),
    signer: createTokenSigner({ ...common, algorithm: "HS256", secret }),
  };
}

export interface ManagerRuntime {
  services: AppServices;
  store: Store;
  envelope: Envelope;
  close(): Promise<void>;
}

/** Opens and migrates the store, loads keys and secrets; everything the HTTP app and later workers need. */
export async function buildManager(config: ManagerConfig, logger: Logger): Promise<ManagerRuntime> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    logger: logger.child({ adapter: "store" }),
  });
  const migrations = await store.migrate();
  logger.info("store ready", {
    dialect: store.dialect,
    schema: migrations.current,
    applied: migrations.applied,
  });
  const { keyring } = await loadOrCreateKeyring({
    dataDir: config.dataDir,
    configuredKeys: config.kek.keys ?? undefined,
    activeKeyId: config.kek.activeKeyId ?? undefined,
    logger,
  });
  const envelope = createEnvelope(keyring);
  const keys = await loadTokenKeys(config, logger);
  const signer: TokenSigner = keys.signer ?? {
    sign: async () => {
      throw new KubeNovaError("KN-503", "this Manager has no signing key (set KUBENOVA_JWT_SIGNING_KEY)");
    },
  };
  const services: AppServices = {
    store,
    secrets: envelope,
    clock: () => new Date(),
    logger,
    verifier: keys.verifier,
    signer,
    options: {
      bodyLimitBytes: config.http.bodyLimitBytes,
      insecureDevAuth: config.insecureDevAuth,
      version: KUBENOVA_VERSION,
    },
  };
  return { services, store, envelope, close: () => store.close() };
}

export interface RunningManager {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Serves the API until stopped; SIGINT/SIGTERM stop it gracefully when `handleSignals` is set. */
export async function startManager(
  config: ManagerConfig,
  logger: Logger,
  options: { handleSignals?: boolean } = {},
): Promise<RunningManager> {
  const runtime = await buildManager(config, logger);
  const app = createApp(runtime.services);
  const server = Bun.serve({
    hostname: config.http.host,
    port: config.http.port,
    fetch: app.fetch,
    // Bodies are capped by the API's own limit with a KN-413; this only stops absurd uploads early.
    maxRequestBodySize: Math.max(config.http.bodyLimitBytes * 2, 1024 * 1024),
  });
  const url = `http://${config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host}:${server.port}`;
  logger.info("manager listening", { url, docs: `${url}/docs`, version: KUBENOVA_VERSION });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop();
    await runtime.close();
    logger.info("manager stopped");
  };
  if (options.handleSignals) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        logger.info("shutting down", { signal });
        stop().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error("shutdown failed", { err: error as Error });
            process.exit(1);
          },
        );
      });
    }
  }
  return { url, port: server.port ?? config.http.port, stop };
}
