/**
 * Real processes on loopback for end-to-end suites: a Manager (`kubenova manager`) that can be SIGKILLed and
 * restarted on the same ports and data, operators (`kubenova operator`) each against its own in-memory
 * Kubernetes API server, and an admin API client.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";

const ENTRY = join(import.meta.dir, "..", "..", "kubenova.ts");
const SECRET = "e2e-secret-that-is-long-enough-for-hs256-0123456789";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}

interface Proc {
  proc: ReturnType<typeof Bun.spawn>;
  output: () => string;
}

function spawn(args: string[], env: Record<string, string>): Proc {
  let output = "";
  const proc = Bun.spawn(["bun", "run", ENTRY, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output = (output + decoder.decode(chunk)).slice(-200_000);
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  return { proc, output: () => output };
}

export interface ManagerProcess {
  url: string;
  mqttPort: number;
  start(): Promise<void>;
  kill(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
  output(): string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  adminToken(): Promise<string>;
}

export async function startManagerProcess(
  dir: string,
  extraEnv: Record<string, string> = {},
  ports: { mqtt?: number } = {},
): Promise<ManagerProcess> {
  const httpPort = await freePort();
  const mqttPort = ports.mqtt ?? (await freePort());
  const url = `http://127.0.0.1:${httpPort}`;
  const env = {
    KUBENOVA_DATA_DIR: dir,
    KUBENOVA_HTTP_PORT: String(httpPort),
    KUBENOVA_MQTT_PORT: String(mqttPort),
    KUBENOVA_JWT_SECRET: SECRET,
    KUBENOVA_LOG_LEVEL: "warn",
    ...extraEnv,
  };
  const signer = createTokenSigner({
    algorithm: "HS256",
    secret: SECRET,
    issuer: "kubenova",
    audience: "kubenova-api",
  });
  const admin = (await signer.sign({ subject: "e2e", role: "admin", ttlSeconds: 3600 })).token;
  let current: Proc | null = null;
  let log = "";
  const manager: ManagerProcess = {
    url,
    mqttPort,
    async start() {
      current = spawn(["manager"], env);
      await waitUntil("the Manager to answer /readyz", async () => (await fetch(`${url}/readyz`)).ok, 20_000);
    },
    async kill(signal = "SIGKILL") {
      if (!current) return;
      current.proc.kill(signal);
      await current.proc.exited;
      log += current.output();
      current = null;
    },
    output: () => log + (current?.output() ?? ""),
    adminToken: async () => admin,
    async api(method, path, body) {
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
    },
  };
  await manager.start();
  return manager;
}

export interface OperatorProcess {
  clusterId: string;
  /** /healthz, /readyz, /stats and /metrics of the operator. */
  healthUrl: string;
  kube: KubeApiServer;
  start(): Promise<void>;
  kill(signal?: "SIGKILL" | "SIGTERM" | "SIGSTOP" | "SIGCONT"): Promise<void>;
  stats(): Promise<{ link: any; outbox: any; desired: any; controllers: any }>;
  output(): string;
  close(): Promise<void>;
}

export async function createOperatorProcess(options: {
  manager: ManagerProcess;
  clusterId: string;
  bootstrapToken: string;
  dir: string;
  heartbeatIntervalMs?: number;
  /** The in-memory server's Capsule/KubeVela controller simulations (DESIGN.md §10). */
  simulations?: { capsule?: boolean; kubevela?: boolean };
  /** Extra environment for the operator process (e.g. a PATH with a recording helm). */
  env?: Record<string, string>;
  /** Use this API server instead of starting a new one. */
  kube?: KubeApiServer;
}): Promise<OperatorProcess> {
  await mkdir(options.dir, { recursive: true });
  const kube =
    options.kube ??
    (await startKubeApiServer({
      namespaces: ["kubenova-system"],
      ...(options.simulations ? { simulations: options.simulations } : {}),
    }));
  const kubeconfig = join(options.dir, "kubeconfig");
  kube.writeKubeconfig(kubeconfig);
  const env: Record<string, string> = {
    NOVA_MANAGER_URL: options.manager.url,
    NOVA_CLUSTER_ID: options.clusterId,
    NOVA_BOOTSTRAP_TOKEN: options.bootstrapToken,
    NOVA_DATA_DIR: join(options.dir, "data"),
    KUBECONFIG: kubeconfig,
    NOVA_HEALTH_HOST: "127.0.0.1",
    NOVA_HEARTBEAT_INTERVAL_MS: String(options.heartbeatIntervalMs ?? 1000),
    NOVA_RESEND_AFTER_MS: "1000",
    KUBENOVA_LOG_LEVEL: "warn",
    ...options.env,
  };
  let current: Proc | null = null;
  let log = "";
  let healthUrl = "";
  return {
    clusterId: options.clusterId,
    get healthUrl() {
      return healthUrl;
    },
    kube,
    async start() {
      // The health port is picked when the operator starts, not when it is created (a port free then may be any
      // process's by now), and the answer must name this operator's cluster: another test's operator can hold a
      // port this one was handed. If it lost the port (it exits), it starts again on another.
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        healthUrl = `http://127.0.0.1:${port}`;
        const proc = spawn(["operator"], { ...env, NOVA_HEALTH_PORT: String(port) });
        current = proc;
        let exited = false;
        void proc.proc.exited.then(() => {
          exited = true;
        });
        const ours = async () => {
          if (exited) return true;
          const health = await fetch(`${healthUrl}/healthz`);
          return health.ok && ((await health.json()) as { cluster?: string }).cluster === options.clusterId;
        };
        try {
          await waitUntil(`operator ${options.clusterId} to serve /healthz`, ours, 30_000);
        } catch (error) {
          throw new Error(
            `${(error as Error).message}\noperator output:\n${(log + proc.output()).slice(-3000)}`,
          );
        }
        if (!exited) return;
        await Bun.sleep(50); // the last of its output
        log += proc.output();
        current = null;
        if (attempt === 3 || !/Is port \d+ in use/.test(proc.output())) {
          throw new Error(`operator ${options.clusterId} exited while starting:\n${log.slice(-3000)}`);
        }
      }
    },
    async kill(signal = "SIGKILL") {
      if (!current) return;
      current.proc.kill(signal);
      if (signal === "SIGKILL" || signal === "SIGTERM") {
        await current.proc.exited;
        log += current.output();
        current = null;
      }
    },
    async stats() {
      return (await (await fetch(`${healthUrl}/stats`)).json()) as {
        link: any;
        outbox: any;
        desired: any;
        controllers: any;
      };
    },
    output: () => log + (current?.output() ?? ""),
    async close() {
      if (current) {
        current.proc.kill("SIGKILL");
        await current.proc.exited;
      }
      await kube.close();
    },
  };
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
