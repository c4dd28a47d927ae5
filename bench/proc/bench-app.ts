/**
 * @module bench/proc/bench-app — the Manager's Hono app (auth, routes, store) over a SQLite file, wired as
 * manager/main.ts wires it but without sockets, plus an admin caller; shared by the API benchmarks' children.
 */
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier } from "../../manager/auth/verifier.ts";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { createApp } from "../../manager/http/app.ts";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import { openSqliteStore } from "../../manager/store/sqlite.ts";
import type { Logger } from "../../shared/logger.ts";

const SECRET = "kubenova-bench-secret-that-is-long-enough-0123456789";

export async function openBenchApp(dbPath: string, logger: Logger) {
  const store = await openSqliteStore({ path: dbPath, logger });
  await store.migrate();
  const common = { issuer: "kubenova", audience: "kubenova-api" };
  const signer = createTokenSigner({ ...common, algorithm: "HS256", secret: SECRET });
  const verifier = createTokenVerifier({ ...common, algorithm: "HS256", secret: SECRET });
  const app = createApp({
    store,
    secrets: createEnvelope(
      createKeyring({ keys: [{ id: "k", key: new Uint8Array(32).fill(7) }], activeKeyId: "k" }),
    ),
    clock: () => new Date(),
    logger,
    verifier,
    signer,
    enrolment: {
      ca: await createCertificateAuthority({}),
      settings: {
        managerUrl: "https://manager.bench",
        brokerUrl: "mqtts://broker.bench:8883",
        bootstrapTokenTtlSeconds: 3600,
        clientCertLifetimeSeconds: 86400,
        operatorImage: "kubenova/kubenova:bench",
      },
    },
    options: { bodyLimitBytes: 64 * 1024, insecureDevAuth: false, version: "bench" },
  });
  const admin = (await signer.sign({ subject: "bench", role: "admin", ttlSeconds: 3600 })).token;
  /** An admin API call that must succeed; returns the JSON body. */
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return { app, store, signer, call };
}
