/** The operator's /metrics text: what the docs list, in the Prometheus text format scrapers parse. */
import { expect, test } from "bun:test";
import { createOperatorMetrics } from "../../operator/metrics.ts";

test("reconcile histogram, event and error counters, outbox and link gauges, process gauges", async () => {
  const metrics = createOperatorMetrics();
  metrics.setSources({ outbox: () => ({ pending: 3, shedEvents: 1 }), connected: () => true });
  metrics.observeReconcile("tenant", 0.02, "success");
  metrics.observeReconcile("tenant", 3, "success");
  metrics.observeReconcile("app", 0.001, "error");
  metrics.event("status_report");
  metrics.event("status_report");
  metrics.adapterError("kubernetes");
  const text = await metrics.render();
  expect(metrics.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
  expect(text).toContain("# TYPE kubenova_reconcile_seconds histogram\n");
  // Buckets are cumulative: 0.02 s falls in 0.025 and above, 3 s only in 5 and above.
  expect(text).toContain(
    'kubenova_reconcile_seconds_bucket{controller="tenant",outcome="success",le="0.01"} 0\n',
  );
  expect(text).toContain(
    'kubenova_reconcile_seconds_bucket{controller="tenant",outcome="success",le="0.025"} 1\n',
  );
  expect(text).toContain(
    'kubenova_reconcile_seconds_bucket{controller="tenant",outcome="success",le="5"} 2\n',
  );
  expect(text).toContain(
    'kubenova_reconcile_seconds_bucket{controller="tenant",outcome="success",le="+Inf"} 2\n',
  );
  expect(text).toContain('kubenova_reconcile_seconds_sum{controller="tenant",outcome="success"} 3.02\n');
  expect(text).toContain('kubenova_reconcile_seconds_count{controller="app",outcome="error"} 1\n');
  expect(text).toContain('kubenova_events_total{kind="status_report"} 2\n');
  expect(text).toContain('kubenova_adapter_errors_total{adapter="kubernetes"} 1\n');
  expect(text).toContain("kubenova_outbox_pending 3\n");
  expect(text).toContain("kubenova_outbox_shed_events 1\n");
  expect(text).toContain("kubenova_manager_connected 1\n");
  expect(text).toMatch(/\nkubenova_operator_process_resident_memory_bytes \d+\n/);
  expect(text).toMatch(/\nkubenova_operator_process_cpu_seconds_total [\d.e-]+\n/);
  // Every sample line is `name{labels} value` under a # TYPE of its family.
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) expect(line).toMatch(/^# (HELP|TYPE) [a-z_]+ /);
    else expect(line).toMatch(/^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[\d.e+-]+|\+Inf|NaN)$/);
  }
});

test("label values are escaped", async () => {
  const metrics = createOperatorMetrics();
  metrics.event('a "quoted"\\kind\nwith a newline');
  expect(await metrics.render()).toContain(
    'kubenova_events_total{kind="a \\"quoted\\"\\\\kind\\nwith a newline"} 1\n',
  );
});
