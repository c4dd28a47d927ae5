/** Child process for the crash test: enqueues reports forever, printing each id once its commit returned. */
import { uuidv7 } from "../../shared/ids.ts";
import { openOutbox } from "../../operator/link/outbox.ts";

const outbox = openOutbox({ path: process.argv[2]!, maxRows: 1_000_000 });
for (;;) {
  const id = uuidv7();
  outbox.enqueue({
    id,
    channel: "usage",
    reportClass: "usage",
    payload: JSON.stringify({ id, pad: "x".repeat(200) }),
  });
  process.stdout.write(`${id}\n`);
  if (Math.random() < 0.05) await Bun.sleep(0);
}
