/**
 * Child process for the crash test: enqueues reports forever, one at a time and in batches (`enqueueMany`),
 * printing each id once its commit returned.
 */
import { uuidv7 } from "../../shared/ids.ts";
import { openOutbox } from "../../operator/link/outbox.ts";

const outbox = openOutbox({ path: process.argv[2]!, maxRows: 1_000_000 });
const row = (id: string) => ({
  id,
  channel: "usage" as const,
  reportClass: "usage" as const,
  payload: JSON.stringify({ id, pad: "x".repeat(200) }),
});
for (;;) {
  if (Math.random() < 0.5) {
    const id = uuidv7();
    outbox.enqueue(row(id));
    process.stdout.write(`${id}\n`);
  } else {
    const ids = Array.from({ length: 1 + Math.floor(Math.random() * 20) }, () => uuidv7());
    outbox.enqueueMany(ids.map(row));
    process.stdout.write(ids.map((id) => `${id}\n`).join(""));
  }
  if (Math.random() < 0.05) await Bun.sleep(0);
}
