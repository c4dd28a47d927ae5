/**
 * @module bench/e2e-latency — API call → operator applied (in-memory API server) → status visible through the
 * API: POST an app, then poll its status route until the cluster's `Deployed` is mirrored back. Sequential
 * iterations on a real Manager process and a real operator process.
 */
import { cpuMsOf, fmt, percentile, printTable, smoke } from "./lib.ts";
import { operatorWorld } from "./operator-world.ts";

export async function run(): Promise<void> {
  const iterations = smoke ? 3 : 100;
  const world = await operatorWorld();
  const { manager } = world;
  await manager.api("POST", "/api/v1/tenants", {
    name: "acme",
    plan: "gold",
    clusters: ["dc1"],
    owners: ["a"],
  });
  await manager.api("POST", "/api/v1/tenants/acme/projects", { name: "web", cluster: "dc1" });
  const latencies: number[] = [];
  const self0 = cpuMsOf(process.pid);
  const t0 = Date.now();
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    const created = await manager.api("POST", "/api/v1/tenants/acme/projects/web/apps", {
      name: `app-${i}`,
      spec: { components: [{ name: "web", type: "webservice", properties: { image: `nginx:1.${i}` } }] },
    });
    if (created.status !== 201)
      throw new Error(`POST app: ${created.status} ${JSON.stringify(created.body)}`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const status = await manager.api("GET", `/api/v1/tenants/acme/projects/web/apps/app-${i}/status`);
      if (status.body?.phase === "Deployed") break;
      if (Date.now() > deadline) throw new Error(`app-${i} not Deployed within 10 s`);
      await Bun.sleep(2);
    }
    latencies.push(performance.now() - start);
  }
  // This process is the API client, the pollers and the in-memory API server (with its controller simulations).
  const share = (cpuMsOf(process.pid) - self0) / Math.max(1, Date.now() - t0) / 2;
  await world.close();
  const p99 = percentile(latencies, 99);
  printTable(
    "e2e-latency",
    [
      {
        measure: "API call → operator applied → status visible",
        baseline: "–",
        value: `p99 ${fmt.ms(p99)} (p50 ${fmt.ms(percentile(latencies, 50))})`,
        ratio: "–",
        target: "p99 ≤ 250 ms",
        pass: p99 <= 250,
        generatorCpuShare: share,
        notes: "generator share: this process (client, pollers, in-memory API server) over 2 cores",
      },
    ],
    { iterations, p50: percentile(latencies, 50), p99, max: Math.max(...latencies) },
  );
}

if (import.meta.main) await run();
