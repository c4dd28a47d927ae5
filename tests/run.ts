/**
 * The test command behind `bun run test` (after format, lint and typecheck): runs `bun test` and ends with the
 * line CI reads, `N passed, N failed` (plus `, N skipped`). Exits with bun's status, non-zero if nothing ran.
 */
const args = process.argv.slice(2);
// Per-test default for suites that start real servers and processes on a shared 2-core machine.
if (!args.some((a) => a.startsWith("--timeout"))) args.push("--timeout=30000");
const child = Bun.spawn(["bun", "test", ...args], {
  stdout: "pipe",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: "0" },
});

let tail = "";
async function pump(stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream) {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    sink.write(chunk);
    tail = (tail + decoder.decode(chunk)).slice(-4096);
  }
}

await Promise.all([pump(child.stdout, process.stdout), pump(child.stderr, process.stderr)]);
const code = await child.exited;
const count = (word: string) => Number(tail.match(new RegExp(`^\\s*(\\d+) ${word}$`, "m"))?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail");
const skipped = count("skip");
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
process.exit(code !== 0 ? code : passed === 0 ? 1 : 0);
export {};
