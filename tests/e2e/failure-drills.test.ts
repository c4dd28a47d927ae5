/**
 * DESIGN.md §7 failure drills with real processes: a network partition through a loopback TCP proxy (black-hole,
 * then reset) between an operator and the broker, and a database outage in the middle of report traffic.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { executePostgresAdmin } from "../../manager/store/postgres.ts";
import { createOperatorProcess, freePort, startManagerProcess, tempDir, waitUntil } from "./harness.ts";
import { startLossyProxy } from "./lossy-proxy.ts";

const ADMIN_URL = process.env.KUBENOVA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("failure drills", () => {
  test("partition: black-hole → stale, changes held, heal → delivered; reset → offline, heal → reconnect and resync", async () => {
    const dir = await tempDir("kn-drill-net-");
    cleanups.push(dir.remove);
    const mqttPort = await freePort();
    const proxy = await startLossyProxy({
      targetPort: mqttPort,
      delayMs: () => 0,
      stallChance: 0,
      stallMs: 0,
    });
    cleanups.push(() => proxy.close());
    const manager = await startManagerProcess(
      `${dir.path}/manager`,
      { KUBENOVA_MQTT_PUBLIC_URL: `mqtts://127.0.0.1:${proxy.port}` },
      { mqtt: mqttPort },
    );
    cleanups.push(() => manager.kill("SIGKILL"));
    const registered = await manager.api("POST", "/api/v1/clusters", { name: "dc1", datacenter: "lab" });
    const operator = await createOperatorProcess({
      manager,
      clusterId: registered.body.cluster.id,
      bootstrapToken: registered.body.bootstrap.token,
      dir: `${dir.path}/op`,
      heartbeatIntervalMs: 1000,
    });
    cleanups.push(() => operator.close());
    await operator.start();
    const statusOf = async () => (await manager.api("GET", "/api/v1/clusters/dc1")).body.status as string;
    const novaTenant = (name: string) =>
      operator.kube.get({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant", name });
    await waitUntil("connected", async () => (await statusOf()) === "connected");

    // Black-hole: nothing crosses, the connection stays open — the Manager sees silence, then staleness.
    proxy.blackhole();
    expect((await manager.api("POST", "/api/v1/tenants", { name: "held", clusters: ["dc1"] })).status).toBe(
      201,
    );
    await waitUntil("stale during the black-hole", async () => (await statusOf()) === "stale", 15_000);
    expect(novaTenant("held")).toBeUndefined();
    proxy.heal();
    await waitUntil("the held change delivered after heal", () => novaTenant("held") !== undefined, 30_000);
    await waitUntil("connected again", async () => (await statusOf()) === "connected", 30_000);

    // Reset: connections die and new ones are refused — offline at once; after heal the operator reconnects
    // (backoff with jitter) and the hello resync brings what changed meanwhile.
    proxy.reset();
    const seen: string[] = [];
    await waitUntil(
      "offline after the reset",
      async () => {
        const status = await statusOf();
        if (seen[seen.length - 1] !== status) seen.push(status);
        return status === "offline";
      },
      10_000,
    ).catch((error) => {
      throw new Error(
        `${(error as Error).message}; statuses seen: ${seen.join(" → ")}\n${manager.output().slice(-1500)}`,
      );
    });
    expect((await manager.api("POST", "/api/v1/tenants", { name: "later", clusters: ["dc1"] })).status).toBe(
      201,
    );
    await Bun.sleep(1500);
    proxy.heal();
    await waitUntil("reconnected", async () => (await statusOf()) === "connected", 45_000);
    await waitUntil("the change made while partitioned", () => novaTenant("later") !== undefined, 30_000);
    const stats = await operator.stats();
    expect(stats.desired.repeatedRevisions).toBe(0);
  }, 150_000);

  test("database outage mid-traffic: /readyz fails, nothing is acked or lost, everything arrives once after", async () => {
    try {
      await executePostgresAdmin({ url: ADMIN_URL, statements: ["SELECT 1"] });
    } catch {
      console.warn(`POSTGRES OUTAGE DRILL SKIPPED: no server at ${ADMIN_URL}`);
      return;
    }
    const name = `kn_drill_${Math.random().toString(36).slice(2, 8)}`;
    await executePostgresAdmin({ url: ADMIN_URL, statements: [`CREATE DATABASE ${name}`] });
    const allow = (value: boolean) =>
      executePostgresAdmin({
        url: ADMIN_URL,
        statements: [`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${value}`],
      });
    cleanups.push(async () => {
      await allow(true).catch(() => undefined);
      await executePostgresAdmin({
        url: ADMIN_URL,
        statements: [`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`],
      });
    });
    const dir = await tempDir("kn-drill-db-");
    cleanups.push(dir.remove);
    const manager = await startManagerProcess(`${dir.path}/manager`, {
      KUBENOVA_DATABASE_URL: ADMIN_URL.replace(/\/[^/]*$/, `/${name}`),
    });
    cleanups.push(() => manager.kill("SIGKILL"));
    const OPERATORS = 5;
    const REPORTS = 200;
    const operators: Array<{ clusterId: string; token: string }> = [];
    for (let i = 0; i < OPERATORS; i++) {
      const res = await manager.api("POST", "/api/v1/clusters", { name: `dc${i}`, datacenter: "lab" });
      operators.push({ clusterId: res.body.cluster.id, token: res.body.bootstrap.token });
    }
    await manager.api("POST", "/api/v1/tenants", { name: "acme", clusters: ["dc0"] });
    const range = () =>
      `from=${encodeURIComponent(new Date(Date.now() - (REPORTS + 2) * 3_600_000).toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`;
    const committed = async () =>
      ((await manager.api("GET", `/api/v1/tenants/acme/usage?${range()}&granularity=month`)).body
        ?.records as number) ?? 0;

    await mkdir(join(dir.path, "reporters"), { recursive: true });
    const child = Bun.spawn(["bun", "run", join(import.meta.dir, "report-operators.ts")], {
      env: {
        PATH: process.env.PATH ?? "",
        MANAGER_URL: manager.url,
        OPERATORS: JSON.stringify(operators),
        REPORTS: String(REPORTS),
        DATA_DIR: join(dir.path, "reporters"),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    // Read as it comes (a full pipe would stall the reporters), shown if they fail.
    const reporterErrors = new Response(child.stderr).text();
    await waitUntil("some reports committed", async () => (await committed()) >= 100, 60_000);

    // The outage: existing connections are cut and new ones refused, as while the server restarts.
    await allow(false);
    await executePostgresAdmin({
      url: ADMIN_URL,
      statements: [`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`],
    });
    await waitUntil(
      "/readyz failing",
      async () => (await fetch(`${manager.url}/readyz`)).status === 503,
      15_000,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\nManager output:\n${manager.output().slice(-4000)}`);
    });
    await Bun.sleep(2000);
    await allow(true);
    await waitUntil(
      "/readyz recovered by itself",
      async () => (await fetch(`${manager.url}/readyz`)).status === 200,
      30_000,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\nManager output:\n${manager.output().slice(-4000)}`);
    });

    const exited = await child.exited;
    if (exited !== 0) {
      throw new Error(
        `the reporters exited ${exited}:\n${(await reporterErrors).slice(-4000)}\nManager output:\n${manager.output().slice(-4000)}`,
      );
    }
    const report = (await manager.api("GET", `/api/v1/tenants/acme/usage?${range()}&granularity=month`)).body;
    let pods = 0;
    for (let index = 0; index < OPERATORS; index++)
      for (let i = 0; i < REPORTS; i++) pods += (index % 7) + (i % 5) + 1;
    expect({ rows: report.records, pods: report.totals.pods }).toEqual({ rows: OPERATORS * REPORTS, pods });
  }, 180_000);
});
