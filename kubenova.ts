#!/usr/bin/env bun
/**
 * @module kubenova — the one command-line entry point: `kubenova <subcommand>` (also the compiled binary).
 */
import { parseArgs } from "node:util";
import type { Role } from "./shared/api/models.ts";
import { ConfigError } from "./shared/env.ts";
import { parseOperatorConfig } from "./shared/operator-config.ts";
import { isKubeNovaError } from "./shared/errors.ts";
import { createLogger } from "./shared/logger.ts";
import { mkdir } from "node:fs/promises";
import { KUBENOVA_VERSION } from "./shared/version.ts";
// Each command imports what it runs when it runs: the operator never loads the Manager's HTTP stack, store
// drivers, broker or tracing SDK (tens of MB of RSS it would carry for nothing; docs/benchmarks.md).

/** The help text; it lists the Manager's variables, so it loads their schemas only when asked for. */
async function usage(): Promise<string> {
  const { MANAGER_ENV } = await import("./shared/config.ts");
  return `kubenova ${KUBENOVA_VERSION} — federated multi-datacenter CaaS/PaaS control plane

Usage: kubenova <command> [options]

Commands:
  manager                 Run the Manager (REST API, dashboard, store) on its configured address
  token --role R [--tenant T] [--project P] [--ttl 1h] [--subject S]
                          Print a signed API token (same data dir and secrets as the Manager)
  demo                    A Manager and two operators against simulated clusters (needs the repository)
  operator                Run the in-cluster operator (NOVA_* variables; see install.yaml)
  broker                  Run the MQTT broker on its own (certificate auth and ACL; no database)
  migrate                 Apply pending database migrations and exit
  rotate-keys             Re-wrap every stored secret under the active KEK (KUBENOVA_KEK_ACTIVE) and exit
  version                 Print the version
  help                    This text

Configuration comes from environment variables:
${Object.entries(MANAGER_ENV)
  .map(([name, { doc }]) => `  ${name.padEnd(28)} ${doc}`)
  .join("\n")}
`;
}

/** `90`, `90s`, `15m`, `1h`, `7d` → seconds. */
export function parseDuration(text: string): number {
  const match = text.trim().match(/^(\d+)\s*(s|m|h|d)?$/);
  if (!match) throw new Error(`--ttl: cannot read ${JSON.stringify(text)}; use e.g. 600, 15m, 1h or 7d`);
  const factor = { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? "s") as "s" | "m" | "h" | "d"];
  return Number(match[1]) * factor;
}

function fail(message: string): never {
  process.stderr.write(`kubenova: ${message}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(await usage());
    return;
  }
  if (command === "version" || command === "--version") {
    process.stdout.write(`kubenova ${KUBENOVA_VERSION} (bun ${Bun.version})\n`);
    return;
  }
  if (command === "demo") {
    // The demo's simulated clusters load the real Capsule/KubeVela CRDs from the repository's shared/ folder,
    // so it runs from a checkout (`bun run demo`), not from a binary copied elsewhere.
    await import("./tests/demo/main.ts");
    return;
  }
  if (command === "operator") {
    const operatorConfig = parseOperatorConfig(process.env);
    const logger = createLogger({
      level: operatorConfig.KUBENOVA_LOG_LEVEL,
      base: { component: "operator" },
    });
    await import("./operator/mqtt-deps.ts"); // before anything loads mqtt.js
    const { runOperator } = await import("./operator/main.ts");
    const running = await runOperator(operatorConfig, logger);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      });
    }
    return;
  }
  // @peculiar/x509's tsyringe needs the Reflect polyfill before it loads. Each x509 module imports it first, but in
  // the single binary the bundle can initialise tsyringe before that import runs; every command from here on may
  // reach x509 (the operator does not: its CSR is shared/csr.ts), so the polyfill loads first.
  await import("reflect-metadata");
  if (command === "broker") {
    const { parseBrokerConfig } = await import("./broker/config.ts");
    const { runBroker } = await import("./broker/main.ts");
    const brokerConfig = parseBrokerConfig(process.env);
    const logger = createLogger({ level: brokerConfig.logLevel, base: { component: "broker" } });
    const running = await runBroker(brokerConfig, logger);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        running.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      });
    }
    return;
  }
  const { parseManagerConfig } = await import("./shared/config.ts");
  const config = parseManagerConfig(process.env);
  switch (command) {
    case "manager": {
      const logger = createLogger({ level: config.logLevel, base: { component: "manager" } });
      const { setupTelemetry } = await import("./shared/telemetry-sdk.ts");
      const { startManager } = await import("./manager/main.ts");
      setupTelemetry({ serviceName: "kubenova-manager", otlpEndpoint: config.otlpEndpoint });
      await startManager(config, logger, { handleSignals: true });
      return;
    }
    case "migrate": {
      const logger = createLogger({ level: config.logLevel, base: { component: "migrate" } });
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
      const { openStore } = await import("./manager/store/index.ts");
      const store = await openStore({
        databaseUrl: config.databaseUrl ?? undefined,
        dataDir: config.dataDir,
        logger: logger.child({ adapter: "store" }),
      });
      const status = await store.migrate();
      await store.close();
      process.stdout.write(`schema at version ${status.current} of ${status.latest}\n`);
      return;
    }
    case "rotate-keys": {
      const logger = createLogger({ level: config.logLevel, base: { component: "rotate-keys" } });
      const { loadOrCreateKeyring } = await import("./manager/crypto/keyring-file.ts");
      const { createEnvelope } = await import("./manager/crypto/envelope.ts");
      const { rotateKeys } = await import("./manager/crypto/rotate.ts");
      const { openStore } = await import("./manager/store/index.ts");
      const store = await openStore({
        databaseUrl: config.databaseUrl ?? undefined,
        dataDir: config.dataDir,
        logger: logger.child({ adapter: "store" }),
      });
      try {
        await store.migrate();
        const { keyring } = await loadOrCreateKeyring({
          dataDir: config.dataDir,
          configuredKeys: config.kek.keys ?? undefined,
          activeKeyId: config.kek.activeKeyId ?? undefined,
          logger,
        });
        const report = await rotateKeys({
          store,
          envelope: createEnvelope(keyring),
          activeKeyId: keyring.activeKeyId,
        });
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } finally {
        await store.close();
      }
      return;
    }
    case "token": {
      const { values } = parseArgs({
        args: rest,
        options: {
          role: { type: "string" },
          tenant: { type: "string" },
          project: { type: "string" },
          ttl: { type: "string", default: "1h" },
          subject: { type: "string" },
        },
        strict: true,
      });
      const { ROLES } = await import("./shared/api/models.ts");
      if (!values.role || !(ROLES as readonly string[]).includes(values.role)) {
        fail(`--role must be one of ${ROLES.join(", ")}`);
      }
      // Logs go to stderr so `$(kubenova token …)` captures only the token.
      const logger = createLogger({
        level: config.logLevel,
        base: { component: "token" },
        sink: (line) => process.stderr.write(`${line}\n`),
      });
      const { loadTokenKeys } = await import("./manager/main.ts");
      const { signer } = await loadTokenKeys(config, logger);
      if (!signer)
        fail("no signing key: with KUBENOVA_JWT_JWKS set, KUBENOVA_JWT_SIGNING_KEY must name a private JWK");
      const signed = await signer.sign({
        subject: values.subject ?? `cli:${values.role}`,
        role: values.role as Role,
        tenant: values.tenant,
        project: values.project,
        ttlSeconds: parseDuration(values.ttl ?? "1h"),
      });
      process.stdout.write(`${signed.token}\n`);
      return;
    }
    default:
      fail(`unknown command ${JSON.stringify(command)}\n\n${await usage()}`);
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    if (error instanceof ConfigError) fail(`configuration error: ${error.message}`);
    if (isKubeNovaError(error)) fail(`${error.code}: ${error.message}`);
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
  });
}
