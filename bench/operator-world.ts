/**
 * @module bench/operator-world — a real Manager process and a real `kubenova operator` process against its own
 * in-memory Kubernetes API server (Capsule and KubeVela simulated), from the end-to-end harness; plus the
 * operator's pid so its RSS can be read from /proc.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createOperatorProcess, startManagerProcess, tempDir, waitUntil } from "../tests/e2e/harness.ts";

export async function operatorWorld() {
  const dir = await tempDir("kn-bench-op-");
  const manager = await startManagerProcess(`${dir.path}/manager`);
  const registered = await manager.api("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" });
  const operator = await createOperatorProcess({
    manager,
    clusterId: registered.body.cluster.id,
    bootstrapToken: registered.body.bootstrap.token,
    dir: `${dir.path}/op`,
    simulations: { capsule: true, kubevela: true },
  });
  await operator.start();
  await waitUntil(
    "dc1 connected",
    async () => (await manager.api("GET", "/api/v1/clusters/dc1")).body.status === "connected",
  );
  await manager.api("POST", "/api/v1/plans", { name: "gold", quotas: { cpu: "4", memory: "8Gi", pods: 20 } });
  const healthPort = new URL(operator.healthUrl).port;
  const operatorPid = findPid(`NOVA_HEALTH_PORT=${healthPort}`);
  const managerPid = findPid(`KUBENOVA_DATA_DIR=${dir.path}/manager`);
  return {
    manager,
    operator,
    operatorPid,
    managerPid,
    async close() {
      await operator.close();
      await manager.kill("SIGKILL");
      await dir.remove();
    },
  };
}

/** The pid of our own child process whose environment holds `marker`. */
function findPid(marker: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (environ.includes(marker)) return Number(entry);
    } catch {
      // gone, or not ours
    }
  }
  throw new Error(`no process with ${marker}`);
}

/** POSTs/PATCHes with a few requests in flight; throws on any non-2xx. */
export async function inParallel<T>(
  items: T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
