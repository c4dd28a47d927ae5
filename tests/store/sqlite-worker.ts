/**
 * A second Manager process for tests/store/sqlite.test.ts: opens the SQLite store at argv[2], migrates, appends
 * argv[3] two-change batches to cluster "c1", and prints the revisions it got as JSON.
 */
import { openSqliteStore } from "../../manager/store/sqlite.ts";

const [path, count] = process.argv.slice(2);
const store = await openSqliteStore({ path: path!, busyTimeoutMs: 10_000 });
await store.migrate();
const revisions: number[] = [];
const change = { kind: "tenant", key: "k", op: "upsert" as const, body: {} };
for (let i = 0; i < Number(count); i++) {
  const rows = await store.changeLog.append("c1", [change, change]);
  revisions.push(...rows.map((r) => r.revision));
}
await store.close();
process.stdout.write(JSON.stringify(revisions));
