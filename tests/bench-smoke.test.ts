/**
 * The benchmarks never rot: `bun run bench/run.ts --smoke` runs every measure at tiny sizes and must exit 0
 * and print a result table for each. Targets are not asserted — smoke sizes say nothing about them.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { MEASURES } from "../bench/measures.ts";

test(
  "bench smoke mode runs every measure and prints its table",
  async () => {
    const proc = Bun.spawn(["bun", "run", join(import.meta.dir, "..", "bench", "run.ts"), "--smoke"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (code !== 0) console.error(stderr.slice(-4000));
    expect(code).toBe(0);
    const printed = stdout
      .split("\n")
      .filter((line) => line.startsWith("BENCH_RESULT "))
      .map(
        (line) =>
          JSON.parse(line.slice("BENCH_RESULT ".length)) as { name: string; smoke: boolean; rows: unknown[] },
      );
    expect(printed.map((r) => r.name).sort()).toEqual([...MEASURES].sort());
    for (const result of printed) {
      expect(result.smoke).toBe(true);
      expect(result.rows.length).toBeGreaterThan(0);
    }
    for (const name of MEASURES) expect(stdout).toContain(`## ${name}`);
  },
  { timeout: 90_000 },
);
