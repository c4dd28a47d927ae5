/**
 * @module bench/scaling — growth of each cost with clusters, tenants and apps (three sizes each, fitted
 * exponents): fan-out time to N clusters (one change, until the last acknowledgement), and the Manager's own
 * CPU with tenants and apps — creating them through the API, a cluster's full snapshot, an uncached list read
 * (bench/proc/manager-costs). Memory with clusters is fitted in bench/connections, operator memory with tenants
 * and apps in bench/operator-memory.
 */
import { join } from "node:path";
import { fanout } from "./fanout.ts";
import { fitExponent, fmt, printTable, smoke, spawnChild, tempDir } from "./lib.ts";

interface CostPoint {
  size: number;
  createMs: number;
  snapshotMs: number;
  changes: number;
  listUncachedUs?: number;
}

async function managerCosts(): Promise<{ tenantPoints: CostPoint[]; appPoints: CostPoint[] }> {
  const dir = await tempDir("kn-bench-costs-");
  const child = spawnChild("manager-costs", {
    dbPath: join(dir.path, "m.db"),
    tenantSizes: smoke ? [5, 10, 20] : [100, 200, 400],
    appSizes: smoke ? [20, 40, 80] : [1000, 2000, 4000],
  });
  const result = await child.next<{ tenantPoints: CostPoint[]; appPoints: CostPoint[] }>(
    "ready",
    smoke ? 60_000 : 600_000,
  );
  await child.kill();
  await dir.remove();
  return result;
}

function growthRow(
  measure: string,
  points: Array<{ size: number; cost: number }>,
  unit: (v: number) => string,
) {
  const exponent = fitExponent(points);
  return {
    measure,
    baseline: "–",
    value: points.map((p) => `${p.size}:${unit(p.cost)}`).join(" "),
    ratio: `exp ${exponent.toFixed(2)}`,
    target: "exponent ≤ 1.1",
    pass: exponent <= 1.1,
    generatorCpuShare: null,
  };
}

export async function run(): Promise<void> {
  const sizes = smoke ? [5, 10, 20] : [250, 500, 1000];
  const points: Array<{ size: number; cost: number; p99: number; share: number }> = [];
  for (const size of sizes) {
    const r = await fanout(size, smoke ? 1 : 2);
    points.push({ size, cost: r.ackedMax, p99: r.ackedP99, share: r.share });
  }
  const exponent = fitExponent(points);
  const costs = await managerCosts();
  const ms = (v: number) => fmt.ms(v);
  const us = (v: number) => `${v.toFixed(0)} µs`;
  const pick = (list: CostPoint[], key: "createMs" | "snapshotMs" | "listUncachedUs") =>
    list.map((p) => ({ size: p.size, cost: p[key] ?? 0 }));
  printTable(
    "scaling",
    [
      {
        measure: "growth of fan-out time (last ack) with clusters",
        baseline: "–",
        value: points.map((p) => `${p.size}:${fmt.ms(p.cost)}`).join(" "),
        ratio: `exp ${exponent.toFixed(2)}`,
        target: "exponent ≤ 1.1",
        pass: exponent <= 1.1,
        generatorCpuShare: points.at(-1)!.share,
      },
      growthRow(
        "Manager CPU creating tenants (+project each) via the API",
        pick(costs.tenantPoints, "createMs"),
        ms,
      ),
      growthRow(
        "Manager CPU of a cluster snapshot, with tenants",
        pick(costs.tenantPoints, "snapshotMs"),
        ms,
      ),
      growthRow("Manager CPU creating apps via the API", pick(costs.appPoints, "createMs"), ms),
      growthRow("Manager CPU of a cluster snapshot, with apps", pick(costs.appPoints, "snapshotMs"), ms),
      growthRow(
        "Manager time of an uncached app-list GET (after a write), with apps",
        pick(costs.appPoints, "listUncachedUs"),
        us,
      ),
    ],
    { points, exponent, costs },
  );
}

if (import.meta.main) await run();
