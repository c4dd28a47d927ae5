/** Prometheus metrics of the operator (DESIGN.md §8), the only operator file importing prom-client. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ReconcileOutcome } from "./reconcilers/runtime.ts";

export interface OperatorMetrics {
  observeReconcile(controller: string, seconds: number, outcome: ReconcileOutcome): void;
  event(kind: string): void;
  adapterError(adapter: string): void;
  setSources(sources: {
    outbox?: () => { pending: number; shedEvents: number };
    connected?: () => boolean;
  }): void;
  render(): Promise<string>;
  contentType: string;
}

export function createOperatorMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "kubenova_operator_" });
  let sources: { outbox?: () => { pending: number; shedEvents: number }; connected?: () => boolean } = {};
  const reconcile = new Histogram({
    name: "kubenova_reconcile_seconds",
    help: "Reconcile duration by controller and outcome",
    labelNames: ["controller", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const events = new Counter({
    name: "kubenova_events_total",
    help: "Operator events by kind (reports queued, drift repaired, …)",
    labelNames: ["kind"],
    registers: [registry],
  });
  const adapterErrors = new Counter({
    name: "kubenova_adapter_errors_total",
    help: "Failures talking to a dependency, by adapter",
    labelNames: ["adapter"],
    registers: [registry],
  });
  new Gauge({
    name: "kubenova_outbox_pending",
    help: "Reports waiting in the outbox for the Manager's ack",
    registers: [registry],
    collect() {
      const outbox = sources.outbox?.();
      if (outbox) this.set(outbox.pending);
    },
  });
  new Gauge({
    name: "kubenova_outbox_shed_events",
    help: "Events shed because the outbox was full (since the outbox was created)",
    registers: [registry],
    collect() {
      const outbox = sources.outbox?.();
      if (outbox) this.set(outbox.shedEvents);
    },
  });
  new Gauge({
    name: "kubenova_manager_connected",
    help: "1 while the link to the Manager is up",
    registers: [registry],
    collect() {
      if (sources.connected) this.set(sources.connected() ? 1 : 0);
    },
  });
  return {
    observeReconcile: (controller, seconds, outcome) => reconcile.observe({ controller, outcome }, seconds),
    event: (kind) => events.inc({ kind }),
    adapterError: (adapter) => adapterErrors.inc({ adapter }),
    setSources(next) {
      sources = next;
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
