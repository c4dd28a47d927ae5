/**
 * One trace from an API call, through the change log and the operator's apply, back to the status report's
 * commit (DESIGN.md §8), recorded by an in-memory span exporter over the real broker and operator link.
 */
import { expect, test } from "bun:test";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { createTokenSigner } from "../../manager/auth/signer.ts";
import { createTokenVerifier } from "../../manager/auth/verifier.ts";
import { createEnvelope, createKeyring } from "../../manager/crypto/envelope.ts";
import { createApp } from "../../manager/http/app.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { setupTelemetry } from "../../shared/telemetry-sdk.ts";
import { createSyncWorld, waitFor } from "./fixtures.ts";

test("API call → operator apply → status report commit share one trace", async () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = setupTelemetry({ serviceName: "kubenova-test", exporter })!;
  const world = await createSyncWorld();
  try {
    const cluster = await world.addCluster("dc1");
    const operator = await world.operator(cluster.id);
    await waitFor("connected", () => world.channel.presence.stateOf(cluster.id) === "connected");
    const secret = "trace-test-secret-that-is-long-enough-0123456789";
    const common = { issuer: "kubenova", audience: "kubenova-api" };
    const signer = createTokenSigner({ ...common, algorithm: "HS256", secret });
    const app = createApp({
      store: world.channel.store,
      secrets: createEnvelope(
        createKeyring({ keys: [{ id: "k", key: new Uint8Array(32).fill(1) }], activeKeyId: "k" }),
      ),
      clock: () => new Date(),
      logger: createMemoryLogger("warn"),
      verifier: createTokenVerifier({ ...common, algorithm: "HS256", secret }),
      signer,
      options: { bodyLimitBytes: 65536, insecureDevAuth: false, version: "test" },
    });
    const admin = (await signer.sign({ subject: "root", role: "admin", ttlSeconds: 600 })).token;
    const res = await app.request("/api/v1/tenants", {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "acme", clusters: ["dc1"] }),
    });
    expect(res.status).toBe(201);

    await waitFor("the change applied", () => operator.applied.some((c) => c.key === "acme"));
    const change = operator.applied.find((c) => c.key === "acme")!;
    expect(change.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    // What a reconciler does once the object is true: report, continuing the change's trace.
    operator.link.report(
      "status",
      { objectKind: "tenant", key: "acme", observedGeneration: 1, phase: "Deployed" },
      { traceparent: change.traceparent! },
    );
    await waitFor("the status committed", () =>
      exporter.getFinishedSpans().some((s) => s.name === "commit status"),
    );

    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.name === "POST /api/v1/tenants")!;
    const apply = spans.find((s) => s.name === "apply tenant")!;
    const commit = spans.find((s) => s.name === "commit status")!;
    expect(server).toBeDefined();
    const traceId = server.spanContext().traceId;
    expect(apply.spanContext().traceId).toBe(traceId);
    expect(commit.spanContext().traceId).toBe(traceId);
    // The chain: server → apply (in the operator) → commit (back in the Manager).
    expect(apply.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(commit.parentSpanContext?.spanId).toBe(apply.spanContext().spanId);
  } finally {
    await world.close();
    await telemetry.shutdown();
  }
});
