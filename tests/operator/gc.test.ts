/** operator/gc.ts: one collection after a burst of work has gone quiet; small bursts are left to the runtime. */
import { expect, test } from "bun:test";
import { createBurstCollector } from "../../operator/gc.ts";

test("collects once after a burst goes quiet, not during it, and not for a trickle", async () => {
  let collections = 0;
  const collector = createBurstCollector({ minWork: 5, quietMs: 30, collect: () => collections++ });
  for (let i = 0; i < 20; i++) {
    collector.worked();
    await Bun.sleep(2);
  }
  expect(collections).toBe(0); // still busy
  await Bun.sleep(80);
  expect(collections).toBe(1);
  collector.worked(); // one reconcile after the burst: below minWork
  await Bun.sleep(80);
  expect(collections).toBe(1);
  for (let i = 0; i < 4; i++) collector.worked(); // with it, five since the last collection
  await Bun.sleep(80);
  expect(collections).toBe(2);
  collector.worked();
  collector.stop();
  await Bun.sleep(80);
  expect(collections).toBe(2);
});
