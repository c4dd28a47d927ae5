/**
 * In-process Manager for HTTP tests: a real app over a real (in-memory SQLite) store, real HS256 tokens and a
 * real envelope keyring. `createTestManager()` per test or describe; nothing is shared between files.
 */
import type { Role } from "../../shared/api/models.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier } from "../../manager/auth/verifier.ts";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { createApp } from "../../manager/http/app.ts";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import type { EnrolmentDeps, EnrolmentSettings } from "../../manager/services/enrolment.ts";
import type { AppServices } from "../../manager/http/context.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Store } from "../../manager/store/store.ts";

export const TEST_SECRET = "kubenova-test-secret-that-is-long-enough-0123456789";
export const ISSUER = "kubenova";
export const AUDIENCE = "kubenova-api";

/** Enrolment settings of the in-process Manager (what ManagerConfig would give). */
export const TEST_ENROLMENT_SETTINGS: EnrolmentSettings = {
  managerUrl: "https://manager.test",
  brokerUrl: "mqtts://broker.test:8883",
  bootstrapTokenTtlSeconds: 3600,
  clientCertLifetimeSeconds: 30 * 86400,
  operatorImage: "kubenova/kubenova:test",
};

export interface TestManager {
  app: ReturnType<typeof createApp>;
  services: AppServices;
  store: Store;
  logs: ReturnType<typeof createMemoryLogger>["records"];
  token(
    role: Role,
    scope?: { tenant?: string; project?: string; subject?: string; ttlSeconds?: number },
  ): Promise<string>;
  /** `fetch`-like call; `body` objects are sent as JSON. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function createTestManager(
  options: {
    bodyLimitBytes?: number;
    insecureDevAuth?: boolean;
    now?: () => Date;
    enrolment?: Partial<EnrolmentSettings>;
  } = {},
): Promise<TestManager> {
  const logger = createMemoryLogger("debug");
  const store = await openSqliteStore({ path: ":memory:", logger });
  await store.migrate();
  const keyring = createKeyring({
    keys: [{ id: "test", key: new Uint8Array(32).fill(7) }],
    activeKeyId: "test",
  });
  const clock = options.now ?? (() => new Date());
  const common = { issuer: ISSUER, audience: AUDIENCE };
  const signer = createTokenSigner({ ...common, algorithm: "HS256", secret: TEST_SECRET, now: clock });
  const verifier = createTokenVerifier({ ...common, algorithm: "HS256", secret: TEST_SECRET, now: clock });
  const enrolment: EnrolmentDeps = {
    // The CA follows the injected clock, so certificate validity and token expiry move together in tests.
    ca: await createCertificateAuthority({ now: clock }),
    settings: { ...TEST_ENROLMENT_SETTINGS, ...options.enrolment },
  };
  const services: AppServices = {
    store,
    secrets: createEnvelope(keyring),
    clock,
    logger,
    verifier,
    signer,
    enrolment,
    options: {
      bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
      insecureDevAuth: options.insecureDevAuth ?? false,
      version: "test",
    },
  };
  const app = createApp(services);
  return {
    app,
    services,
    store,
    logs: logger.records,
    async token(role, scope = {}) {
      const signed = await signer.sign({
        subject:
          scope.subject ??
          `${role}${scope.tenant ? `@${scope.tenant}` : ""}${scope.project ? `/${scope.project}` : ""}`,
        role,
        tenant: scope.tenant,
        project: scope.project,
        ttlSeconds: scope.ttlSeconds ?? 3600,
      });
      return signed.token;
    },
    async call(method, path, callOptions = {}) {
      const headers: Record<string, string> = { ...(callOptions.headers ?? {}) };
      if (callOptions.token) headers.authorization = `Bearer ${callOptions.token}`;
      let body: string | undefined;
      if (callOptions.rawBody !== undefined) body = callOptions.rawBody;
      else if (callOptions.body !== undefined) {
        body = JSON.stringify(callOptions.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await app.request(path, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON (e.g. the docs page); keep the text
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
    close: () => store.close(),
  };
}

/** A small world: two clusters, a plan, two tenants with one project and one app each. */
export async function seedWorld(m: TestManager): Promise<{ admin: string }> {
  const admin = await m.token("admin");
  const ok = async (method: string, path: string, body?: unknown) => {
    const res = await m.call(method, path, { token: admin, body });
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  await ok("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra", labels: { region: "eu" } });
  await ok("POST", "/api/v1/clusters", { name: "dc2", datacenter: "ams", labels: { region: "eu" } });
  await ok("POST", "/api/v1/plans", { name: "default", quotas: { cpu: "4", memory: "8Gi", pods: 50 } });
  await ok("POST", "/api/v1/policysets", {
    name: "baseline",
    traits: [{ type: "scaler", properties: { replicas: 1 } }],
  });
  for (const tenant of ["acme", "globex"]) {
    await ok("POST", "/api/v1/tenants", {
      name: tenant,
      owners: [`owner@${tenant}`],
      clusters: ["dc1", "dc2"],
    });
    await ok("POST", `/api/v1/tenants/${tenant}/projects`, { name: "web", cluster: "dc1" });
    await ok("POST", `/api/v1/tenants/${tenant}/projects/web/apps`, { name: "site", spec: SAMPLE_SPEC });
  }
  return { admin };
}

export const SAMPLE_SPEC = {
  components: [
    {
      name: "frontend",
      type: "webservice",
      properties: { image: "nginx:1.27", port: 80 },
      traits: [{ type: "scaler", properties: { replicas: 2 } }],
    },
  ],
};
