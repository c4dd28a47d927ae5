/**
 * DESIGN.md §3 "at-least-once on the wire, exactly-once in the database", with real processes: 50 operators ×
 * 200 hourly usage reports (10,000 unique), the Manager SIGKILLed at a seeded random moment during the burst and
 * restarted. Exactly 10,000 rows, the exact sum, empty outboxes — on SQLite and on Postgres.
 * KN_E2E_SEEDS="1,2,3" runs several seeds (printed on failure).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { executePostgresAdmin } from "../../manager/store/postgres.ts";
import { startManagerProcess, tempDir, waitUntil } from "./harness.ts";

const OPERATORS = Number(process.env.KN_E2E_OPERATORS ?? 50);
const REPORTS = Number(process.env.KN_E2E_REPORTS ?? 200);
const PER_PROCESS = 10;
const SEEDS = (process.env.KN_E2E_SEEDS ?? "7").split(",").map(Number);
const ADMIN_URL = process.env.KUBENOVA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The expected sum of pods, mirroring report-operators.ts. */
function expectedPods(): number {
  let sum = 0;
  for (let index = 0; index < OPERATORS; index++) {
    const local = index % PER_PROCESS;
    for (let i = 0; i < REPORTS; i++) sum += (local % 7) + (i % 5) + 1;
  }
  return sum;
}

async function postgresAvailable(): Promise<boolean> {
  try {
    await executePostgresAdmin({ url: ADMIN_URL, statements: ["SELECT 1"] });
    return true;
  } catch {
    return false;
  }
}

async function run(seed: number, databaseUrl: string | null): Promise<void> {
  const dir = await tempDir("kn-e2e-usage-");
  cleanups.push(dir.remove);
  const manager = await startManagerProcess(
    join(dir.path, "manager"),
    databaseUrl ? { KUBENOVA_DATABASE_URL: databaseUrl } : {},
  );
  cleanups.push(() => manager.kill("SIGKILL"));
  const operators: Array<{ clusterId: string; token: string }> = [];
  for (let i = 0; i < OPERATORS; i++) {
    const res = await manager.api("POST", "/api/v1/clusters", { name: `dc${i}`, datacenter: "lab" });
    expect(res.status).toBe(201);
    operators.push({ clusterId: res.body.cluster.id, token: res.body.bootstrap.token });
  }
  expect((await manager.api("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc0"] })).status).toBe(
    201,
  );

  const children: Array<ReturnType<typeof Bun.spawn>> = [];
  for (let p = 0; p * PER_PROCESS < OPERATORS; p++) {
    await mkdir(join(dir.path, `reporters-${p}`), { recursive: true });
    const group = operators.slice(p * PER_PROCESS, (p + 1) * PER_PROCESS);
    children.push(
      Bun.spawn(["bun", "run", join(import.meta.dir, "report-operators.ts")], {
        env: {
          PATH: process.env.PATH ?? "",
          MANAGER_URL: manager.url,
          OPERATORS: JSON.stringify(group),
          REPORTS: String(REPORTS),
          DATA_DIR: join(dir.path, `reporters-${p}`),
        },
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
  }
  // A seeded moment inside the burst: after the Manager has committed some reports, before all of them.
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  const target = Math.floor((0.1 + 0.6 * next()) * OPERATORS * REPORTS);
  const range = () => {
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const from = new Date(Date.now() - (REPORTS + 2) * 3_600_000).toISOString();
    return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  };
  const count = async () =>
    (await manager.api("GET", `/api/v1/tenants/acme/usage?${range()}&granularity=month`)).body
      .records as number;
  await waitUntil(
    `seed ${seed}: ${target} reports committed before the kill`,
    async () => (await count()) >= target,
    90_000,
  );
  await manager.kill("SIGKILL");
  await Bun.sleep(1000 + Math.floor(next() * 2000)); // down for a while: operators buffer meanwhile
  await manager.start();

  const codes = await Promise.all(children.map((c) => c.exited));
  if (codes.some((c) => c !== 0))
    console.error(`Manager output (seed ${seed}):\n${manager.output().slice(-3000)}`);
  const stderr = await Promise.all(children.map((c) => new Response(c.stderr as ReadableStream).text()));
  expect({ seed, codes, stderr: stderr.map((s) => s.slice(-600)).join("\n") }).toEqual({
    seed,
    codes: children.map(() => 0),
    stderr: expect.any(String),
  });

  const report = (await manager.api("GET", `/api/v1/tenants/acme/usage?${range()}&granularity=month`)).body;
  const rows = report.records as number;
  const pods = report.totals.pods as number;
  // Uniqueness from the raw records (CSV export): one row per (cluster, window).
  const csv = await (
    await fetch(`${manager.url}/api/v1/tenants/acme/usage?${range()}&format=csv`, {
      headers: { authorization: `Bearer ${await manager.adminToken()}` },
    })
  ).text();
  const seen = new Set(
    csv
      .trimEnd()
      .split("\r\n")
      .slice(1)
      .map((line) => line.split(",").slice(1, 3).join("|")),
  );
  expect({ seed, rows, unique: seen.size, pods }).toEqual({
    seed,
    rows: OPERATORS * REPORTS,
    unique: OPERATORS * REPORTS,
    pods: expectedPods(),
  });
  await manager.kill("SIGTERM");
}

describe("usage reports: exactly once through a Manager SIGKILL", () => {
  for (const seed of SEEDS) {
    test(`SQLite, seed ${seed}`, () => run(seed, null), 180_000);
  }

  test("Postgres", async () => {
    if (!(await postgresAvailable())) {
      console.warn(
        `POSTGRES E2E SKIPPED: no server at ${ADMIN_URL} (the store contract runs on embedded PGlite instead)`,
      );
      return;
    }
    for (const seed of SEEDS) {
      const name = `kn_e2e_${seed}_${Math.random().toString(36).slice(2, 8)}`;
      await executePostgresAdmin({ url: ADMIN_URL, statements: [`CREATE DATABASE ${name}`] });
      cleanups.push(() =>
        executePostgresAdmin({
          url: ADMIN_URL,
          statements: [`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`],
        }),
      );
      await run(seed, ADMIN_URL.replace(/\/[^/]*$/, `/${name}`));
    }
  }, 300_000);
});
