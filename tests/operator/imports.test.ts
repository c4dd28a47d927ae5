/**
 * What `kubenova operator` loads (docs/benchmarks.md "Operator memory"): each module below costs the idle operator
 * RSS for code it never runs, so none may creep back into its import graph. The real command runs with a
 * kubeconfig that does not exist, so it stops right after loading everything; a preloaded hook lists the modules.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "kn-operator-imports-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function operatorModules(): Promise<string[]> {
  const hook = join(dir, "list-modules.ts");
  const out = join(dir, "modules.json");
  writeFileSync(
    hook,
    `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));`,
  );
  const proc = Bun.spawn(["bun", `--preload=${hook}`, join(ROOT, "kubenova.ts"), "operator"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      NOVA_MANAGER_URL: "http://127.0.0.1:1",
      NOVA_CLUSTER_ID: "01a2013e-0415-7020-8cc2-2dd7146c9833",
      NOVA_BOOTSTRAP_TOKEN: "unused",
      NOVA_DATA_DIR: join(dir, "data"),
      NOVA_HEALTH_PORT: "0",
      KUBECONFIG: join(dir, "no-such-kubeconfig"),
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = await new Response(proc.stderr).text();
  await proc.exited;
  expect(stderr).toContain("no-such-kubeconfig"); // it got as far as building the Kubernetes client
  return JSON.parse(readFileSync(out, "utf8")) as string[];
}

test("the operator loads no classic zod, no API schemas, no Manager and only what mqtt.js's client needs", async () => {
  const modules = await operatorModules();
  expect(modules.some((path) => path.endsWith("/operator/main.ts"))).toBe(true);
  expect(modules.some((path) => path.includes("/zod/v4/mini/"))).toBe(true);
  expect(modules.some((path) => path.includes("/mqtt/build/lib/client.js"))).toBe(true);
  const unwanted = [
    /\/zod\/v4\/classic\//, // classic zod: the operator's schemas are zod/mini (shared/zod.ts)
    /\/shared\/api\//, // the API's OpenAPI-documented schemas
    /\/shared\/config\.ts$/, // the Manager's variables (the operator's are shared/operator-config.ts)
    /\/manager\/(?!install\/names\.ts$)/, // the Manager (its resource names are shared constants)
    /\/mqtt\/build\/lib\/connect\//, // mqtt.connect's transports (WebSocket, TCP, SOCKS); the link brings its own TLS
    /\/node_modules\/ws\//,
    /\/readable-stream\/lib\/(?!ours\/index\.js$)/, // its copy of Node's streams (operator/mqtt-deps.ts)
    /\/node_modules\/(@babel\/runtime|worker-timers-broker|broker-factory|fast-unique-numbers)\//, // worker timers
    /\/reflect-metadata\//, // @peculiar/x509's polyfill; the operator writes its CSR with WebCrypto (shared/csr.ts)
    /@opentelemetry\/sdk/,
    /@opentelemetry\/api\//, // loaded with the first traced change (operator/link/link.ts applyTraced)
  ];
  expect(modules.filter((path) => unwanted.some((pattern) => pattern.test(path)))).toEqual([]);
});

test("without classic zod loaded, a bad variable is still explained in English (config errors name it)", async () => {
  const script = `
    const { parseOperatorConfig } = await import(${JSON.stringify(join(ROOT, "shared/operator-config.ts"))});
    try {
      parseOperatorConfig({ NOVA_MANAGER_URL: "https://m.example", NOVA_CLUSTER_ID: "01a2013e-0415-7020-8cc2-2dd7146c9833", NOVA_HEALTH_PORT: "http" });
    } catch (error) {
      process.stdout.write(error.message);
    }
    if (Object.keys(require.cache).some((path) => path.includes("/zod/v4/classic/"))) process.stdout.write(" (classic zod loaded)");
  `;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out).toBe('NOVA_HEALTH_PORT: Invalid input: expected number, received NaN (got "http")');
});
