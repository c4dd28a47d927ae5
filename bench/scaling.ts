/**
 * @module bench/scaling — growth of the fan-out cost with clusters: one change to N clusters at three sizes,
 * fitted exponent of the time until the last cluster's acknowledgement. (Memory with clusters is fitted in
 * bench/connections, operator memory with tenants and apps in bench/operator-memory.)
 */
import { fanout } from "./fanout.ts";
import { fitExponent, fmt, printTable, smoke } from "./lib.ts";

export async function run(): Promise<void> {
  const sizes = smoke ? [5, 10, 20] : [250, 500, 1000];
  const points: Array<{ size: number; cost: number; p99: number; share: number }> = [];
  for (const size of sizes) {
    const r = await fanout(size, smoke ? 1 : 2);
    points.push({ size, cost: r.ackedMax, p99: r.ackedP99, share: r.share });
  }
  const exponent = fitExponent(points);
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
    ],
    { points, exponent },
  );
}

if (import.meta.main) await run();
