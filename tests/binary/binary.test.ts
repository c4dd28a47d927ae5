/**
 * The single binary (DESIGN.md §2): `bun build --compile kubenova.ts`, then a smoke flow run with the BINARY as
 * separate processes — version, manager (docs bundle, dashboard), token, an operator enrolling against an
 * in-memory Kubernetes API server, a tenant reaching that server as a NovaTenant. Prints the binary's size and
 * start-up time (spawn → /readyz); docs/single-binary.md records the numbers.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";
import { freePort, waitUntil } from "../e2e/harness.ts";

const ENTRY = join(import.meta.dir, "..", "..", "kubenova.ts");
const dir = await mkdtemp(join(tmpdir(), "kn-binary-"));
const binary = join(dir, "kubenova");

const buildStarted = performance.now();
const build = Bun.spawnSync(["bun", "build", "--compile", ENTRY, "--outfile", binary], {
  stdout: "pipe",
  stderr: "pipe",
});
const buildMs = performance.now() - buildStarted;
const buildProblem =
  build.exitCode === 0 ? null : `${build.stderr.toString()}${build.stdout.toString()}`.trim();

interface Running {
  proc: ReturnType<typeof Bun.spawn>;
  output: () => string;
}

const running: Running[] = [];

function run(args: string[], env: Record<string, string>): Running {
  let output = "";
  const proc = Bun.spawn([binary, ...args], {
    // Only PATH and HOME from outside: the binary must not need the repository or Bun's environment.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output = (output + decoder.decode(chunk)).slice(-100_000);
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  const entry = { proc, output: () => output };
  running.push(entry);
  return entry;
}

let kube: KubeApiServer | null = null;

afterAll(async () => {
  for (const { proc } of running) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  await kube?.close();
  await rm(dir, { recursive: true, force: true });
});

if (buildProblem !== null) {
  console.warn(
    `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n` +
      `!!! bun build --compile failed: the single-binary smoke test is SKIPPED.\n` +
      `!!! ${buildProblem.split("\n").slice(0, 5).join("\n!!! ")}\n` +
      `!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n`,
  );
  test.skip("single binary: smoke flow (SKIPPED: bun build --compile failed)", () => {});
} else {
  test("single binary: version, manager, docs, dashboard, token, operator enrolment, tenant", async () => {
    const sizeBytes = (await stat(binary)).size;

    const version = Bun.spawnSync([binary, "version"], { cwd: dir });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString()).toMatch(/^kubenova \d+\.\d+\.\d+ \(bun \d/);

    const dataDir = join(dir, "manager-data");
    const httpPort = await freePort();
    const url = `http://127.0.0.1:${httpPort}`;
    // No JWT secret or KEK configured: the binary generates both into its data dir, as an edge install does.
    const managerEnv = {
      KUBENOVA_DATA_DIR: dataDir,
      KUBENOVA_HTTP_PORT: String(httpPort),
      KUBENOVA_MQTT_PORT: String(await freePort()),
      KUBENOVA_LOG_LEVEL: "warn",
    };
    const spawnedAt = performance.now();
    const manager = run(["manager"], managerEnv);
    await waitUntil(
      "the binary's Manager to answer /readyz",
      async () => (await fetch(`${url}/readyz`)).ok,
      20_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${manager.output()}`);
    });
    const startupMs = performance.now() - spawnedAt;

    const openapi = await fetch(`${url}/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(((await openapi.json()) as { openapi: string }).openapi).toStartWith("3.1");
    const scalar = await fetch(`${url}/docs/scalar.js`);
    expect(scalar.status).toBe(200);
    expect((await scalar.text()).length).toBeGreaterThan(100_000);
    const ui = await fetch(`${url}/ui`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("<html");

    const token = Bun.spawnSync([binary, "token", "--role", "admin", "--ttl", "10m"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", ...managerEnv },
    });
    expect(token.stderr.toString()).not.toContain("Error");
    expect(token.exitCode).toBe(0);
    const admin = token.stdout.toString().trim();
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${admin}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    expect((await api("GET", "/api/v1/me")).body.role).toBe("admin");

    const registered = await api("POST", "/api/v1/clusters", { name: "edge1", datacenter: "edge" });
    expect(registered.status).toBe(201);
    const clusterId: string = registered.body.cluster.id;

    kube = await startKubeApiServer({ namespaces: ["kubenova-system"] });
    const kubeconfig = join(dir, "kubeconfig");
    kube.writeKubeconfig(kubeconfig);
    const healthPort = await freePort();
    await mkdir(join(dir, "operator-data"), { recursive: true });
    const operator = run(["operator"], {
      NOVA_MANAGER_URL: url,
      NOVA_CLUSTER_ID: clusterId,
      NOVA_BOOTSTRAP_TOKEN: registered.body.bootstrap.token,
      NOVA_DATA_DIR: join(dir, "operator-data"),
      KUBECONFIG: kubeconfig,
      NOVA_HEALTH_HOST: "127.0.0.1",
      NOVA_HEALTH_PORT: String(healthPort),
      NOVA_HEARTBEAT_INTERVAL_MS: "1000",
      NOVA_RESEND_AFTER_MS: "1000",
      KUBENOVA_LOG_LEVEL: "warn",
    });
    await waitUntil(
      "the cluster to be connected",
      async () => (await api("GET", "/api/v1/clusters/edge1")).body.status === "connected",
      20_000,
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}\n--- manager ---\n${manager.output()}\n--- operator ---\n${operator.output()}`,
      );
    });

    expect((await api("POST", "/api/v1/tenants", { name: "acme", clusters: ["edge1"] })).status).toBe(201);
    await waitUntil(
      "NovaTenant acme in the cluster",
      () => kube?.get({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant", name: "acme" }) !== undefined,
      15_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n--- operator ---\n${operator.output()}`);
    });

    process.stdout.write(
      `\nsingle binary: ${(sizeBytes / 1024 / 1024).toFixed(1)} MiB (${sizeBytes} bytes), ` +
        `built in ${Math.round(buildMs)} ms, manager spawn → /readyz ${Math.round(startupMs)} ms\n`,
    );
    // Guard rails, not targets: a binary that doubles in size or starts ten times slower is a regression.
    expect(sizeBytes).toBeLessThan(250 * 1024 * 1024);
    expect(startupMs).toBeLessThan(10_000);
  }, 45_000);
}
