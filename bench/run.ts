/**
 * @module bench/run — runs every benchmark (or those named) each in its own process, one after another:
 * `bun run bench/run.ts [--smoke] [name…]`. Exits non-zero if a benchmark crashed or did not finish in its
 * time bound — not when a target is missed (the tables say that).
 */
import { join } from "node:path";
import { MEASURES } from "./measures.ts";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke");
const named = args.filter((a) => !a.startsWith("--"));
const unknown = named.filter((n) => !(MEASURES as readonly string[]).includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${MEASURES.join(", ")}`);
  process.exit(2);
}
const selected = named.length > 0 ? named : [...MEASURES];
const timeoutMs = smoke ? 45_000 : 15 * 60_000;
const failures: string[] = [];
const summary: string[] = [];
for (const name of selected) {
  const started = Date.now();
  const proc = Bun.spawn(["bun", join(import.meta.dir, `${name}.ts`), ...(smoke ? ["--smoke"] : [])], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  let output = "";
  const decoder = new TextDecoder();
  for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
    const text = decoder.decode(chunk);
    output += text;
    process.stdout.write(text);
  }
  const code = await proc.exited;
  clearTimeout(timer);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const result = output.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (code !== 0 || !result) {
    failures.push(name);
    summary.push(`${name}: FAILED to run (exit ${code}) after ${seconds} s`);
    continue;
  }
  const parsed = JSON.parse(result.slice("BENCH_RESULT ".length)) as {
    rows: Array<{ pass: boolean | null }>;
  };
  const passed = parsed.rows.filter((r) => r.pass === true).length;
  summary.push(`${name}: ran in ${seconds} s, ${passed}/${parsed.rows.length} targets met`);
}
console.log(`\n# summary${smoke ? " (smoke)" : ""}`);
for (const line of summary) console.log(line);
process.exit(failures.length > 0 ? 1 : 0);
