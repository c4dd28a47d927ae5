/**
 * Issue 9, item 4: secrets at rest, through the real Manager (buildManager from configuration, file SQLite store,
 * KEKs from KUBENOVA_KEK). A dump of every column of every table holds no kubeconfig, PEM private key or JWT
 * secret; every ciphertext names its format version and KEK; a ciphertext moved to another row fails (AAD) on the
 * real install path; `kubenova rotate-keys` (as a process) re-wraps everything under the active KEK, after which
 * the old KEK can be dropped and everything still opens after a restart.
 */
import "reflect-metadata";
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnvelope } from "../../manager/crypto/envelope.ts";
import { loadOrCreateKeyring } from "../../manager/crypto/keyring-file.ts";
import { rotateKeys } from "../../manager/crypto/rotate.ts";
import { createApp } from "../../manager/http/app.ts";
import { buildManager, type ManagerRuntime } from "../../manager/main.ts";
import { CA_SETTING_KEY } from "../../manager/pki/ca-store.ts";
import { kubeconfigAad } from "../../manager/services/clusters.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import { parseManagerConfig } from "../../shared/config.ts";
import { createMemoryLogger } from "../../shared/logger.ts";

const ENTRY = join(import.meta.dir, "../../kubenova.ts");
const key = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
const OLD = key();
const NEW = key();
const JWT_SECRET = `jwt-${crypto.randomUUID()}-${crypto.randomUUID()}`;
const KUBECONFIG_MARKER = `client-key-data-${crypto.randomUUID()}`;

function kubeconfig(cluster: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    `clusters: [{name: ${cluster}, cluster: {server: "https://127.0.0.1:1"}}]`,
    `users: [{name: admin, user: {token: ${KUBECONFIG_MARKER}-${cluster}}}]`,
    `contexts: [{name: ${cluster}, context: {cluster: ${cluster}, user: admin}}]`,
    `current-context: ${cluster}`,
    "# -----BEGIN EC PRIVATE KEY----- embedded on purpose",
  ].join("\n");
}

/** Every value of every column of every table, as text. */
function dump(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    const values: string[] = [];
    const tables = db
      .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all();
    for (const { name } of tables) {
      for (const row of db.query<Record<string, unknown>, []>(`SELECT * FROM "${name}"`).all()) {
        for (const value of Object.values(row)) {
          if (value === null) continue;
          values.push(value instanceof Uint8Array ? Buffer.from(value).toString("latin1") : String(value));
        }
      }
    }
    return values;
  } finally {
    db.close();
  }
}

describe("secrets at rest", () => {
  let dir: string;
  const env = (kek: string, active?: string): Record<string, string> => ({
    KUBENOVA_DATA_DIR: dir,
    KUBENOVA_KEK: kek,
    ...(active ? { KUBENOVA_KEK_ACTIVE: active } : {}),
    KUBENOVA_JWT_SECRET: JWT_SECRET,
    KUBENOVA_HTTP_PORT: "0",
    KUBENOVA_MQTT_HOST: "127.0.0.1",
    KUBENOVA_MQTT_PORT: "0",
    KUBENOVA_LOG_LEVEL: "error",
  });
  const start = (vars: Record<string, string>): Promise<ManagerRuntime> =>
    buildManager(parseManagerConfig(vars), createMemoryLogger("error"));
  const dbPath = () => join(dir, "kubenova.db");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kn-secrets-"));
    const runtime = await start(env(`old:${OLD}`));
    try {
      const app = createApp(runtime.services);
      const { token } = await runtime.services.signer.sign({
        subject: "admin",
        role: "admin",
        ttlSeconds: 600,
      });
      for (const name of ["dc1", "dc2"]) {
        const response = await app.request("/api/v1/clusters", {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ name, datacenter: "fra", kubeconfig: kubeconfig(name) }),
        });
        expect(response.status).toBe(201);
        expect(await response.text()).not.toContain(KUBECONFIG_MARKER);
      }
      // Let the background installs (to an unreachable server) finish before the store closes.
      await Bun.sleep(200);
    } finally {
      await runtime.close();
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test("a dump of the database holds no kubeconfig, private key or JWT secret; every ciphertext names version and KEK", () => {
    const values = dump(dbPath());
    expect(values.length).toBeGreaterThan(10);
    for (const value of values) {
      expect(value).not.toContain(KUBECONFIG_MARKER);
      expect(value).not.toContain("PRIVATE KEY");
      expect(value).not.toContain(JWT_SECRET);
    }
    const db = new Database(dbPath(), { readonly: true });
    try {
      const clusters = db
        .query<{ id: string; ciphertext: string }, []>(
          "SELECT id, kubeconfig_ciphertext AS ciphertext FROM clusters",
        )
        .all();
      expect(clusters).toHaveLength(2);
      for (const row of clusters)
        expect(row.ciphertext).toMatch(/^kn1\.old\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const ca = db
        .query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?")
        .get(CA_SETTING_KEY);
      expect(JSON.parse(ca!.value).privateKeyCiphertext).toMatch(/^kn1\.old\./);
    } finally {
      db.close();
    }
  });

  test("a ciphertext moved to another row does not open on the real install path (AAD)", async () => {
    const runtime = await start(env(`old:${OLD}`));
    try {
      const app = createApp(runtime.services);
      const { token } = await runtime.services.signer.sign({
        subject: "admin",
        role: "admin",
        ttlSeconds: 600,
      });
      const install = async (name: string) => {
        const response = await app.request(`/api/v1/clusters/${name}/install`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}` },
        });
        return { status: response.status, text: await response.text() };
      };
      const dc1 = (await runtime.store.clusters.get("dc1"))!;
      const dc2 = (await runtime.store.clusters.get("dc2"))!;
      // The genuine row opens (the install then fails on the unreachable server: 503).
      expect((await install("dc1")).status).toBe(503);
      const current2 = (await runtime.store.clusters.get("dc2"))!;
      await runtime.store.clusters.update({ ...current2, kubeconfigCiphertext: dc1.kubeconfigCiphertext });
      const moved = await install("dc2");
      expect(moved.status).toBe(500);
      expect(JSON.parse(moved.text).error.code).toBe("KN-500");
      expect(moved.text).not.toContain(KUBECONFIG_MARKER);
      expect(moved.text).not.toContain("authentication"); // the reason is logged, not returned
      const restored = (await runtime.store.clusters.get("dc2"))!;
      await runtime.store.clusters.update({ ...restored, kubeconfigCiphertext: dc2.kubeconfigCiphertext });
      expect((await install("dc2")).status).toBe(503);
    } finally {
      await runtime.close();
    }
  });

  test("kubenova rotate-keys re-wraps every ciphertext; the old KEK can then be dropped", async () => {
    const proc = Bun.spawn(["bun", "run", ENTRY, "rotate-keys"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        ...env(`new:${NEW},old:${OLD}`, "new"),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ code, stderr: stderr.slice(0, 500) }).toEqual({ code: 0, stderr: expect.any(String) });
    const report = JSON.parse(stdout.trim().split("\n").at(-1)!);
    expect(report).toEqual({ activeKeyId: "new", rewrapped: { old: 3 }, unchanged: 0 });

    const values = dump(dbPath());
    expect(values.filter((v) => v.includes("kn1.old."))).toEqual([]);
    expect(values.filter((v) => v.includes("kn1.new.")).length).toBe(3);

    // Restart with only the new KEK: the CA (opened at start-up) and both kubeconfigs decrypt.
    const runtime = await start(env(`new:${NEW}`));
    try {
      for (const name of ["dc1", "dc2"]) {
        const row = (await runtime.store.clusters.get(name))!;
        expect(await runtime.envelope.decryptString(row.kubeconfigCiphertext!, kubeconfigAad(row.id))).toBe(
          kubeconfig(name),
        );
      }
      // Rotating again is a no-op.
      const again = await rotateKeys({
        store: runtime.store,
        envelope: runtime.envelope,
        activeKeyId: "new",
      });
      expect(again).toEqual({ activeKeyId: "new", rewrapped: {}, unchanged: 3 });
    } finally {
      await runtime.close();
    }
    // And the old KEK alone no longer opens anything: the Manager refuses to start (its CA key is under "new").
    await expect(start(env(`old:${OLD}`))).rejects.toThrow();
  });

  test("rotation stops at a corrupted row instead of carrying it forward", async () => {
    const logger = createMemoryLogger("error");
    const store = await openSqliteStore({ path: ":memory:", logger });
    await store.migrate();
    const { keyring } = await loadOrCreateKeyring({
      dataDir: dir,
      configuredKeys: `new:${NEW},old:${OLD}`,
      activeKeyId: "old",
      logger,
    });
    const envelope = createEnvelope(keyring);
    const { clusterRow } = await import("../support/rows.ts");
    const row = clusterRow("dc9");
    const sealed = await envelope.encrypt("secret", kubeconfigAad("someone-else"));
    await store.clusters.insert({ ...row, kubeconfigCiphertext: sealed });
    const rotating = createEnvelope(
      (
        await loadOrCreateKeyring({
          dataDir: dir,
          configuredKeys: `new:${NEW},old:${OLD}`,
          activeKeyId: "new",
          logger,
        })
      ).keyring,
    );
    await expect(rotateKeys({ store, envelope: rotating, activeKeyId: "new" })).rejects.toThrow(
      /clusters\/dc9/,
    );
    expect((await store.clusters.get("dc9"))!.kubeconfigCiphertext).toBe(sealed);
    await store.close();
  });
});
