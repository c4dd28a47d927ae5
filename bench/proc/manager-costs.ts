/**
 * @module bench/proc/manager-costs — the Manager's own costs as tenants and apps grow, in one process with no
 * generator: CPU to create them through the API (cumulative, so a per-item cost that grows shows as an exponent
 * above 1), CPU to compute a cluster's whole desired-state snapshot (what a reset operator gets), and CPU of an
 * uncached app-list read (wall time) at each size. Reports the points; bench/scaling fits them.
 */
import "reflect-metadata";
import { clusterSnapshot } from "../../manager/sync/snapshot.ts";
import { createLogger } from "../../shared/logger.ts";
import { childConfig, send } from "../lib.ts";
import { openBenchApp } from "./bench-app.ts";

const config = childConfig<{ dbPath: string; tenantSizes: number[]; appSizes: number[] }>();
const smokeRounds = config.appSizes[0]! < 100;
const logger = createLogger({ level: "error", sink: (line) => process.stderr.write(`${line}\n`) });
const { app, store, call, signer } = await openBenchApp(config.dbPath, logger);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const { cluster } = (await call("POST", "/api/v1/clusters", { name: "dc1", datacenter: "fra" })) as {
  cluster: { id: string };
};
await call("POST", "/api/v1/plans", { name: "gold", quotas: { cpu: "4", memory: "8Gi", pods: 50 } });

/** The median CPU of 5 snapshots: one snapshot is a few ms, where a GC in the middle would double it. */
const snapshotCost = async () => {
  const runs: number[] = [];
  let changes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = cpuMs();
    const snapshot = await clusterSnapshot(store, cluster.id);
    runs.push(cpuMs() - t0);
    changes = snapshot.changes.length;
  }
  return { ms: runs.sort((a, b) => a - b)[2]!, changes };
};

const tenantPoints: Array<{ size: number; createMs: number; snapshotMs: number; changes: number }> = [];
let tenants = 0;
let createMs = 0;
for (const size of config.tenantSizes) {
  const t0 = cpuMs();
  for (; tenants < size; tenants++) {
    const name = `t${tenants}`;
    await call("POST", "/api/v1/tenants", { name, plan: "gold", owners: ["a"], clusters: ["dc1"] });
    await call("POST", `/api/v1/tenants/${name}/projects`, { name: "web", cluster: "dc1" });
  }
  createMs += cpuMs() - t0;
  const snap = await snapshotCost();
  tenantPoints.push({ size, createMs, snapshotMs: snap.ms, changes: snap.changes });
}

const token = (await signer.sign({ subject: "alice", role: "tenantOwner", tenant: "t0", ttlSeconds: 3600 }))
  .token;
const appPoints: Array<{
  size: number;
  createMs: number;
  snapshotMs: number;
  changes: number;
  listUncachedUs: number;
}> = [];
let apps = 0;
createMs = 0;
for (const size of config.appSizes) {
  const t0 = cpuMs();
  for (; apps < size; apps++) {
    await call("POST", `/api/v1/tenants/t${apps % tenants}/projects/web/apps`, {
      name: `app-${apps}`,
      spec: { components: [{ name: "web", type: "webservice", properties: { image: "nginx:1.27" } }] },
    });
  }
  createMs += cpuMs() - t0;
  const snap = await snapshotCost();
  // An uncached read: a write to the apps table before each GET invalidates the read cache. The first rounds
  // warm the code paths up (JIT), only the later ones are measured.
  let listMs = 0;
  const rounds = smokeRounds ? 20 : 200;
  for (let i = 0; i < 2 * rounds; i++) {
    await call("PATCH", "/api/v1/tenants/t1/projects/web/apps/app-1", { labels: { round: String(i) } });
    // Wall time, not process CPU: the write's garbage is collected by concurrent GC threads meanwhile.
    const r0 = performance.now();
    const res = await app.request("/api/v1/tenants/t0/projects/web/apps?limit=100", {
      headers: { authorization: `Bearer ${token}` },
    });
    await res.arrayBuffer();
    if (i >= rounds) listMs += performance.now() - r0;
    if (res.status !== 200) throw new Error(`list: ${res.status}`);
  }
  appPoints.push({
    size,
    createMs,
    snapshotMs: snap.ms,
    changes: snap.changes,
    listUncachedUs: (listMs * 1000) / rounds,
  });
}
await store.close();
send({ type: "ready", tenantPoints, appPoints, pid: process.pid });
process.exit(0);
