/** The operator outbox: durable, bounded with its shedding policy, and intact after SIGKILL mid-write. */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { uuidv7 } from "../../shared/ids.ts";
import { openOutbox } from "../../operator/link/outbox.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tempPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kn-outbox-"));
  dirs.push(dir);
  return join(dir, "outbox.db");
}

describe("outbox", () => {
  test("keeps reports across reopen until acked; duplicate ids and acks are harmless", async () => {
    const path = await tempPath();
    const a = uuidv7();
    const b = uuidv7();
    let outbox = openOutbox({ path, maxRows: 100 });
    outbox.enqueue({ id: a, channel: "usage", reportClass: "usage", payload: "A" });
    outbox.enqueue({ id: a, channel: "usage", reportClass: "usage", payload: "A again" });
    outbox.enqueue({ id: b, channel: "events", reportClass: "event", payload: "B" });
    outbox.close();
    outbox = openOutbox({ path, maxRows: 100 });
    expect(outbox.due(10, 0).map((r) => [r.id, r.payload])).toEqual([
      [a, "A"],
      [b, "B"],
    ]);
    expect(outbox.ack([a, a, uuidv7()])).toBe(1);
    expect(outbox.stats().pending).toBe(1);
    outbox.close();
  });

  test("taken rows wait `resendAfterMs` before they are due again, oldest send first; acked ones never", async () => {
    let now = 1_000;
    const outbox = openOutbox({ path: await tempPath(), maxRows: 10, now: () => now });
    const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()];
    outbox.enqueueMany([a, b].map((id) => ({ id, channel: "status", reportClass: "status", payload: id })));
    expect(outbox.take(1, 5_000).map((r) => [r.id, r.attempts])).toEqual([[a, 1]]);
    expect(outbox.due(10, 5_000).map((r) => r.id)).toEqual([b]); // `due` only looks
    expect(outbox.take(10, 5_000).map((r) => r.id)).toEqual([b]);
    expect(outbox.take(10, 5_000)).toEqual([]);
    now += 1_000;
    outbox.enqueue({ id: c, channel: "status", reportClass: "status", payload: c });
    expect(outbox.take(10, 5_000).map((r) => r.id)).toEqual([c]);
    now += 4_000;
    // a and b were sent 5 s ago: due again, oldest send first, before anything never sent.
    expect(outbox.take(10, 5_000).map((r) => [r.id, r.attempts])).toEqual([
      [a, 2],
      [b, 2],
    ]);
    outbox.ack([a]);
    now += 5_000;
    expect(outbox.take(10, 5_000).map((r) => [r.id, r.attempts])).toEqual([
      [c, 2],
      [b, 3],
    ]);
    outbox.close();
  });

  test("when full: events are shed oldest first and counted, usage is never shed, status coalesces", async () => {
    const outbox = openOutbox({ path: await tempPath(), maxRows: 5 });
    const events = Array.from({ length: 3 }, () => uuidv7());
    for (const id of events) outbox.enqueue({ id, channel: "events", reportClass: "event", payload: "e" });
    const usage = Array.from({ length: 4 }, () => uuidv7());
    for (const id of usage) outbox.enqueue({ id, channel: "usage", reportClass: "usage", payload: "u" });
    // 7 offered into 5 slots: the two oldest events made room.
    expect(outbox.stats()).toMatchObject({ pending: 5, shedEvents: 2, byClass: { usage: 4, event: 1 } });
    outbox.enqueue({ id: uuidv7(), channel: "usage", reportClass: "usage", payload: "u" });
    outbox.enqueue({ id: uuidv7(), channel: "usage", reportClass: "usage", payload: "u" });
    // No events left to shed: usage goes over the bound rather than be lost, and says so.
    expect(outbox.stats()).toMatchObject({
      pending: 6,
      shedEvents: 3,
      overflowUsage: 1,
      byClass: { usage: 6, event: 0 },
    });
    expect(outbox.enqueue({ id: uuidv7(), channel: "events", reportClass: "event", payload: "late" })).toBe(
      false,
    );
    expect(outbox.stats().shedEvents).toBe(4);

    const key = "app/acme/web/site";
    outbox.ack(outbox.due(100, 0).map((r) => r.id));
    for (const generation of [1, 2, 3]) {
      outbox.enqueue({
        id: uuidv7(),
        channel: "status",
        reportClass: "status",
        coalesceKey: key,
        payload: `g${generation}`,
      });
    }
    expect(outbox.due(10, 0).map((r) => r.payload)).toEqual(["g3"]);
    expect(outbox.stats().coalescedStatus).toBe(2);
    outbox.close();
  });

  test("enqueueMany stores a batch in order in one transaction, with the bound, shedding and coalescing", async () => {
    const path = await tempPath();
    let outbox = openOutbox({ path, maxRows: 4 });
    const ids = Array.from({ length: 6 }, () => uuidv7());
    const stored = outbox.enqueueMany([
      { id: ids[0]!, channel: "events", reportClass: "event", payload: "e0" },
      { id: ids[1]!, channel: "status", reportClass: "status", coalesceKey: "app/a", payload: "s1" },
      { id: ids[2]!, channel: "status", reportClass: "status", coalesceKey: "app/a", payload: "s2" },
      { id: ids[3]!, channel: "usage", reportClass: "usage", payload: "u3" },
      { id: ids[4]!, channel: "usage", reportClass: "usage", payload: "u4" },
      { id: ids[5]!, channel: "usage", reportClass: "usage", payload: "u5" },
    ]);
    // s2 replaced s1; u5 needed room, so the event went.
    expect(stored).toEqual([true, true, true, true, true, true]);
    expect(outbox.due(10, 0).map((r) => r.payload)).toEqual(["s2", "u3", "u4", "u5"]);
    const stats = outbox.stats();
    expect(stats).toEqual({
      pending: 4,
      byClass: { usage: 3, status: 1, event: 0, other: 0 },
      shedEvents: 1,
      coalescedStatus: 1,
      overflowUsage: 0,
    });
    expect(
      outbox.enqueueMany([{ id: uuidv7(), channel: "events", reportClass: "event", payload: "e" }]),
    ).toEqual([false]);
    expect(outbox.enqueueMany([])).toEqual([]);
    outbox.close();
    // The counts kept in memory are what the file holds.
    outbox = openOutbox({ path, maxRows: 4 });
    expect(outbox.stats()).toEqual({ ...stats, shedEvents: 2 });
    outbox.close();
  });

  test("a batch that fails stores nothing and leaves the counts as committed", async () => {
    const outbox = openOutbox({ path: await tempPath(), maxRows: 100 });
    outbox.enqueue({ id: uuidv7(), channel: "usage", reportClass: "usage", payload: "kept" });
    expect(() =>
      outbox.enqueueMany([
        { id: uuidv7(), channel: "usage", reportClass: "usage", payload: "rolled back" },
        // NOT NULL payload: the statement fails half-way through the batch.
        { id: uuidv7(), channel: "usage", reportClass: "usage", payload: null as unknown as string },
      ]),
    ).toThrow();
    expect(outbox.stats()).toMatchObject({ pending: 1, byClass: { usage: 1 } });
    expect(outbox.due(10, 0).map((r) => r.payload)).toEqual(["kept"]);
    outbox.close();
  });

  test("acks and sends keep the counts exact; enqueues after them are still durable across reopen", async () => {
    const path = await tempPath();
    let outbox = openOutbox({ path, maxRows: 100 });
    const ids = Array.from({ length: 10 }, () => uuidv7());
    outbox.enqueueMany(ids.map((id) => ({ id, channel: "usage", reportClass: "usage", payload: id })));
    expect(outbox.take(5, 60_000).map((r) => r.id)).toEqual(ids.slice(0, 5));
    expect(outbox.ack([...ids.slice(0, 3), ids[0]!, uuidv7()])).toBe(3);
    expect(outbox.take(100, 60_000).map((r) => r.id)).toEqual(ids.slice(5));
    const late = uuidv7();
    outbox.enqueue({ id: late, channel: "events", reportClass: "event", payload: late });
    expect(outbox.stats()).toMatchObject({ pending: 8, byClass: { usage: 7, event: 1 } });
    outbox.close();
    outbox = openOutbox({ path, maxRows: 100 });
    expect(outbox.stats()).toMatchObject({ pending: 8, byClass: { usage: 7, event: 1 } });
    // After a restart every pending row is due at once, sent before or not (that connection is gone).
    expect(outbox.take(100, 60_000).map((r) => r.id)).toEqual([...ids.slice(3), late]);
    outbox.close();
  });

  test("acked rows leave the counts at once and the file in batches; a repeated ack is not counted twice", async () => {
    const path = await tempPath();
    const inFile = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n;
      } finally {
        db.close();
      }
    };
    let outbox = openOutbox({ path, maxRows: 1_000 });
    const row = (id: string) => ({
      id,
      channel: "usage" as const,
      reportClass: "usage" as const,
      payload: id,
    });
    const ids = Array.from({ length: 300 }, () => uuidv7());
    outbox.enqueueMany(ids.map(row));
    expect(outbox.take(300, 60_000)).toHaveLength(300);
    expect(outbox.ack(ids.slice(0, 10))).toBe(10);
    expect(outbox.stats().pending).toBe(290);
    expect(inFile()).toBe(300); // deferred: a crash now would only resend them
    expect(outbox.ack([ids[0]!, ids[1]!])).toBe(0);
    expect(outbox.stats().pending).toBe(290);
    expect(inFile()).toBe(290);
    expect(outbox.ack(ids.slice(10))).toBe(290); // ≥ 256 waiting: deleted at once
    expect(inFile()).toBe(0);
    // The next enqueue's transaction takes the waiting deletes along.
    const more = Array.from({ length: 5 }, () => uuidv7());
    outbox.enqueueMany(more.map(row));
    expect(outbox.take(10, 60_000).map((r) => r.id)).toEqual(more);
    outbox.ack(more.slice(0, 2));
    expect(inFile()).toBe(5);
    const late = uuidv7();
    outbox.enqueue(row(late));
    expect(inFile()).toBe(4);
    outbox.ack([more[2]!]);
    outbox.compact();
    expect(inFile()).toBe(3);
    outbox.ack([more[3]!]);
    outbox.close();
    expect(inFile()).toBe(2);
    outbox = openOutbox({ path, maxRows: 1_000 });
    expect(outbox.stats()).toMatchObject({ pending: 2, byClass: { usage: 2 } });
    expect(outbox.take(10, 60_000).map((r) => r.id)).toEqual([more[4]!, late]);
    outbox.close();
  });

  test("a sent status replaced by a newer one, then acked, leaves the counts exact", async () => {
    const outbox = openOutbox({ path: await tempPath(), maxRows: 10 });
    const [a, b] = [uuidv7(), uuidv7()];
    const status = (id: string) => ({
      id,
      channel: "status" as const,
      reportClass: "status" as const,
      coalesceKey: "app/acme/web/site",
      payload: id,
    });
    outbox.enqueue(status(a));
    expect(outbox.take(10, 60_000).map((r) => r.id)).toEqual([a]);
    outbox.enqueue(status(b));
    expect(outbox.ack([a])).toBe(0);
    expect(outbox.stats()).toMatchObject({ pending: 1, coalescedStatus: 1, byClass: { status: 1 } });
    expect(outbox.take(10, 0).map((r) => r.id)).toEqual([b]);
    expect(outbox.ack([b])).toBe(1);
    expect(outbox.stats().pending).toBe(0);
    outbox.close();
  });

  test("take hands out rows in order in small pieces; rows replaced or added meanwhile are seen", async () => {
    const outbox = openOutbox({ path: await tempPath(), maxRows: 100 });
    const status = (key: string, payload: string) => ({
      id: uuidv7(),
      channel: "status" as const,
      reportClass: "status" as const,
      coalesceKey: key,
      payload,
    });
    outbox.enqueueMany([status("a", "a1"), status("b", "b1"), status("c", "c1")]);
    expect(outbox.take(1, 60_000).map((r) => r.payload)).toEqual(["a1"]);
    outbox.enqueue(status("b", "b2")); // replaces b1, which was not sent yet
    outbox.enqueue(status("d", "d1"));
    expect(outbox.take(1, 60_000).map((r) => r.payload)).toEqual(["c1"]);
    outbox.enqueue(status("e", "e1"));
    expect(outbox.take(10, 60_000).map((r) => r.payload)).toEqual(["b2", "d1", "e1"]);
    expect(outbox.take(10, 60_000)).toEqual([]);
    outbox.close();
  });

  test("an outbox file from before keeps working and loses the index of every row by class", async () => {
    const path = await tempPath();
    openOutbox({ path, maxRows: 10 }).close();
    const old = new Database(path);
    old.run("CREATE INDEX outbox_class ON outbox (report_class, seq)");
    old.close();
    const outbox = openOutbox({ path, maxRows: 2 });
    const ids = [uuidv7(), uuidv7(), uuidv7()];
    outbox.enqueue({ id: ids[0]!, channel: "events", reportClass: "event", payload: "e" });
    outbox.enqueue({ id: ids[1]!, channel: "usage", reportClass: "usage", payload: "u" });
    outbox.enqueue({ id: ids[2]!, channel: "usage", reportClass: "usage", payload: "u" });
    expect(outbox.stats()).toMatchObject({ pending: 2, shedEvents: 1 });
    outbox.close();
    const db = new Database(path, { readonly: true });
    const indexes = db
      .query<{ name: string }, []>(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox'",
      )
      .all()
      .map((r) => r.name);
    db.close();
    expect(indexes).not.toContain("outbox_class");
    expect(indexes).toContain("outbox_events");
  });

  test("SIGKILL while writing, 20 times: the outbox opens and no committed report is lost", async () => {
    const path = await tempPath();
    const committed = new Set<string>();
    for (let round = 0; round < 20; round++) {
      const child = Bun.spawn(["bun", "run", join(import.meta.dir, "outbox-writer.ts"), path], {
        stdout: "pipe",
      });
      let buffered = "";
      const decoder = new TextDecoder();
      const target = 20 + ((round * 37) % 200);
      const reader = child.stdout.getReader();
      while (buffered.split("\n").length <= target) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffered += decoder.decode(chunk.value);
      }
      child.kill("SIGKILL");
      await child.exited;
      // Whatever the child printed had returned from a committed transaction.
      for (const line of buffered.split("\n").slice(0, -1)) committed.add(line);
      const outbox = openOutbox({ path, maxRows: 1_000_000 });
      const stored = new Set(outbox.due(1_000_000, 0).map((r) => r.id));
      const lost = [...committed].filter((id) => !stored.has(id));
      expect(lost).toEqual([]);
      outbox.close();
    }
    expect(committed.size).toBeGreaterThan(400);
  }, 120_000);
});
