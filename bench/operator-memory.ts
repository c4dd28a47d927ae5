/**
 * @module bench/operator-memory — the operator process's RSS idle and with T tenants and A apps applied in its
 * cluster (in-memory API server), created through the Manager's API in three steps each, so the growth
 * exponent of operator memory with tenants and with apps is fitted as well.
 *
 * The operator is the real `bun run kubenova.ts operator` started by the end-to-end harness, as compose and the
 * e2e tests run it. The baseline is the runtime floor measured in the same run: a bare Bun process doing nothing
 * (`bun -e 'setInterval(() => {}, 1000)'`). Next to RSS the table's absolute figures split it into the Bun
 * executable's code pages (file-backed, shared with every other Bun process on the node) and anonymous memory.
 */
import { readFileSync } from "node:fs";
import { fitExponent, fmt, printTable, rssOf, smoke } from "./lib.ts";
import { inParallel, operatorWorld } from "./operator-world.ts";

const MB = 1048576;

/** RSS split from /proc/<pid>/smaps_rollup: anonymous (heap, JIT, malloc) and file-backed (executable, libraries). */
function rssSplit(pid: number): { rss: number; anonymous: number; fileBacked: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (field: string) =>
    Number(rollup.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0) * 1024;
  const rss = kb("Rss");
  const anonymous = kb("Anonymous");
  return { rss, anonymous, fileBacked: rss - anonymous };
}

/** The RSS of a bare Bun process that only keeps its event loop alive: the floor no Bun program goes below. */
async function runtimeFloor(): Promise<{ rss: number; anonymous: number; fileBacked: number }> {
  const proc = Bun.spawn(["bun", "-e", "setInterval(() => {}, 1000)"], {
    stdout: "ignore",
    stderr: "inherit",
  });
  try {
    await Bun.sleep(1500);
    return rssSplit(proc.pid);
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

const progress = (text: string) => process.stderr.write(`operator-memory: ${text}\n`);

async function measure(
  world: Awaited<ReturnType<typeof operatorWorld>>,
  tenants: number,
  appsPerTenant: number,
  floor: { rss: number },
) {
  const { manager, operator } = world;
  const kube = operator.kube;
  const ok = async (method: string, path: string, body?: unknown) => {
    const res = await manager.api(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  };
  const settle = async (check: () => boolean, what: string) => {
    const started = Date.now();
    const deadline = started + (smoke ? 30_000 : 600_000);
    while (!check()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what} (operator RSS ${fmt.mb(rssOf(world.operatorPid))})`);
      }
      await Bun.sleep(100);
    }
    await Bun.sleep(smoke ? 300 : 3000); // status reports, watches and GC settle
    progress(
      `${what} applied in ${((Date.now() - started) / 1000).toFixed(0)} s; RSS ${fmt.mb(rssOf(world.operatorPid))}`,
    );
  };
  await Bun.sleep(smoke ? 300 : 3000);
  const idle = rssSplit(world.operatorPid);
  progress(`idle RSS ${fmt.mb(idle.rss)} (runtime floor ${fmt.mb(floor.rss)})`);

  const tenantPoints: Array<{ size: number; cost: number; rss: number }> = [];
  let created = 0;
  for (const step of [tenants / 4, tenants / 2, tenants]) {
    const names = Array.from({ length: step - created }, (_, i) => `t${created + i}`);
    await inParallel(names, 8, async (name) => {
      await ok("POST", "/api/v1/tenants", { name, plan: "gold", clusters: ["dc1"], owners: ["a"] });
      await ok("POST", `/api/v1/tenants/${name}/projects`, { name: "web", cluster: "dc1" });
    });
    created = step;
    const last = `t${step - 1}-web`;
    await settle(
      () => kube.get({ apiVersion: "v1", kind: "Namespace", name: last }) !== undefined,
      `${step} tenants`,
    );
    const rss = rssOf(world.operatorPid);
    tenantPoints.push({ size: step, cost: rss - idle.rss, rss });
  }
  const withTenants = rssOf(world.operatorPid);
  const apps = tenants * appsPerTenant;
  const appPoints: Array<{ size: number; cost: number; rss: number }> = [];
  let madeApps = 0;
  for (const step of [apps / 4, apps / 2, apps]) {
    const items = Array.from({ length: step - madeApps }, (_, i) => madeApps + i);
    await inParallel(items, 8, async (n) => {
      const tenant = `t${n % tenants}`;
      await ok("POST", `/api/v1/tenants/${tenant}/projects/web/apps`, {
        name: `app-${n}`,
        spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1.27" } }] },
      });
    });
    madeApps = step;
    const lastN = step - 1;
    await settle(
      () =>
        kube.get({
          apiVersion: "core.oam.dev/v1beta1",
          kind: "Application",
          namespace: `t${lastN % tenants}-web`,
          name: `app-${lastN}`,
        }) !== undefined,
      `${step} apps`,
    );
    const rss = rssOf(world.operatorPid);
    appPoints.push({ size: step, cost: rss - withTenants, rss });
  }
  const loaded = rssSplit(world.operatorPid);
  return { idle, withTenants, loaded, tenantPoints, appPoints };
}

export async function run(): Promise<void> {
  const tenants = smoke ? 4 : 500;
  const appsPerTenant = 10;
  const floor = await runtimeFloor();
  const world = await operatorWorld();
  // A failed step must not leave the Manager and operator processes behind.
  const { idle, withTenants, loaded, tenantPoints, appPoints } = await measure(
    world,
    tenants,
    appsPerTenant,
    floor,
  ).finally(() => world.close());
  const tenantExp = fitExponent(tenantPoints);
  const appExp = fitExponent(appPoints);
  const baseline = `${fmt.mb(floor.rss)} bare Bun`;
  const overFloor = (rss: number) => `${(rss / floor.rss).toFixed(2)}× floor`;
  printTable(
    "operator-memory",
    [
      {
        measure: "operator RSS idle",
        baseline,
        value: fmt.mb(idle.rss),
        ratio: overFloor(idle.rss),
        target: "≤ 60 MB",
        pass: idle.rss <= 60 * MB,
        generatorCpuShare: null,
      },
      {
        measure: `operator RSS with ${tenants} tenants, ${tenants * appsPerTenant} apps`,
        baseline,
        value: fmt.mb(loaded.rss),
        ratio: overFloor(loaded.rss),
        target: "≤ 150 MB",
        pass: loaded.rss <= 150 * MB,
        generatorCpuShare: null,
      },
      {
        measure: "growth of operator memory with tenants",
        baseline: "–",
        value: tenantPoints.map((p) => `${p.size}:+${fmt.mb(p.cost)}`).join(" "),
        ratio: `exp ${tenantExp.toFixed(2)}`,
        target: "exponent ≤ 1.1",
        pass: tenantExp <= 1.1,
        generatorCpuShare: null,
      },
      {
        measure: "growth of operator memory with apps",
        baseline: "–",
        value: appPoints.map((p) => `${p.size}:+${fmt.mb(p.cost)}`).join(" "),
        ratio: `exp ${appExp.toFixed(2)}`,
        target: "exponent ≤ 1.1",
        pass: appExp <= 1.1,
        generatorCpuShare: null,
      },
    ],
    { floor, idle, withTenants, loaded, tenantPoints, appPoints, tenantExp, appExp },
  );
}

if (import.meta.main) await run();
