import { describe, expect, test } from "bun:test";
import { chmod, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateJwtSecret } from "../../manager/auth/secret.ts";
import { createMemoryLogger } from "../../shared/logger.ts";

const tempDir = () => mkdtemp(join(tmpdir(), "kn-jwt-secret-"));

describe("loadOrCreateJwtSecret", () => {
  test("generates a secret once (mode 0600, warning with the path) and reuses it", async () => {
    const dataDir = join(await tempDir(), "nested", "data");
    const logger = createMemoryLogger();
    const first = await loadOrCreateJwtSecret({ dataDir, logger });
    expect(first.source).toBe("generated");
    expect(Buffer.from(first.secret, "base64url")).toHaveLength(48);
    const path = join(dataDir, "jwt-secret");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, "utf8")).trim()).toBe(first.secret);
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]).toMatchObject({ level: "warn", path });
    expect(String(logger.records[0]?.msg)).toContain("development JWT secret");
    expect(JSON.stringify(logger.records)).not.toContain(first.secret);

    const second = await loadOrCreateJwtSecret({ dataDir, logger });
    expect(second).toEqual({ secret: first.secret, source: "file" });
    expect(logger.records).toHaveLength(1);
  });

  test("two concurrent first starts agree on one secret", async () => {
    const dataDir = await tempDir();
    const logger = createMemoryLogger();
    const results = await Promise.all([1, 2, 3].map(() => loadOrCreateJwtSecret({ dataDir, logger })));
    expect(new Set(results.map((r) => r.secret)).size).toBe(1);
  });

  test("a configured secret wins and touches no file", async () => {
    const dataDir = await tempDir();
    const logger = createMemoryLogger();
    const secret = "a-configured-secret-of-at-least-32-bytes";
    expect(await loadOrCreateJwtSecret({ dataDir, configuredSecret: secret, logger })).toEqual({
      secret,
      source: "config",
    });
    await expect(stat(join(dataDir, "jwt-secret"))).rejects.toThrow();
    expect(logger.records).toHaveLength(0);
  });

  test("a short configured secret is refused, naming the variable", async () => {
    const dataDir = await tempDir();
    const logger = createMemoryLogger();
    await expect(
      loadOrCreateJwtSecret({ dataDir, configuredSecret: "too-short-secret", logger }),
    ).rejects.toThrow(/KUBENOVA_JWT_SECRET must be at least 32 bytes/);
  });

  test("a short secret file is refused; a world-readable one is used with a warning", async () => {
    const dataDir = await tempDir();
    const path = join(dataDir, "jwt-secret");
    await writeFile(path, "short\n", { mode: 0o600 });
    await expect(loadOrCreateJwtSecret({ dataDir, logger: createMemoryLogger() })).rejects.toThrow(
      /shorter than 32/,
    );

    await writeFile(path, `${"s".repeat(40)}\n`);
    await chmod(path, 0o644);
    const logger = createMemoryLogger();
    expect(await loadOrCreateJwtSecret({ dataDir, logger })).toEqual({
      secret: "s".repeat(40),
      source: "file",
    });
    expect(logger.records[0]).toMatchObject({ level: "warn", path, mode: "644" });
  });
});
