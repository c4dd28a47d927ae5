/**
 * @module manager/main — builds the Manager's dependencies once from its configuration and serves them.
 * Used by `kubenova manager`, `kubenova migrate` and `kubenova token`, so all three see the same data dir,
 * database and secrets.
 */
import "reflect-metadata";
import { mkdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { type Broker, createBroker } from "../broker/broker.ts";
import { RevocationFileSchema, writeRevocationFile } from "../broker/revocations.ts";
import type { ManagerConfig } from "../shared/config.ts";
import { KubeNovaError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { createCsr, exportPrivateKeyPem, generateKeyPair } from "../shared/pki.ts";
import { KUBENOVA_VERSION } from "../shared/version.ts";
import { loadOrCreateJwtSecret } from "./auth/secret.ts";
import { createTokenSigner, type PrivateJwk, type TokenSigner } from "./auth/signer.ts";
import { createTokenVerifier, type TokenVerifier } from "./auth/verifier.ts";
import type { Bus } from "./bus/bus.ts";
import { createEmbeddedBus } from "./bus/embedded.ts";
import { createExternalBus } from "./bus/external.ts";
import { createEnvelope, type Envelope } from "./crypto/envelope.ts";
import { loadOrCreateKeyring } from "./crypto/keyring-file.ts";
import { createApp } from "./http/app.ts";
import type { AppServices } from "./http/context.ts";
import { createManagerMetrics } from "./metrics.ts";
import type { CertificateAuthority } from "./pki/ca.ts";
import { loadBrokerServerCertificate, loadOrCreateCertificateAuthority } from "./pki/ca-store.ts";
import { type EnrolmentDeps, enrolmentSettingsFromConfig, isClusterAllowed } from "./services/enrolment.ts";
import { openStore } from "./store/index.ts";
import type { Store } from "./store/store.ts";
import { createSyncChannel, type SyncChannel } from "./sync/channel.ts";

/** The certificate CN the Manager uses on an external broker (the broker's ACL gives it the Manager's side). */
export const MANAGER_IDENTITY = "kubenova-manager";

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
  /** The raw store (services use the channel's view of it, which wakes the dispatcher on commits). */
  store: Store;
  envelope: Envelope;
  ca: CertificateAuthority;
  /** The embedded broker, unless an external one is configured. */
  broker: Broker | null;
  bus: Bus;
  channel: SyncChannel;
  /** Starts the channel (presence, ingest); the HTTP server is started by `startManager`. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The Manager's own client identity for an external broker: CN `kubenova-manager`, signed by our CA. */
async function managerClientIdentity(ca: CertificateAuthority) {
  const keys = await generateKeyPair();
  const csrPem = await createCsr({ commonName: MANAGER_IDENTITY, keys });
  const issued = await ca.signClientCsr({
    csrPem,
    clusterId: MANAGER_IDENTITY,
    lifetimeSeconds: 30 * 86_400,
  });
  return { certPem: issued.certificatePem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Appends a revoked cluster id to the file a standalone `kubenova broker` watches. */
async function recordRevocation(path: string, clusterId: string): Promise<void> {
  let ids: string[] = [];
  try {
    ids = RevocationFileSchema.parse(JSON.parse(await readFile(path, "utf8"))).revokedClusterIds;
  } catch {
    // first revocation, or an unreadable file that we replace
  }
  await writeRevocationFile(path, [...ids, clusterId]);
}

/**
 * Opens and migrates the store, loads keys and secrets, the CA, the broker (embedded, or a Bus to an external
 * one) and the channel: everything the HTTP app and the workers need, built once.
 */
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
  const ca = await loadOrCreateCertificateAuthority({
    store,
    envelope,
    logger: logger.child({ adapter: "pki" }),
    files:
      config.pki.caCertFile && config.pki.caKeyFile
        ? { certFile: config.pki.caCertFile, keyFile: config.pki.caKeyFile }
        : null,
  });

  let broker: Broker | null = null;
  let bus: Bus;
  if (config.mqtt.externalUrl) {
    const identity = await managerClientIdentity(ca);
    bus = await createExternalBus({
      url: config.mqtt.externalUrl,
      caPem: ca.certificatePem,
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      clientId: `${MANAGER_IDENTITY}-${hostname()}-${process.pid}`,
      logger: logger.child({ adapter: "bus" }),
    });
  } else {
    const tls = await loadBrokerServerCertificate({ ca, config, logger: logger.child({ adapter: "pki" }) });
    broker = await createBroker({
      host: config.mqtt.host,
      port: config.mqtt.port,
      caPem: tls.caPem,
      certPem: tls.certificatePem,
      keyPem: tls.privateKeyPem,
      isClusterAllowed: (clusterId) => isClusterAllowed({ store }, clusterId),
      limits: {
        maxPayloadBytes: config.mqtt.maxPayloadBytes,
        publishRatePerSecond: config.mqtt.publishRatePerSecond,
        maxHandshakesInFlight: config.mqtt.maxHandshakesInFlight,
      },
      logger: logger.child({ adapter: "broker" }),
    });
    bus = createEmbeddedBus({ broker, logger: logger.child({ adapter: "bus" }) });
    logger.info("embedded MQTT broker listening", {
      host: broker.host,
      port: broker.port,
      url: config.mqtt.publicUrl,
    });
  }
  const channel = createSyncChannel({ store, bus, logger, maxPayloadBytes: config.mqtt.maxPayloadBytes });
  const settings = enrolmentSettingsFromConfig(config);
  // With an ephemeral MQTT port (tests, demos) operators must be told the port actually bound.
  if (broker && settings.brokerUrl.endsWith(":0"))
    settings.brokerUrl = settings.brokerUrl.replace(/:0$/, `:${broker.port}`);
  const enrolment: EnrolmentDeps = {
    ca,
    settings,
    onClusterRevoked: async (clusterId) => {
      broker?.revoke(clusterId);
      channel.dispatcher.forget(clusterId);
      if (config.brokerRevocationFile) await recordRevocation(config.brokerRevocationFile, clusterId);
    },
  };
  const metrics = createManagerMetrics();
  metrics.setSources({
    presence: () => channel.presence.counts(),
    ingest: () => channel.ingest.stats(),
    dispatcher: () => channel.dispatcher.stats(),
    ...(broker ? { broker: () => broker!.metrics } : {}),
  });
  const services: AppServices = {
    metrics,
    commands: channel.commands,
    store: channel.store,
    secrets: envelope,
    clock: () => new Date(),
    logger,
    verifier: keys.verifier,
    signer,
    enrolment,
    options: {
      bodyLimitBytes: config.http.bodyLimitBytes,
      insecureDevAuth: config.insecureDevAuth,
      version: KUBENOVA_VERSION,
    },
  };
  return {
    services,
    store,
    envelope,
    ca,
    broker,
    bus,
    channel,
    start: () => channel.start(),
    async close() {
      await channel.stop();
      await bus.close();
      await broker?.close();
      await store.close();
    },
  };
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
  await runtime.start();
  const app = createApp(runtime.services);
  const server = Bun.serve({
    hostname: config.http.host,
    port: config.http.port,
    fetch: app.fetch,
    // Bodies are capped by the API's own limit with a KN-413; this only stops absurd uploads early.
    maxRequestBodySize: Math.max(config.http.bodyLimitBytes * 2, 1024 * 1024),
  });
  const url = `http://${config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host}:${server.port}`;
  const enrolmentSettings = runtime.services.enrolment?.settings;
  if (enrolmentSettings?.managerUrl.endsWith(":0")) enrolmentSettings.managerUrl = url;
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
