/**
 * @module broker/main — `kubenova broker`: the same broker as the Manager's embedded one, as its own process
 * (DESIGN.md §2). No database: the CA certificate and server certificate/key come from files, revocations from
 * the JSON file the Manager writes (broker/revocations.ts).
 */
import { readFile } from "node:fs/promises";
import { createLogger, type Logger } from "../shared/logger.ts";
import { type Broker, createBroker } from "./broker.ts";
import { type BrokerConfig, parseBrokerConfig } from "./config.ts";
import { watchRevocationFile } from "./revocations.ts";

export interface RunningBroker {
  broker: Broker;
  close(): Promise<void>;
}

/** Starts the standalone broker; resolves once it listens. */
export async function runBroker(config: BrokerConfig, logger: Logger): Promise<RunningBroker> {
  const [caPem, certPem, keyPem] = await Promise.all([
    readFile(config.caCertFile, "utf8"),
    readFile(config.certFile, "utf8"),
    readFile(config.keyFile, "utf8"),
  ]);
  // The broker is created after the list is loaded, so a revoked cluster is refused from the first connection.
  let kick: (clusterId: string) => void = () => {};
  const revocations = config.revocationFile
    ? await watchRevocationFile({ path: config.revocationFile, logger, onRevoked: (id) => kick(id) })
    : null;
  if (!revocations) logger.warn("no KUBENOVA_BROKER_REVOCATION_FILE: deleted clusters are not refused", {});
  const broker = await createBroker({
    host: config.host,
    port: config.port,
    caPem,
    certPem,
    keyPem,
    isClusterAllowed: async (clusterId) => !(revocations?.has(clusterId) ?? false),
    managerIdentity: config.managerIdentity,
    limits: {
      maxPayloadBytes: config.maxPayloadBytes,
      publishRatePerSecond: config.publishRatePerSecond,
      maxHandshakesInFlight: config.maxHandshakesInFlight,
    },
    logger,
  });
  kick = (clusterId) => broker.revoke(clusterId);
  return {
    broker,
    async close() {
      revocations?.close();
      await broker.close();
    },
  };
}

if (import.meta.main) {
  let config: BrokerConfig;
  try {
    config = parseBrokerConfig(process.env);
  } catch (error) {
    process.stderr.write(`kubenova broker: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel, base: { process: "broker" } });
  const running = await runBroker(config, logger);
  const stop = async (signal: string) => {
    logger.info("stopping", { signal });
    await running.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}
