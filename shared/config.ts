/**
 * @module shared/config — the Manager's environment variables (and, re-exported, the operator's), parsed once with
 * zod at startup. A bad value fails with a message naming the variable; nothing else in the code reads `process.env`.
 */
import {
  bool,
  ConfigError,
  integer,
  type LOG_LEVELS,
  logLevel,
  optionalText,
  parseEnv,
  type Parsed,
  port,
  textOr,
} from "./env.ts";
import { z } from "./zod.ts";

export { ConfigError, parseEnv } from "./env.ts";
export { OPERATOR_ENV, type OperatorEnv, parseOperatorConfig } from "./operator-config.ts";

/** A comma-separated list, items trimmed, empty items dropped. */
const list = (fallback: string) =>
  z.pipe(
    z._default(z.string(), fallback),
    z.transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    ),
  );
const mqttsUrl = z.optional(
  z.string().check(z.regex(/^mqtts:\/\/[^/\s]+$/, "must look like mqtts://host:port")),
);

/** The Manager's variables: name → schema (with default) and the description shown in the README table. */
export const MANAGER_ENV = {
  KUBENOVA_HTTP_HOST: {
    schema: textOr("127.0.0.1"),
    doc: "Address the API and dashboard listen on (use 0.0.0.0 to expose)",
  },
  KUBENOVA_HTTP_PORT: { schema: z._default(port, 8080), doc: "HTTP port (0 picks a free port)" },
  KUBENOVA_DATA_DIR: {
    schema: textOr("./data"),
    doc: "Where the SQLite database, generated secrets and keys live",
  },
  KUBENOVA_DATABASE_URL: {
    schema: z.optional(
      z
        .string()
        .check(
          z.regex(
            /^(postgres(ql)?:\/\/|sqlite:|file:)/,
            "must start with postgres://, postgresql://, sqlite: or file:",
          ),
        ),
    ),
    doc: "`postgres://…` selects Postgres; default: SQLite file `kubenova.db` in the data dir",
  },
  KUBENOVA_JWT_SECRET: {
    schema: z.optional(
      z
        .string()
        .check(z.refine((s) => new TextEncoder().encode(s).length >= 32, "must be at least 32 bytes")),
    ),
    doc: "HS256 signing secret (≥ 32 bytes). Unset: a development secret is generated into the data dir",
  },
  KUBENOVA_JWT_JWKS: {
    schema: optionalText,
    doc: "RS256/ES256 verification keys: a JWKS URL (https://…) or file path. Replaces HS256 when set",
  },
  KUBENOVA_JWT_ALGORITHMS: {
    schema: z.pipe(
      z.pipe(
        z._default(z.string(), "RS256,ES256"),
        z.transform((s) => s.split(",").map((a) => a.trim())),
      ),
      z.array(z.enum(["RS256", "ES256"])).check(z.minLength(1)),
    ),
    doc: "Accepted asymmetric algorithms with a JWKS (comma-separated)",
  },
  KUBENOVA_JWT_SIGNING_KEY: {
    schema: optionalText,
    doc: "File with a private JWK (with `kid`) that `kubenova token` signs with in JWKS mode",
  },
  KUBENOVA_JWT_ISSUER: { schema: textOr("kubenova"), doc: "Required `iss` of API tokens" },
  KUBENOVA_JWT_AUDIENCE: {
    schema: textOr("kubenova-api"),
    doc: "Required `aud` of API tokens",
  },
  KUBENOVA_JWT_LEEWAY_SECONDS: {
    schema: z._default(integer(0, 60), 30),
    doc: "Clock skew tolerated on `exp`/`nbf` (at most 60)",
  },
  KUBENOVA_KEK: {
    schema: optionalText,
    doc: "Key-encryption keys `id:base64key,…` (32-byte keys). Unset: generated into the data dir",
  },
  KUBENOVA_KEK_ACTIVE: {
    schema: optionalText,
    doc: "Id of the KEK new secrets are wrapped with",
  },
  KUBENOVA_BODY_LIMIT_BYTES: {
    schema: z._default(integer(1024, 64 * 1024 * 1024), 1024 * 1024),
    doc: "Largest accepted request body (larger → 413)",
  },
  KUBENOVA_INSECURE_DEV_AUTH: {
    schema: z._default(bool, false),
    doc: "Development only: accept the `X-KN-Roles` header instead of a token (logged loudly)",
  },
  KUBENOVA_LOG_LEVEL: { schema: logLevel, doc: "debug, info, warn or error" },
  KUBENOVA_PUBLIC_URL: {
    schema: z.optional(z.url()),
    doc: "URL operators and users reach the Manager's API at (default: http://<host>:<port>)",
  },
  KUBENOVA_MQTT_HOST: {
    schema: optionalText,
    doc: "Address the embedded MQTT broker listens on (default: the HTTP host)",
  },
  KUBENOVA_MQTT_PORT: {
    schema: z._default(port, 8883),
    doc: "MQTT over mutual TLS port of the embedded broker",
  },
  KUBENOVA_MQTT_PUBLIC_URL: {
    schema: mqttsUrl,
    doc: "Broker URL handed to operators at enrolment (default: mqtts://<mqtt host>:<mqtt port>)",
  },
  KUBENOVA_MQTT_SANS: {
    schema: list("localhost,127.0.0.1"),
    doc: "DNS names and IPs in the broker's server certificate (comma-separated)",
  },
  KUBENOVA_MQTT_EXTERNAL_URL: {
    schema: mqttsUrl,
    doc: "Use an existing clustered broker at this URL instead of the embedded one",
  },
  KUBENOVA_MQTT_MAX_PAYLOAD_BYTES: {
    schema: z._default(integer(1024, 16 * 1024 * 1024), 256 * 1024),
    doc: "Largest MQTT payload the broker accepts",
  },
  KUBENOVA_MQTT_PUBLISH_RATE: {
    schema: z._default(integer(1, 100_000), 500),
    doc: "Publishes per second one operator connection may sustain",
  },
  KUBENOVA_MQTT_MAX_HANDSHAKES: {
    schema: z._default(integer(0, 10_000), 64),
    doc: "TLS handshakes the embedded broker runs at once; the excess waits or is refused before any crypto (0 = no limit)",
  },
  KUBENOVA_CA_CERT_FILE: {
    schema: optionalText,
    doc: "CA certificate (PEM) instead of the generated CA",
  },
  KUBENOVA_CA_KEY_FILE: {
    schema: optionalText,
    doc: "CA private key (PKCS#8 PEM) for KUBENOVA_CA_CERT_FILE",
  },
  KUBENOVA_BROKER_CERT_FILE: {
    schema: optionalText,
    doc: "Broker server certificate (PEM) instead of one issued by the CA",
  },
  KUBENOVA_BROKER_KEY_FILE: {
    schema: optionalText,
    doc: "Private key for KUBENOVA_BROKER_CERT_FILE",
  },
  KUBENOVA_BOOTSTRAP_TOKEN_TTL_SECONDS: {
    schema: z._default(integer(60, 30 * 86400), 3600),
    doc: "Lifetime of a cluster's one-time bootstrap token",
  },
  KUBENOVA_CLIENT_CERT_LIFETIME_SECONDS: {
    schema: z._default(integer(300, 397 * 86400), 30 * 86400),
    doc: "Lifetime of operators' client certificates (renewed at 70–90%)",
  },
  KUBENOVA_BROKER_REVOCATION_FILE: {
    schema: optionalText,
    doc: "With a standalone `kubenova broker`: the file the Manager records revoked cluster ids in (the broker watches it)",
  },
  KUBENOVA_OTLP_ENDPOINT: {
    schema: z.optional(z.url()),
    doc: "OpenTelemetry OTLP/HTTP endpoint (e.g. http://collector:4318); unset: tracing off",
  },
  KUBENOVA_OPERATOR_IMAGE: {
    schema: textOr("kubenova/kubenova:latest"),
    doc: "Container image the install manifests run the operator from",
  },
} as const;

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
