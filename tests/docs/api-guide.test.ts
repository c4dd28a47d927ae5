/**
 * docs/api-guide.md stays true: every ```sh block runs, in order, against a real Manager process
 * (`bash -euo pipefail -c`, env KN and TOKEN). A block must exit 0; one whose first line is `# expect: <status>`
 * must also print `"code":"KN-<status>"`. The convention is stated at the top of the guide.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ManagerProcess, startManagerProcess, tempDir } from "../e2e/harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const GUIDE = join(ROOT, "docs", "api-guide.md");
// The guide's first block runs `kubenova token`, which signs with the Manager's secret: the test owns it.
const JWT_SECRET = "api-guide-secret-that-is-long-enough-for-hs256-0123456789";

interface Block {
  line: number;
  script: string;
  expectStatus: number | null;
}

/** Every ```sh fenced block with its starting line and optional `# expect: <status>` first line. */
export function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== "```sh") continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]?.trim() !== "```") end++;
    if (end >= lines.length) throw new Error(`docs/api-guide.md:${start}: unterminated sh block`);
    const body = lines.slice(start, end);
    const expectMatch = body[0]?.match(/^#\s*expect:\s*(\d{3})\s*$/);
    blocks.push({
      line: start,
      script: body.join("\n"),
      expectStatus: expectMatch ? Number(expectMatch[1]) : null,
    });
    i = end;
  }
  return blocks;
}

const blocks = shellBlocks(await Bun.file(GUIDE).text());

let dir: Awaited<ReturnType<typeof tempDir>>;
let manager: ManagerProcess;
let env: Record<string, string>;
let workDir: string;

beforeAll(async () => {
  dir = await tempDir("kn-api-guide-");
  const dataDir = join(dir.path, "data");
  await mkdir(dataDir);
  manager = await startManagerProcess(dataDir, { KUBENOVA_JWT_SECRET: JWT_SECRET });
  // `kubenova` on PATH runs this checkout's CLI, as the compiled binary would.
  const bin = join(dir.path, "bin");
  await mkdir(bin);
  await writeFile(join(bin, "kubenova"), `#!/bin/sh\nexec bun run ${join(ROOT, "kubenova.ts")} "$@"\n`);
  await chmod(join(bin, "kubenova"), 0o755);
  workDir = join(dir.path, "work");
  await mkdir(workDir);
  const managerEnv = {
    KUBENOVA_DATA_DIR: dataDir,
    KUBENOVA_JWT_SECRET: JWT_SECRET,
    KUBENOVA_LOG_LEVEL: "warn",
  };
  const token = Bun.spawnSync(["kubenova", "token", "--role", "admin", "--ttl", "1h"], {
    env: { ...managerEnv, PATH: `${bin}:${process.env.PATH ?? ""}`, HOME: process.env.HOME ?? "/tmp" },
  });
  if (token.exitCode !== 0) throw new Error(`kubenova token failed: ${token.stderr.toString()}`);
  env = {
    ...managerEnv,
    KN: manager.url,
    TOKEN: token.stdout.toString().trim(),
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    HOME: process.env.HOME ?? "/tmp",
  };
}, 30_000);

afterAll(async () => {
  await manager?.kill("SIGTERM");
  await dir?.remove();
});

test("the guide has runnable examples, including expected errors", () => {
  expect(blocks.length).toBeGreaterThanOrEqual(20);
  expect(blocks.filter((b) => b.expectStatus !== null).map((b) => b.expectStatus)).toContain(400);
});

for (const [index, block] of blocks.entries()) {
  const title = block.script.split("\n").find((l) => !l.startsWith("#")) ?? "";
  test(`api-guide.md:${block.line} #${index + 1} ${title.slice(0, 60)}`, async () => {
    const proc = Bun.spawn(["bash", "-euo", "pipefail", "-c", block.script], {
      cwd: workDir,
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    const report = `--- block at docs/api-guide.md:${block.line} ---\n${block.script}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
    if (exitCode !== 0) throw new Error(`exit code ${exitCode}\n${report}`);
    if (block.expectStatus !== null && !stdout.includes(`"code":"KN-${block.expectStatus}"`)) {
      throw new Error(`expected an error body with "code":"KN-${block.expectStatus}"\n${report}`);
    }
    if (block.expectStatus === null) expect(stdout.length).toBeGreaterThan(0);
  }, 20_000);
}
