/**
 * @module shared/operator-config — the variables `kubenova operator` reads, as the install manifests set them
 * (manager/install/manifests.ts). Apart from shared/config.ts so the operator builds none of the Manager's.
 */
import { integer, logLevel, optionalText, type Parsed, parseEnv, port, textOr } from "./env.ts";
import { z } from "./zod.ts";

export const OPERATOR_ENV = {
  NOVA_MANAGER_URL: { schema: z.url(), doc: "The Manager's API URL (enrolment and renewal)" },
  NOVA_CLUSTER_ID: {
    schema: z
      .string()
      .check(
        z.regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "must be a cluster id"),
      ),
    doc: "This cluster's id (the certificate CN)",
  },
  NOVA_CLUSTER_NAME: { schema: z.optional(z.string()), doc: "This cluster's name, for logs" },
  NOVA_BOOTSTRAP_TOKEN: {
    schema: optionalText,
    doc: "One-time bootstrap token for the first enrolment",
  },
  NOVA_BOOTSTRAP_TOKEN_FILE: {
    schema: optionalText,
    doc: "File holding the bootstrap token instead",
  },
  NOVA_DATA_DIR: {
    schema: textOr("./data/operator"),
    doc: "Where the operator keeps its private key, certificate and outbox",
  },
  KUBECONFIG: { schema: optionalText, doc: "Kubeconfig when running outside the cluster" },
  NOVA_HEARTBEAT_INTERVAL_MS: {
    schema: z._default(integer(100, 600_000), 10_000),
    doc: "Heartbeat interval",
  },
  NOVA_OUTBOX_MAX_ROWS: {
    schema: z._default(integer(100, 10_000_000), 100_000),
    doc: "Outbox bound (events are shed beyond it; usage never)",
  },
  NOVA_RESEND_AFTER_MS: {
    schema: z._default(integer(100, 600_000), 10_000),
    doc: "Resend an unacknowledged report after this long",
  },
  TARGET_STORAGE_CLASS: { schema: z.optional(z.string()), doc: "Storage class for tenant volumes" },
  TARGET_LB_ANNOTATIONS: {
    schema: z.optional(z.string()),
    doc: "Annotations for tenant LoadBalancer Services",
  },
  NOVA_CAPS_PROX_URL: { schema: z.optional(z.string()), doc: "capsule-proxy URL tenants reach" },
  KUBENOVA_OTLP_ENDPOINT: {
    schema: z.optional(z.url()),
    doc: "OpenTelemetry OTLP/HTTP endpoint; unset: tracing off",
  },
  NOVA_HEALTH_PORT: {
    schema: z._default(port, 8081),
    doc: "Port of the operator's /healthz and /readyz (0 picks a free port)",
  },
  POD_NAMESPACE: {
    schema: textOr("kubenova-system"),
    doc: "The operator's own namespace",
  },
  NOVA_HEALTH_HOST: { schema: textOr("0.0.0.0"), doc: "Address of the health endpoints" },
  KUBENOVA_LOG_LEVEL: { schema: logLevel, doc: "debug, info, warn or error" },
} as const;

export type OperatorEnv = Parsed<typeof OPERATOR_ENV>;

export function parseOperatorConfig(env: Record<string, string | undefined>): OperatorEnv {
  return parseEnv(OPERATOR_ENV, env);
}
