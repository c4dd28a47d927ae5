/** Prometheus /metrics: request histograms by route template, and component counters read at scrape time. */
import { expect, test } from "bun:test";
import { createManagerMetrics } from "../../manager/metrics.ts";
import { createTestManager, seedWorld } from "./harness.ts";

test("/metrics exposes request counts per route template and component totals as monotonic counters", async () => {
  const m = await createTestManager();
  const metrics = createManagerMetrics({ defaultMetrics: false });
  m.services.metrics = metrics;
  let committed = 5;
  let commitFailures = 0;
  metrics.setSources({
    presence: () => ({ connected: 2, stale: 1, offline: 0, certificate_expired: 0 }),
    ingest: () => ({
      received: 10,
      committed,
      duplicates: 1,
      quarantined: 0,
      adjustments: 0,
      acked: committed + 1,
      commitFailures,
      rejected: { invalid: 2 },
    }),
  });
  try {
    const { admin } = await seedWorld(m);
    const { createApp } = await import("../../manager/http/app.ts");
    const app = createApp(m.services);
    for (const tenant of ["acme", "globex"]) {
      await app.request(`/api/v1/tenants/${tenant}`, { headers: { authorization: `Bearer ${admin}` } });
    }
    const first = await (await app.request("/metrics")).text();
    expect(first).toContain(
      'kubenova_http_requests_total{method="GET",route="/api/v1/tenants/:tenant",status="200"} 2',
    );
    expect(first).not.toContain("acme"); // tenant names never become label values
    expect(first).toContain('kubenova_clusters{state="connected"} 2');
    expect(first).toContain('kubenova_ingest_reports_total{outcome="committed"} 5');
    expect(first).toContain('kubenova_ingest_reports_total{outcome="rejected_invalid"} 2');
    expect(first).toContain("kubenova_http_request_duration_seconds_bucket");
    committed = 9;
    commitFailures = 2;
    const second = await (await app.request("/metrics")).text();
    expect(second).toContain('kubenova_ingest_reports_total{outcome="committed"} 9');
    expect(second).toContain("kubenova_acks_total 10");
    expect(second).toContain('kubenova_adapter_errors_total{adapter="store"} 2');
  } finally {
    await m.close();
  }
});
