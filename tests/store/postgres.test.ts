/**
 * The Store contract against Postgres. Prefers the real server (KUBENOVA_TEST_POSTGRES_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres) in a database created for this run and dropped after it; falls back
 * to an embedded PGlite reached over the wire protocol; skips loudly — never silently — when neither works.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  executePostgresAdmin,
  openPostgresStore,
  reconnectDelaySeconds,
} from "../../manager/store/postgres.ts";
import type { Store } from "../../manager/store/store.ts";
import { describeStoreContract, type MakeStore } from "./contract.ts";

const REAL_URL = process.env.KUBENOVA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const RUN_ID = `kn_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;

/** The same server URL pointed at another database, with extra startup parameters. */
function withDatabase(url: string, database: string, params: Record<string, string> = {}): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** An embedded Postgres (PGlite, WASM) behind a socket server; one connection, as PGlite has one session. */
async function startPglite(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

type Backend =
  | { kind: "server"; dbUrl: string }
  | { kind: "pglite"; url: string; stop: () => Promise<void>; why: string }
  | { kind: "none"; why: string };

async function chooseBackend(): Promise<Backend> {
  let serverProblem: string;
  try {
    await executePostgresAdmin({
      url: REAL_URL,
      statements: [`CREATE DATABASE ${RUN_ID}`],
      connectTimeoutSeconds: 3,
    });
    return { kind: "server", dbUrl: withDatabase(REAL_URL, RUN_ID) };
  } catch (error) {
    serverProblem = `no Postgres server at ${REAL_URL.replace(/:[^:@/]*@/, ":***@")} (${String(error)})`;
  }
  try {
    const pglite = await startPglite();
    console.warn(`POSTGRES CONTRACT ON PGLITE: ${serverProblem}`);
    return { kind: "pglite", ...pglite, why: serverProblem };
  } catch (error) {
    const why = `${serverProblem}; PGlite fallback failed too (${String(error)})`;
    console.warn(`POSTGRES SUITE SKIPPED: ${why}`);
    return { kind: "none", why };
  }
}

const backend = await chooseBackend();
let schemaCounter = 0;

afterAll(async () => {
  if (backend.kind === "server") {
    await executePostgresAdmin({
      url: REAL_URL,
      statements: [`DROP DATABASE IF EXISTS ${RUN_ID} WITH (FORCE)`],
    });
  } else if (backend.kind === "pglite") {
    await backend.stop();
  }
});

/** A store in a fresh schema of this run's database (isolation without a CREATE DATABASE per test). */
async function openInFreshSchema(
  schema = `s${++schemaCounter}`,
  max = 4,
): Promise<{ url: string; store: Store }> {
  if (backend.kind !== "server") throw new Error("needs the real server");
  await executePostgresAdmin({ url: backend.dbUrl, statements: [`CREATE SCHEMA ${schema}`] });
  const url = withDatabase(backend.dbUrl, RUN_ID, { search_path: schema });
  return { url, store: await openPostgresStore({ url, max }) };
}

const makeStore: MakeStore | null =
  backend.kind === "server"
    ? async () => {
        const { store } = await openInFreshSchema();
        await store.migrate();
        return { store, cleanup: () => store.close() };
      }
    : backend.kind === "pglite"
      ? async () => {
          // PGlite is one session: one pooled connection at a time, and a clean schema between tests.
          const store = await openPostgresStore({ url: backend.url, max: 1 });
          await store.migrate();
          return {
            store,
            cleanup: async () => {
              await store.close();
              await executePostgresAdmin({
                url: backend.url,
                statements: ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"],
              });
            },
          };
        }
      : null;

if (makeStore) {
  describeStoreContract(backend.kind === "server" ? "postgres" : "postgres (PGlite fallback)", makeStore);
} else {
  test.skip(`POSTGRES SUITE SKIPPED: ${backend.kind === "none" ? backend.why : ""}`, () => {});
}

describe("postgres store", () => {
  if (backend.kind === "server") {
    test("two pools migrate one database at once and never duplicate a change-log revision", async () => {
      const { url, store: a } = await openInFreshSchema("concurrent", 4);
      const b = await openPostgresStore({ url, max: 4 });
      try {
        const [sa, sb] = await Promise.all([a.migrate(), b.migrate()]);
        expect(sa).toEqual(sb);
        expect(sa.current).toBe(sa.latest);
        const change = { kind: "tenant", key: "acme", op: "upsert" as const, body: { n: 1 } };
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).changeLog.append("c1", [change, change])),
        );
        const revisions = results
          .flat()
          .map((r) => r.revision)
          .sort((x, y) => x - y);
        expect(revisions).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
        expect(await b.changeLog.latestRevision("c1")).toBe(60);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    test("queries sent as the server terminates its backends, then refused: every one answers; back once it is", async () => {
      const name = `${RUN_ID}_outage`;
      await executePostgresAdmin({ url: REAL_URL, statements: [`CREATE DATABASE ${name}`] });
      const admin = (statement: string) => executePostgresAdmin({ url: REAL_URL, statements: [statement] });
      const store = await openPostgresStore({ url: withDatabase(REAL_URL, name), max: 4 });
      /** A ping's answer, or "hung" after 3 s (the pool's connect timeout is 10 s). */
      const ping = () =>
        Promise.race([
          store.ping().then(
            () => "ok",
            (error: { code?: string }) => error.code ?? "error",
          ),
          Bun.sleep(3_000).then(() => "hung"),
        ]);
      try {
        // Each round: the server restarts under a running pool, as in the database-outage drill. A query written
        // as the backend is terminated fails; before the patch (patches/postgres@3.4.9.patch) the connection it
        // used then never completed a startup again, and the next query given to it hung.
        for (let round = 0; round < 10; round++) {
          expect(await ping()).toBe("ok");
          await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
          const terminate = admin(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`,
          );
          const answers: string[] = [];
          for (let i = 0; i < 8; i++) {
            answers.push(await ping());
            if (i === 0) await terminate;
          }
          expect(answers.slice(1)).toEqual(Array(7).fill("KN-503"));
          await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
          const back = performance.now();
          while ((await ping()) !== "ok") {
            if (performance.now() - back > 3_000) throw new Error(`round ${round}: not back within 3 s`);
            await Bun.sleep(20);
          }
        }
      } finally {
        await store.close();
        await admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => undefined);
        await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }
    }, 60_000);
  } else {
    test.skip(`two-pool concurrency needs a real Postgres server: ${backend.why}`, () => {});
    test.skip(`queries through a server restart need a real Postgres server: ${backend.why}`, () => {});
  }

  test("the pool's reconnect delay stays within a second however many connections failed", () => {
    for (let retries = 0; retries <= 100; retries++) {
      const delay = reconnectDelaySeconds(retries);
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(1);
    }
    expect(reconnectDelaySeconds(0)).toBeLessThanOrEqual(0.05);
  });

  test("an unreachable server: open succeeds, ping is KN-503 retryable", async () => {
    const store = await openPostgresStore({
      url: "postgres://postgres@127.0.0.1:1/none",
      connectTimeoutSeconds: 2,
    });
    try {
      await expect(store.ping()).rejects.toMatchObject({ code: "KN-503", retryable: true });
    } finally {
      await store.close();
    }
  });

  // Proves the fallback itself on every run, even where the real server exists.
  test("the PGlite fallback works over the wire protocol", async () => {
    const pglite = await startPglite();
    const store = await openPostgresStore({ url: pglite.url, max: 1 });
    try {
      expect((await store.migrate()).current).toBeGreaterThan(0);
      await store.settings.put("k", "v");
      expect(await store.settings.get("k")).toBe("v");
      const rows = await Promise.all(
        [1, 2, 3].map(() =>
          store.changeLog.append("c1", [{ kind: "t", key: "k", op: "delete", body: null }]),
        ),
      );
      expect(
        rows
          .flat()
          .map((r) => r.revision)
          .sort(),
      ).toEqual([1, 2, 3]);
    } finally {
      await store.close();
      await pglite.stop();
    }
  }, 60_000);
});
