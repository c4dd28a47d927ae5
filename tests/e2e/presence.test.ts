/**
 * Presence drills with real processes (DESIGN.md §3, §7): an operator SIGKILLed is offline within 5 s; a silent
 * link (SIGSTOP) turns stale within the bound and connected again after SIGCONT; a lossy link that delays and
 * stalls (within the heartbeat allowance) never flaps.
 */
import { afterAll, expect, test } from "bun:test";
import { createOperatorProcess, freePort, startManagerProcess, tempDir, waitUntil } from "./harness.ts";
import { startLossyProxy } from "./lossy-proxy.ts";

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test("presence: SIGKILL → offline; SIGSTOP → stale → SIGCONT → connected; a lossy link does not flap", async () => {
  const dir = await tempDir("kn-e2e-presence-");
  cleanups.push(dir.remove);
  const mqttPort = await freePort();
  // Operators reach the broker through the proxy: the Manager hands out its address at enrolment.
  const proxy = await startLossyProxy({
    targetPort: mqttPort,
    delayMs: () => Math.floor(Math.random() * 250),
    stallChance: 0.05,
    stallMs: 1200,
  });
  cleanups.push(() => proxy.close());
  const manager = await startManagerProcess(
    `${dir.path}/manager`,
    { KUBENOVA_MQTT_PUBLIC_URL: `mqtts://127.0.0.1:${proxy.port}` },
    { mqtt: mqttPort },
  );
  cleanups.push(() => manager.kill("SIGKILL"));
  const statusOf = async (name: string) =>
    (await manager.api("GET", `/api/v1/clusters/${name}`)).body.status as string;

  const operators = [];
  for (const name of ["lossy", "stopped", "killed"]) {
    const registered = await manager.api("POST", "/api/v1/clusters", { name, datacenter: "lab" });
    const operator = await createOperatorProcess({
      manager,
      clusterId: registered.body.cluster.id,
      bootstrapToken: registered.body.bootstrap.token,
      dir: `${dir.path}/${name}`,
      heartbeatIntervalMs: 1000,
    });
    cleanups.push(() => operator.close());
    await operator.start();
    operators.push(operator);
  }
  const [, stopped, killed] = operators;
  for (const name of ["lossy", "stopped", "killed"]) {
    await waitUntil(`${name} connected`, async () => (await statusOf(name)) === "connected");
  }

  // Watch the lossy cluster's status for the whole drill: it must never leave `connected`.
  const lossyStatuses = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      lossyStatuses.add(await statusOf("lossy").catch(() => "unreachable"));
      await Bun.sleep(200);
    }
  })();
  cleanups.push(async () => {
    watching = false;
    await watcher;
  });

  const killedAt = Date.now();
  await killed!.kill("SIGKILL");
  await waitUntil("killed → offline", async () => (await statusOf("killed")) === "offline", 5000);
  expect(Date.now() - killedAt).toBeLessThan(5000);

  await stopped!.kill("SIGSTOP");
  const stoppedAt = Date.now();
  // 3 missed 1 s heartbeats, checked every second: stale within ~5 s; allow scheduling slack on 2 cores.
  await waitUntil("stopped → stale", async () => (await statusOf("stopped")) === "stale", 10_000);
  // The last heartbeat came up to 1 s before SIGSTOP: stale no sooner than ~2 s after it (3 × 1 s allowance).
  expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1500);
  await stopped!.kill("SIGCONT");
  await waitUntil(
    "stopped → connected again",
    async () => (await statusOf("stopped")) === "connected",
    10_000,
  );

  await Bun.sleep(8000); // more lossy heartbeats
  watching = false;
  await watcher;
  expect([...lossyStatuses]).toEqual(["connected"]);
}, 120_000);
