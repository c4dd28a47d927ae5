/**
 * @module shared/config — every environment variable KubeNova reads, parsed once with zod at startup.
 * A bad value fails with a message naming the variable; nothing else in the code reads `process.env`.
 */
import { z } from "zod";

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

const bool = z
  .enum(["1", "0", "true", "false", "yes", "no", "on", "off", ""])
  .transform((value) => ["1", "true", "yes", "on"].includes(value));

const port = z.coerce.number().int().min(0).max(65535);

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** The Manager's variables: name → schema (with default) and the description shown in the README table. */
export const MANAGER_ENV = {
  KUBENOVA_HTTP_HOST: {
    schema: z.string().min(1).default("127.0.0.1"),
    doc: "Address the API and dashboard listen on (use 0.0.0.0 to expose)",
  },
  KUBENOVA_HTTP_PORT: { schema: port.default(8080), doc: "HTTP port (0 picks a free port)" },
  KUBENOVA_DATA_DIR: {
    schema: z.string().min(1).default("./data"),
    doc: "Where the SQLite database, generated secrets and keys live",
  },
  KUBENOVA_DATABASE_URL: {
    schema: z
      .string()
      .regex(
        /^(postgres(ql)?:\/\/|sqlite:|file:)/,
        "must start with postgres://, postgresql://, sqlite: or file:",
      )
      .optional(),
    doc: "`postgres://…` selects Postgres; default: SQLite file `kubenova.db` in the data dir",
  },
  KUBENOVA_JWT_SECRET: {
    schema: z
      .string()
      .refine((s) => new TextEncoder().encode(s).length >= 32, "must be at least 32 bytes")
      .optional(),
    doc: "HS256 signing secret (≥ 32 bytes). Unset: a development secret is generated into the data dir",
  },
  KUBENOVA_JWT_JWKS: {
    schema: z.string().min(1).optional(),
    doc: "RS256/ES256 verification keys: a JWKS URL (https://…) or file path. Replaces HS256 when set",
  },
  KUBENOVA_JWT_ALGORITHMS: {
    schema: z
      .string()
      .default("RS256,ES256")
      .transform((s) => s.split(",").map((a) => a.trim()))
      .pipe(z.array(z.enum(["RS256", "ES256"])).min(1)),
    doc: "Accepted asymmetric algorithms with a JWKS (comma-separated)",
  },
  KUBENOVA_JWT_SIGNING_KEY: {
    schema: z.string().min(1).optional(),
    doc: "File with a private JWK (with `kid`) that `kubenova token` signs with in JWKS mode",
  },
  KUBENOVA_JWT_ISSUER: { schema: z.string().min(1).default("kubenova"), doc: "Required `iss` of API tokens" },
  KUBENOVA_JWT_AUDIENCE: {
    schema: z.string().min(1).default("kubenova-api"),
    doc: "Required `aud` of API tokens",
  },
  KUBENOVA_JWT_LEEWAY_SECONDS: {
    schema: z.coerce.number().int().min(0).max(60).default(30),
    doc: "Clock skew tolerated on `exp`/`nbf` (at most 60)",
  },
  KUBENOVA_KEK: {
    schema: z.string().min(1).optional(),
    doc: "Key-encryption keys `id:base64key,…` (32-byte keys). Unset: generated into the data dir",
  },
  KUBENOVA_KEK_ACTIVE: {
    schema: z.string().min(1).optional(),
    doc: "Id of the KEK new secrets are wrapped with",
  },
  KUBENOVA_BODY_LIMIT_BYTES: {
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    doc: "Largest accepted request body (larger → 413)",
  },
  KUBENOVA_INSECURE_DEV_AUTH: {
    schema: bool.default(false),
    doc: "Development only: accept the `X-KN-Roles` header instead of a token (logged loudly)",
  },
  KUBENOVA_LOG_LEVEL: { schema: z.enum(LOG_LEVELS).default("info"), doc: "debug, info, warn or error" },
  KUBENOVA_PUBLIC_URL: {
    schema: z.url().optional(),
    doc: "URL operators and users reach the Manager's API at (default: http://<host>:<port>)",
  },
  KUBENOVA_MQTT_HOST: {
    schema: z.string().min(1).optional(),
    doc: "Address the embedded MQTT broker listens on (default: the HTTP host)",
  },
  KUBENOVA_MQTT_PORT: { schema: port.default(8883), doc: "MQTT over mutual TLS port of the embedded broker" },
  KUBENOVA_MQTT_PUBLIC_URL: {
    schema: z
      .string()
      .regex(/^mqtts:\/\/[^/\s]+$/, "must look like mqtts://host:port")
      .optional(),
    doc: "Broker URL handed to operators at enrolment (default: mqtts://<mqtt host>:<mqtt port>)",
  },
  KUBENOVA_MQTT_SANS: {
    schema: z
      .string()
      .default("localhost,127.0.0.1")
      .transform((s) =>
        s
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x.length > 0),
      ),
    doc: "DNS names and IPs in the broker's server certificate (comma-separated)",
  },
  KUBENOVA_MQTT_EXTERNAL_URL: {
    schema: z
      .string()
      .regex(/^mqtts:\/\/[^/\s]+$/, "must look like mqtts://host:port")
      .optional(),
    doc: "Use an existing clustered broker at this URL instead of the embedded one",
  },
  KUBENOVA_MQTT_MAX_PAYLOAD_BYTES: {
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(256 * 1024),
    doc: "Largest MQTT payload the broker accepts",
  },
  KUBENOVA_MQTT_PUBLISH_RATE: {
    schema: z.coerce.number().int().min(1).max(100_000).default(500),
    doc: "Publishes per second one operator connection may sustain",
  },
  KUBENOVA_MQTT_MAX_HANDSHAKES: {
    schema: z.coerce.number().int().min(0).max(10_000).default(64),
    doc: "TLS handshakes the embedded broker runs at once; the excess waits or is refused before any crypto (0 = no limit)",
  },
  KUBENOVA_CA_CERT_FILE: {
    schema: z.string().min(1).optional(),
    doc: "CA certificate (PEM) instead of the generated CA",
  },
  KUBENOVA_CA_KEY_FILE: {
    schema: z.string().min(1).optional(),
    doc: "CA private key (PKCS#8 PEM) for KUBENOVA_CA_CERT_FILE",
  },
  KUBENOVA_BROKER_CERT_FILE: {
    schema: z.string().min(1).optional(),
    doc: "Broker server certificate (PEM) instead of one issued by the CA",
  },
  KUBENOVA_BROKER_KEY_FILE: {
    schema: z.string().min(1).optional(),
    doc: "Private key for KUBENOVA_BROKER_CERT_FILE",
  },
  KUBENOVA_BOOTSTRAP_TOKEN_TTL_SECONDS: {
    schema: z.coerce
      .number()
      .int()
      .min(60)
      .max(30 * 86400)
      .default(3600),
    doc: "Lifetime of a cluster's one-time bootstrap token",
  },
  KUBENOVA_CLIENT_CERT_LIFETIME_SECONDS: {
    schema: z.coerce
      .number()
      .int()
      .min(300)
      .max(397 * 86400)
      .default(30 * 86400),
    doc: "Lifetime of operators' client certificates (renewed at 70–90%)",
  },
  KUBENOVA_BROKER_REVOCATION_FILE: {
    schema: z.string().min(1).optional(),
    doc: "With a standalone `kubenova broker`: the file the Manager records revoked cluster ids in (the broker watches it)",
  },
  KUBENOVA_OTLP_ENDPOINT: {
    schema: z.url().optional(),
    doc: "OpenTelemetry OTLP/HTTP endpoint (e.g. http://collector:4318); unset: tracing off",
  },
  KUBENOVA_OPERATOR_IMAGE: {
    schema: z.string().min(1).default("kubenova/kubenova:latest"),
    doc: "Container image the install manifests run the operator from",
  },
} as const;

type EnvSpec = Record<string, { schema: z.ZodType; doc: string }>;
type Parsed<S extends EnvSpec> = { [K in keyof S]: z.output<S[K]["schema"]> };

/** Parses `env` against a spec; the first bad variable throws a ConfigError naming it. */
export function parseEnv<S extends EnvSpec>(spec: S, env: Record<string, string | undefined>): Parsed<S> {
  const out: Record<string, unknown> = {};
  for (const [name, { schema }] of Object.entries(spec)) {
    const raw = env[name];
    const result = schema.safeParse(raw === "" ? undefined : raw);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new ConfigError(name, `${issue?.message ?? "invalid value"} (got ${JSON.stringify(raw)})`);
    }
    out[name] = result.data;
  }
  return out as Parsed<S>;
}

export type ManagerEnv = Parsed<typeof MANAGER_ENV>;

export interface ManagerConfig {
  http: { host: string; port: number; bodyLimitBytes: number };
  dataDir: string;
  databaseUrl: string | null;
  jwt: {
    secret: string | null;
    jwks: string | null;
    algorithms: Array<"RS256" | "ES256">;
    signingKeyFile: string | null;
    issuer: string;
    audience: string;
    leewaySeconds: number;
  };
  kek: { keys: string | null; activeKeyId: string | null };
  insecureDevAuth: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  publicUrl: string;
  mqtt: {
    host: string;
    port: number;
    publicUrl: string;
    serverNames: string[];
    externalUrl: string | null;
    maxPayloadBytes: number;
    publishRatePerSecond: number;
    maxHandshakesInFlight: number;
  };
  pki: {
    caCertFile: string | null;
    caKeyFile: string | null;
    brokerCertFile: string | null;
    brokerKeyFile: string | null;
    bootstrapTokenTtlSeconds: number;
    clientCertLifetimeSeconds: number;
  };
  operatorImage: string;
  brokerRevocationFile: string | null;
  otlpEndpoint: string | null;
}

function pairedFiles(a: [string, string | undefined], b: [string, string | undefined]): void {
  if ((a[1] === undefined) !== (b[1] === undefined)) {
    const [set, unset] = a[1] === undefined ? [b[0], a[0]] : [a[0], b[0]];
    throw new ConfigError(unset, `must be set together with ${set}`);
  }
}

const hostForUrl = (host: string) =>
  host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;

export function parseManagerConfig(env: Record<string, string | undefined>): ManagerConfig {
  const e = parseEnv(MANAGER_ENV, env);
  pairedFiles(
    ["KUBENOVA_CA_CERT_FILE", e.KUBENOVA_CA_CERT_FILE],
    ["KUBENOVA_CA_KEY_FILE", e.KUBENOVA_CA_KEY_FILE],
  );
  pairedFiles(
    ["KUBENOVA_BROKER_CERT_FILE", e.KUBENOVA_BROKER_CERT_FILE],
    ["KUBENOVA_BROKER_KEY_FILE", e.KUBENOVA_BROKER_KEY_FILE],
  );
  const mqttHost = e.KUBENOVA_MQTT_HOST ?? e.KUBENOVA_HTTP_HOST;
  return {
    http: {
      host: e.KUBENOVA_HTTP_HOST,
      port: e.KUBENOVA_HTTP_PORT,
      bodyLimitBytes: e.KUBENOVA_BODY_LIMIT_BYTES,
    },
    dataDir: e.KUBENOVA_DATA_DIR,
    databaseUrl: e.KUBENOVA_DATABASE_URL ?? null,
    jwt: {
      secret: e.KUBENOVA_JWT_SECRET ?? null,
      jwks: e.KUBENOVA_JWT_JWKS ?? null,
      algorithms: e.KUBENOVA_JWT_ALGORITHMS,
      signingKeyFile: e.KUBENOVA_JWT_SIGNING_KEY ?? null,
      issuer: e.KUBENOVA_JWT_ISSUER,
      audience: e.KUBENOVA_JWT_AUDIENCE,
      leewaySeconds: e.KUBENOVA_JWT_LEEWAY_SECONDS,
    },
    kek: { keys: e.KUBENOVA_KEK ?? null, activeKeyId: e.KUBENOVA_KEK_ACTIVE ?? null },
    insecureDevAuth: e.KUBENOVA_INSECURE_DEV_AUTH,
    logLevel: e.KUBENOVA_LOG_LEVEL,
    publicUrl: (
      e.KUBENOVA_PUBLIC_URL ?? `http://${hostForUrl(e.KUBENOVA_HTTP_HOST)}:${e.KUBENOVA_HTTP_PORT}`
    ).replace(/\/+$/, ""),
    mqtt: {
      host: mqttHost,
      port: e.KUBENOVA_MQTT_PORT,
      publicUrl: e.KUBENOVA_MQTT_PUBLIC_URL ?? `mqtts://${hostForUrl(mqttHost)}:${e.KUBENOVA_MQTT_PORT}`,
      serverNames: e.KUBENOVA_MQTT_SANS,
      externalUrl: e.KUBENOVA_MQTT_EXTERNAL_URL ?? null,
      maxPayloadBytes: e.KUBENOVA_MQTT_MAX_PAYLOAD_BYTES,
      publishRatePerSecond: e.KUBENOVA_MQTT_PUBLISH_RATE,
      maxHandshakesInFlight: e.KUBENOVA_MQTT_MAX_HANDSHAKES,
    },
    pki: {
      caCertFile: e.KUBENOVA_CA_CERT_FILE ?? null,
      caKeyFile: e.KUBENOVA_CA_KEY_FILE ?? null,
      brokerCertFile: e.KUBENOVA_BROKER_CERT_FILE ?? null,
      brokerKeyFile: e.KUBENOVA_BROKER_KEY_FILE ?? null,
      bootstrapTokenTtlSeconds: e.KUBENOVA_BOOTSTRAP_TOKEN_TTL_SECONDS,
      clientCertLifetimeSeconds: e.KUBENOVA_CLIENT_CERT_LIFETIME_SECONDS,
    },
    operatorImage: e.KUBENOVA_OPERATOR_IMAGE,
    brokerRevocationFile: e.KUBENOVA_BROKER_REVOCATION_FILE ?? null,
    otlpEndpoint: e.KUBENOVA_OTLP_ENDPOINT ?? null,
  };
}

/** The operator's variables, as the install manifests set them (manager/install/manifests.ts). */
export const OPERATOR_ENV = {
  NOVA_MANAGER_URL: { schema: z.url(), doc: "The Manager's API URL (enrolment and renewal)" },
  NOVA_CLUSTER_ID: {
    schema: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must be a cluster id"),
    doc: "This cluster's id (the certificate CN)",
  },
  NOVA_CLUSTER_NAME: { schema: z.string().optional(), doc: "This cluster's name, for logs" },
  NOVA_BOOTSTRAP_TOKEN: {
    schema: z.string().min(1).optional(),
    doc: "One-time bootstrap token for the first enrolment",
  },
  NOVA_BOOTSTRAP_TOKEN_FILE: {
    schema: z.string().min(1).optional(),
    doc: "File holding the bootstrap token instead",
  },
  NOVA_DATA_DIR: {
    schema: z.string().min(1).default("./data/operator"),
    doc: "Where the operator keeps its private key, certificate and outbox",
  },
  KUBECONFIG: { schema: z.string().min(1).optional(), doc: "Kubeconfig when running outside the cluster" },
  NOVA_HEARTBEAT_INTERVAL_MS: {
    schema: z.coerce.number().int().min(100).max(600_000).default(10_000),
    doc: "Heartbeat interval",
  },
  NOVA_OUTBOX_MAX_ROWS: {
    schema: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
    doc: "Outbox bound (events are shed beyond it; usage never)",
  },
  NOVA_RESEND_AFTER_MS: {
    schema: z.coerce.number().int().min(100).max(600_000).default(10_000),
    doc: "Resend an unacknowledged report after this long",
  },
  TARGET_STORAGE_CLASS: { schema: z.string().optional(), doc: "Storage class for tenant volumes" },
  TARGET_LB_ANNOTATIONS: {
    schema: z.string().optional(),
    doc: "Annotations for tenant LoadBalancer Services",
  },
  NOVA_CAPS_PROX_URL: { schema: z.string().optional(), doc: "capsule-proxy URL tenants reach" },
  KUBENOVA_OTLP_ENDPOINT: {
    schema: z.url().optional(),
    doc: "OpenTelemetry OTLP/HTTP endpoint; unset: tracing off",
  },
  NOVA_HEALTH_PORT: {
    schema: port.default(8081),
    doc: "Port of the operator's /healthz and /readyz (0 picks a free port)",
  },
  POD_NAMESPACE: {
    schema: z.string().min(1).default("kubenova-system"),
    doc: "The operator's own namespace",
  },
  NOVA_HEALTH_HOST: { schema: z.string().min(1).default("0.0.0.0"), doc: "Address of the health endpoints" },
  KUBENOVA_LOG_LEVEL: { schema: z.enum(LOG_LEVELS).default("info"), doc: "debug, info, warn or error" },
} as const;

export type OperatorEnv = Parsed<typeof OPERATOR_ENV>;

export function parseOperatorConfig(env: Record<string, string | undefined>): OperatorEnv {
  return parseEnv(OPERATOR_ENV, env);
}
