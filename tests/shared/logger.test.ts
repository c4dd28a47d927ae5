import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { batchedSink, createLogger } from "../../shared/logger.ts";

const ROOT = join(import.meta.dir, "..", "..");

describe("batched log sink", () => {
  test("the lines of one event-loop turn reach the destination in one write, in order", async () => {
    const writes: string[] = [];
    const log = createLogger({ sink: batchedSink((text) => writes.push(text)) });
    for (let i = 0; i < 5; i++) log.info("line", { i });
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    const lines = writes[0]!
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2, 3, 4]);
  });

  test("a burst is written before the turn ends once 512 lines are pending", () => {
    const writes: string[] = [];
    const sink = batchedSink((text) => writes.push(text));
    for (let i = 0; i < 512; i++) sink(`{"i":${i}}`);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.split("\n")).toHaveLength(513);
  });

  test("what is pending when the process exits is still written to stdout", async () => {
    const script = `
      import { createLogger } from "./shared/logger.ts";
      const log = createLogger({ base: { component: "t" } });
      log.info("first"); log.error("last words", { code: 7 });
      process.exit(3);`;
    const proc = Bun.spawn(["bun", "-e", script], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(3);
    const lines = out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.msg)).toEqual(["first", "last words"]);
    expect(lines[1]).toMatchObject({ level: "error", code: 7, component: "t" });
  });

  test("a BigInt field is logged as a string instead of dropping the record", () => {
    const lines: string[] = [];
    createLogger({ sink: (line) => lines.push(line) }).info("big", { n: 2n ** 70n });
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "big", n: "1180591620717411303424" });
  });
});

describe("bound fields", () => {
  test("a child's fields are serialized once, not again for every record", () => {
    const lines: string[] = [];
    let serialized = 0;
    const bound = {
      toJSON: () => {
        serialized++;
        return "r1";
      },
    };
    const log = createLogger({ sink: (line) => lines.push(line) }).child({ request_id: bound });
    for (let i = 0; i < 3; i++) log.info("request", { i });
    expect(serialized).toBe(1);
    expect(lines.map((l) => JSON.parse(l))).toEqual(
      [0, 1, 2].map((i) => expect.objectContaining({ msg: "request", request_id: "r1", i })),
    );
  });

  test("a record's fields replace bound fields of the same name, in the bound field's place", () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (line) => lines.push(line), base: { component: "t" } }).child({
      tenant: "acme",
      request_id: "r1",
    });
    log.info("one", { tenant: "other", status: 200, skipped: undefined });
    log.info("two", { status: 201, skipped: undefined });
    const [one, two] = lines.map((l) => JSON.parse(l));
    expect(Object.keys(one)).toEqual(["time", "level", "msg", "component", "tenant", "request_id", "status"]);
    expect(one).toMatchObject({ tenant: "other", status: 200 });
    expect(Object.keys(two)).toEqual(["time", "level", "msg", "component", "tenant", "request_id", "status"]);
    expect(two).toMatchObject({ tenant: "acme", status: 201 });
  });

  test("bound or per-record fields named time, level or msg replace the record's own", () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (line) => lines.push(line) });
    log.child({ level: "custom" }).warn("a");
    log.info("b", { msg: "replaced" });
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ level: "custom", msg: "a" }),
      expect.objectContaining({ level: "info", msg: "replaced" }),
    ]);
  });
});
