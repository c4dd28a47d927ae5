/**
 * The Manager as `kubenova manager` builds it (startManager): register a cluster over HTTP, enrol with a CSR,
 * connect an operator link over mutual TLS to the embedded broker, see the cluster `connected` with its versions,
 * then revoke it: the session is dropped at once and refused from then on.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startManager } from "../../manager/main.ts";
import { createOperatorLink } from "../../operator/link/link.ts";
import { openOutbox } from "../../operator/link/outbox.ts";
import { parseManagerConfig } from "../../shared/config.ts";
import { enroll } from "../../shared/enrolment-client.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { exportPrivateKeyPem, generateKeyPair } from "../../shared/pki.ts";
import { waitFor } from "../sync/fixtures.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test("register → enrol → connected over mTLS → revoke kicks and refuses", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kn-runtime-"));
  dirs.push(dir);
  const config = parseManagerConfig({
    KUBENOVA_DATA_DIR: dir,
    KUBENOVA_HTTP_PORT: "0",
    KUBENOVA_MQTT_PORT: "0",
  });
  const logger = createMemoryLogger("info");
  const manager = await startManager(config, logger);
  const { loadTokenKeys } = await import("../../manager/main.ts");
  const { signer } = await loadTokenKeys(config, logger);
  const admin = (await signer!.sign({ subject: "root", role: "admin", ttlSeconds: 600 })).token;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${manager.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const workDir = await mkdtemp(join(tmpdir(), "kn-operator-"));
  dirs.push(workDir);
  let link: ReturnType<typeof createOperatorLink> | null = null;
  try {
    const registered = await api("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" });
    expect(registered.status).toBe(201);
    const clusterId: string = registered.body.cluster.id;
    expect(registered.body.cluster.status).toBe("pending_bootstrap");

    const keys = await generateKeyPair();
    const identity = await enroll({
      managerUrl: manager.url,
      clusterId,
      bootstrapToken: registered.body.bootstrap.token,
      keys,
    });
    expect(identity.brokerUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    expect(identity.brokerUrl).not.toEndWith(":0");
    const keyPem = await exportPrivateKeyPem(keys.privateKey);

    let revision = 0;
    const outbox = openOutbox({ path: join(workDir, "outbox.db"), maxRows: 1000 });
    link = createOperatorLink({
      clusterId,
      brokerUrl: identity.brokerUrl,
      tls: () => ({ caPem: identity.caBundle, certPem: identity.certificate, keyPem }),
      outbox,
      applier: { apply: async () => undefined, applySnapshot: async () => undefined },
      revisions: {
        get: async () => revision,
        set: async (r) => {
          revision = r;
        },
      },
      commands: async () => ({ ok: true }),
      hello: async () => ({ operatorVersion: "9.9.9", kubernetesVersion: "v1.31.2", capabilities: {} }),
      logger,
      heartbeatIntervalMs: 500,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    link.start();
    await waitFor(
      "connected",
      async () => (await api("GET", "/api/v1/clusters/dc1")).body.status === "connected",
    );
    const cluster = (await api("GET", "/api/v1/clusters/dc1")).body;
    expect(cluster.versions).toMatchObject({ operator: "9.9.9", kubernetes: "v1.31.2" });

    // A tenant placed on dc1 reaches the operator as desired state.
    await api("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc1"] });
    await waitFor("the tenant's revision", () => revision >= 1);

    const revoked = await api("POST", "/api/v1/clusters/dc1/revoke");
    expect(revoked.status).toBe(200);
    await waitFor("the session to drop", () => !link!.stats().connected, 5000);
    // It keeps trying with backoff, and is refused every time.
    await Bun.sleep(500);
    expect(link.stats().connected).toBe(false);
    expect(link.stats().connects).toBe(1);
    await link.stop();
    outbox.close();
  } finally {
    await link?.stop();
    await manager.stop();
  }
}, 30_000);
