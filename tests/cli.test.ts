/** The `kubenova` command as a user runs it: real processes, a temp data dir, real HTTP on loopback. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ENTRY = join(import.meta.dir, "..", "kubenova.ts");
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kubenova-cli-"));
  dirs.push(dir);
  return dir;
}

async function run(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", "run", ENTRY, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

describe("kubenova CLI", () => {
  test("version and help", async () => {
    const version = await run(["version"]);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^kubenova \d+\.\d+\.\d+/);
    const help = await run(["help"]);
    expect(help.stdout).toContain("KUBENOVA_DATABASE_URL");
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command");
  });

  test.each([
    ["KUBENOVA_HTTP_PORT", "eighty"],
    ["KUBENOVA_HTTP_PORT", "70000"],
    ["KUBENOVA_JWT_SECRET", "short"],
    ["KUBENOVA_DATABASE_URL", "mysql://x"],
    ["KUBENOVA_LOG_LEVEL", "loud"],
    ["KUBENOVA_INSECURE_DEV_AUTH", "maybe"],
  ])("a bad %s=%s exits with a message naming it", async (name, value) => {
    const result = await run(["migrate"], { KUBENOVA_DATA_DIR: await dataDir(), [name]: value });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(name);
  });

  test("migrate applies the schema once", async () => {
    const dir = await dataDir();
    const first = await run(["migrate"], { KUBENOVA_DATA_DIR: dir });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^schema at version (\d+) of \1$/m);
    expect(first.stdout).toContain("applied database migration");
    const second = await run(["migrate"], { KUBENOVA_DATA_DIR: dir });
    expect(second.stdout).toMatch(/^schema at version (\d+) of \1$/m);
    expect(second.stdout).not.toContain("applied database migration");
    expect((await stat(join(dir, "kubenova.db"))).isFile()).toBe(true);
  });

  test("token refuses impossible scopes and bad TTLs", async () => {
    const dir = await dataDir();
    const noTenant = await run(["token", "--role", "tenantOwner"], { KUBENOVA_DATA_DIR: dir });
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain("tenant");
    const badRole = await run(["token", "--role", "root"], { KUBENOVA_DATA_DIR: dir });
    expect(badRole.code).toBe(2);
    const badTtl = await run(["token", "--role", "admin", "--ttl", "soon"], { KUBENOVA_DATA_DIR: dir });
    expect(badTtl.code).not.toBe(0);
    expect(badTtl.stderr).toContain("--ttl");
  });

  test("the manager starts on its defaults and accepts tokens from `kubenova token`", async () => {
    const dir = await dataDir();
    const manager = Bun.spawn(["bun", "run", ENTRY, "manager"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        KUBENOVA_DATA_DIR: dir,
        KUBENOVA_HTTP_PORT: "0",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    let drained: Promise<void> = Promise.resolve();
    let buffered = "";
    try {
      // Keep draining stdout for the whole test: a closed pipe would kill the Manager's next log write.
      const decoder = new TextDecoder();
      drained = (async () => {
        for await (const chunk of manager.stdout) buffered += decoder.decode(chunk);
      })();
      let url = "";
      for (let i = 0; i < 200 && !url; i++) {
        url = buffered.match(/"msg":"manager listening"[^\n]*"url":"([^"]+)"/)?.[1] ?? "";
        if (!url) await Bun.sleep(25);
      }
      expect(url).toStartWith("http://127.0.0.1:");
      expect(buffered).toContain("generated a development JWT secret");
      expect((await stat(join(dir, "jwt-secret"))).mode & 0o077).toBe(0);
      expect(buffered).toContain("embedded MQTT broker listening");
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
      expect((await fetch(`${url}/docs`)).status).toBe(200);

      const token = await run(["token", "--role", "tenantOwner", "--tenant", "acme", "--ttl", "15m"], {
        KUBENOVA_DATA_DIR: dir,
      });
      expect(token.code).toBe(0);
      const me = await fetch(`${url}/api/v1/me`, {
        headers: { authorization: `Bearer ${token.stdout.trim()}` },
      });
      expect(me.status).toBe(200);
      const body = (await me.json()) as { role: string; tenant: string; expiresAt: string };
      expect(body.role).toBe("tenantOwner");
      expect(body.tenant).toBe("acme");
      const ttlMs = Date.parse(body.expiresAt) - Date.now();
      expect(ttlMs).toBeGreaterThan(13 * 60_000);
      expect(ttlMs).toBeLessThanOrEqual(15 * 60_000);
      expect((await fetch(`${url}/api/v1/me`)).status).toBe(401);
    } finally {
      manager.kill("SIGTERM");
      expect(await manager.exited).toBe(0);
      await drained;
      expect(buffered).toContain('"msg":"manager stopped"');
    }
  });
});
