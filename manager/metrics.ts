/**
 * @module manager/metrics — Prometheus metrics of the Manager (DESIGN.md §8), the only file importing prom-client
 * on this side. Request metrics are recorded as requests finish; everything else (presence, ingest, broker,
 * dispatcher) is read from the components' own counters at scrape time, so hot paths pay nothing.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** What the collectors read at scrape time; every source is optional so tests can build a partial Manager. */
export interface MetricSources {
  presence?: () => Record<string, number>;
  ingest?: () => {
    received: number;
    committed: number;
    duplicates: number;
    quarantined: number;
    adjustments: number;
    acked: number;
    commitFailures: number;
    rejected: Record<string, number>;
  };
  dispatcher?: () => { messages: number; changes: number; snapshots: number; resends: number };
  broker?: () => {
    connections: {
      accepted: number;
      refused: Record<string, number>;
      tlsHandshakeFailures: number;
      active: number;
    };
    denials: Record<string, number>;
    takeovers: number;
  };
}

export interface ManagerMetrics {
  registry: Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** A failure talking to a dependency (store, broker, cluster API). */
  adapterError(adapter: string): void;
  setSources(sources: MetricSources): void;
  render(): Promise<string>;
  contentType: string;
}

/** Monotonic counters fed from components' running totals: add only the difference since the last scrape. */
function totalsCounter(counter: Counter<string>) {
  const last = new Map<string, number>();
  return (labels: Record<string, string>, total: number) => {
    const key = JSON.stringify(labels);
    const delta = total - (last.get(key) ?? 0);
    if (delta > 0) counter.inc(labels, delta);
    last.set(key, Math.max(total, last.get(key) ?? 0));
  };
}

export function createManagerMetrics(options: { defaultMetrics?: boolean } = {}): ManagerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: "kubenova_manager_" });
  let sources: MetricSources = {};

  const requests = new Counter({
    name: "kubenova_http_requests_total",
    help: "HTTP requests by method, route template and status",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "kubenova_http_request_duration_seconds",
    help: "HTTP request duration by method and route template",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const adapterErrors = new Counter({
    name: "kubenova_adapter_errors_total",
    help: "Failures talking to a dependency, by adapter",
    labelNames: ["adapter"],
    registers: [registry],
  });

  const ingestTotal = new Counter({
    name: "kubenova_ingest_reports_total",
    help: "Operator reports by outcome (committed, duplicate, quarantined, adjustment, rejected_<reason>)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const acks = new Counter({
    name: "kubenova_acks_total",
    help: "Report ids acknowledged to operators",
    registers: [registry],
  });
  const commitFailures = new Counter({
    name: "kubenova_ingest_commit_failures_total",
    help: "Report batches not committed (and so not acknowledged)",
    registers: [registry],
  });
  const dispatched = new Counter({
    name: "kubenova_desired_total",
    help: "Desired-state traffic by kind (messages, changes, snapshots, resends)",
    labelNames: ["kind"],
    registers: [registry],
  });
  const brokerConnections = new Counter({
    name: "kubenova_broker_connections_total",
    help: "Broker connection attempts by outcome",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const brokerDenials = new Counter({
    name: "kubenova_broker_denials_total",
    help: "Broker ACL and limit denials by kind",
    labelNames: ["kind"],
    registers: [registry],
  });
  const feedAdapterErrors = totalsCounter(adapterErrors);
  const feedIngest = totalsCounter(ingestTotal);
  const feedAcks = totalsCounter(acks);
  const feedCommitFailures = totalsCounter(commitFailures);
  const feedDispatched = totalsCounter(dispatched);
  const feedConnections = totalsCounter(brokerConnections);
  const feedDenials = totalsCounter(brokerDenials);

  new Gauge({
    name: "kubenova_clusters",
    help: "Clusters by connection state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      for (const [state, count] of Object.entries(sources.presence?.() ?? {})) this.set({ state }, count);
    },
  });
  new Gauge({
    name: "kubenova_broker_active_connections",
    help: "Operators connected to the embedded broker",
    registers: [registry],
    collect() {
      const broker = sources.broker?.();
      if (broker) this.set(broker.connections.active);
    },
  });

  /** Brings the totals-fed counters up to date; runs before every serialization (counters come first). */
  function refresh(): void {
    const broker = sources.broker?.();
    if (broker) {
      feedConnections({ outcome: "accepted" }, broker.connections.accepted);
      feedConnections({ outcome: "tls_handshake_failed" }, broker.connections.tlsHandshakeFailures);
      for (const [reason, n] of Object.entries(broker.connections.refused))
        feedConnections({ outcome: `refused_${reason}` }, n);
      for (const [kind, n] of Object.entries(broker.denials)) feedDenials({ kind }, n);
      feedDenials({ kind: "takeover" }, broker.takeovers);
    }
    const ingest = sources.ingest?.();
    if (ingest) {
      feedIngest({ outcome: "committed" }, ingest.committed);
      feedIngest({ outcome: "duplicate" }, ingest.duplicates);
      feedIngest({ outcome: "quarantined" }, ingest.quarantined);
      feedIngest({ outcome: "adjustment" }, ingest.adjustments);
      for (const [reason, n] of Object.entries(ingest.rejected))
        feedIngest({ outcome: `rejected_${reason}` }, n);
      feedAcks({}, ingest.acked);
      feedCommitFailures({}, ingest.commitFailures);
      // A batch that could not commit is the store failing under the channel.
      feedAdapterErrors({ adapter: "store" }, ingest.commitFailures);
    }
    const dispatcher = sources.dispatcher?.();
    if (dispatcher) for (const [kind, n] of Object.entries(dispatcher)) feedDispatched({ kind }, n);
  }

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
    },
    adapterError: (adapter) => adapterErrors.inc({ adapter }),
    setSources(next) {
      sources = next;
    },
    render: () => {
      refresh();
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
}
