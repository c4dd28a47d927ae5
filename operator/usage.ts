/**
 * @module operator/usage — the usage collector (DESIGN.md §6): per tenant and per window, CPU and memory requests,
 * PVC capacity, LoadBalancer Services, pods, namespaces, KubeVela Applications and quota violations, sampled at
 * the end of each window and reported once per (tenant, window) through the durable outbox.
 */
import type { Logger } from "../shared/logger.ts";
import type { UsageBody } from "../shared/messages.ts";
import { addUsage, zeroUsage } from "../shared/usage.ts";
import type { KubeClient, KubeObject } from "./kube/kube.ts";

export const TENANT_LABEL = "kubenova.io/tenant";
export const PROJECT_LABEL = "kubenova.io/project";

export type UsageMetrics = UsageBody["metrics"];

// ── Kubernetes quantities ─────────────────────────────────────────────────────────────────────────────────────

/** An exact rational `numerator / denominator` (denominator > 0), so `0.1 + 0.2` stays exact. */
interface Exact {
  numerator: bigint;
  denominator: bigint;
}

const BINARY: Record<string, bigint> = {
  Ki: 2n ** 10n,
  Mi: 2n ** 20n,
  Gi: 2n ** 30n,
  Ti: 2n ** 40n,
  Pi: 2n ** 50n,
  Ei: 2n ** 60n,
};
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
// "1E" is one exa; "1E3" is an exponent: the suffix alternative fails at `$` and the exponent one is tried.
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/;

function parseExact(text: string): Exact {
  const match = QUANTITY.exec(text.trim());
  if (!match) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(text)}`);
  const [, sign = "", digits = "", suffix, exponent] = match;
  const [whole = "", fraction = ""] = digits.split(".");
  let numerator = BigInt(`${whole}${fraction}` || "0");
  let denominator = 10n ** BigInt(fraction.length);
  if (sign === "-") numerator = -numerator;
  if (suffix && suffix in BINARY) {
    numerator *= BINARY[suffix] as bigint;
  } else {
    const power = exponent !== undefined ? Number(exponent) : (DECIMAL[suffix ?? ""] ?? 0);
    if (power >= 0) numerator *= 10n ** BigInt(power);
    else denominator *= 10n ** BigInt(-power);
  }
  return { numerator, denominator };
}

/** Rounds up, as Kubernetes' `Quantity.Value()`/`MilliValue()` do. */
function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  const q = numerator / denominator;
  return numerator % denominator > 0n ? q + 1n : q;
}

/** A quantity in base units (bytes, cores, counts), rounded up: `2Gi` → 2147483648, `100M` → 1e8. */
export function parseQuantity(text: string): number {
  const { numerator, denominator } = parseExact(text);
  return Number(ceilDiv(numerator, denominator));
}

/** A quantity in thousandths, rounded up: CPU `500m` → 500, `1.5` → 1500, `1e3` → 1000000. */
export function parseMilliQuantity(text: string): number {
  const { numerator, denominator } = parseExact(text);
  return Number(ceilDiv(numerator * 1000n, denominator));
}

/** Exact comparison: -1, 0 or 1. */
export function compareQuantities(a: string, b: string): number {
  const x = parseExact(a);
  const y = parseExact(b);
  const left = x.numerator * y.denominator;
  const right = y.numerator * x.denominator;
  return left < right ? -1 : left > right ? 1 : 0;
}

// ── windows ───────────────────────────────────────────────────────────────────────────────────────────────────

export interface UsageWindow {
  start: Date;
  end: Date;
}

/** The aligned window `[start, end)` that contains `at` (epoch-aligned: whole UTC hours for 3 600 000 ms). */
export function windowContaining(at: Date, intervalMs: number): UsageWindow {
  const start = Math.floor(at.getTime() / intervalMs) * intervalMs;
  return { start: new Date(start), end: new Date(start + intervalMs) };
}

// ── collection ────────────────────────────────────────────────────────────────────────────────────────────────

export interface UsageCollectorOptions {
  kube: KubeClient;
  logger: Logger;
  /** One window's reports, all tenants at once (the link stores them in one outbox transaction). */
  report: (bodies: UsageBody[]) => void;
  /** Window length; windows are aligned to multiples of it since the epoch. Default one hour. */
  intervalMs?: number;
  now?: () => Date;
}

export interface UsageCollector {
  /** Samples the cluster now and reports one body per tenant for `window`; returns what it reported. */
  collect(window: UsageWindow): Promise<UsageBody[]>;
  /** Collects for the last window that closed before now (the `collect-usage` command). */
  collectNow(): Promise<{ reports: number; windowStart: string; windowEnd: string }>;
  /** Reports each window as it closes. */
  start(): void;
  stop(): void;
}

export function createUsageCollector(options: UsageCollectorOptions): UsageCollector {
  const intervalMs = options.intervalMs ?? 3_600_000;
  const now = options.now ?? (() => new Date());
  const log = options.logger.child({ component: "usage" });
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;

  /** Invalid quantities cannot pass the API server; if one shows up it counts as 0 and is logged, not thrown. */
  const quantity = (text: unknown, parse: (t: string) => number, where: string): number => {
    if (typeof text !== "string" && typeof text !== "number") return 0;
    try {
      return parse(String(text));
    } catch (error) {
      log.warn("unparseable quantity", { where, value: String(text), err: error as Error });
      return 0;
    }
  };

  function metricsOf(namespace: string, objects: Record<string, KubeObject[]>): UsageMetrics {
    const m = zeroUsage();
    m.namespaces = 1;
    for (const pod of objects.pods ?? []) {
      const phase = (pod.status as { phase?: string } | undefined)?.phase;
      if (phase === "Succeeded" || phase === "Failed") continue; // terminated pods hold no requests
      m.pods++;
      const containers = ((pod.spec as { containers?: unknown[] } | undefined)?.containers ?? []) as Array<{
        resources?: { requests?: Record<string, unknown> };
      }>;
      for (const container of containers) {
        const requests = container.resources?.requests ?? {};
        m.cpuRequestMillicores += quantity(
          requests.cpu,
          parseMilliQuantity,
          `${namespace}/${pod.metadata.name}`,
        );
        m.memoryRequestBytes += quantity(requests.memory, parseQuantity, `${namespace}/${pod.metadata.name}`);
      }
    }
    for (const pvc of objects.pvcs ?? []) {
      const capacity = (pvc.status as { capacity?: { storage?: unknown } } | undefined)?.capacity?.storage;
      const requested = (pvc.spec as { resources?: { requests?: { storage?: unknown } } } | undefined)
        ?.resources?.requests?.storage;
      // A bound claim's capacity is what the volume holds; an unbound one counts what it asks for.
      m.storageBytes += quantity(capacity ?? requested, parseQuantity, `${namespace}/${pvc.metadata.name}`);
    }
    for (const service of objects.services ?? []) {
      if ((service.spec as { type?: string } | undefined)?.type === "LoadBalancer") m.loadBalancers++;
    }
    m.applications = (objects.applications ?? []).length;
    for (const quota of objects.quotas ?? []) {
      const status = (quota.status ?? {}) as { hard?: Record<string, string>; used?: Record<string, string> };
      for (const [resource, hard] of Object.entries(status.hard ?? {})) {
        const used = status.used?.[resource];
        if (used === undefined) continue;
        try {
          const cmp = compareQuantities(used, hard);
          // At a non-zero limit or over it. A zero limit with zero use is a ban being respected (e.g. no
          // LoadBalancers in the plan), not a violation.
          if (cmp > 0 || (cmp === 0 && compareQuantities(hard, "0") > 0)) m.quotaViolations++;
        } catch (error) {
          log.warn("unparseable quota", {
            quota: `${namespace}/${quota.metadata.name}`,
            err: error as Error,
          });
        }
      }
    }
    return m;
  }

  async function collect(window: UsageWindow): Promise<UsageBody[]> {
    const { kube } = options;
    const namespaces = await kube.list("v1", "Namespace", { labelSelector: TENANT_LABEL });
    // One cluster-wide list per kind instead of one per namespace: a handful of requests per sample.
    const [pods, pvcs, services, quotas, applications] = await Promise.all([
      kube.list("v1", "Pod"),
      kube.list("v1", "PersistentVolumeClaim"),
      kube.list("v1", "Service"),
      kube.list("v1", "ResourceQuota"),
      kube.list("core.oam.dev/v1beta1", "Application"), // [] where KubeVela is not installed
    ]);
    const byNamespace = new Map<string, Record<string, KubeObject[]>>();
    const bucket = (kind: string, list: KubeObject[]) => {
      for (const object of list) {
        const ns = object.metadata.namespace;
        if (!ns) continue;
        let entry = byNamespace.get(ns);
        if (!entry) {
          entry = {};
          byNamespace.set(ns, entry);
        }
        entry[kind] ??= [];
        entry[kind].push(object);
      }
    };
    bucket("pods", pods);
    bucket("pvcs", pvcs);
    bucket("services", services);
    bucket("quotas", quotas);
    bucket("applications", applications);

    const tenants = new Map<string, { metrics: UsageMetrics; byProject: Record<string, UsageMetrics> }>();
    for (const namespace of namespaces) {
      const tenant = namespace.metadata.labels?.[TENANT_LABEL];
      if (!tenant) continue;
      const name = namespace.metadata.name;
      const metrics = metricsOf(name, byNamespace.get(name) ?? {});
      let entry = tenants.get(tenant);
      if (!entry) {
        entry = { metrics: zeroUsage(), byProject: {} };
        tenants.set(tenant, entry);
      }
      addUsage(entry.metrics, metrics);
      const project = namespace.metadata.labels?.[PROJECT_LABEL];
      if (project) {
        entry.byProject[project] ??= zeroUsage();
        addUsage(entry.byProject[project], metrics);
      }
    }
    const bodies: UsageBody[] = [...tenants].map(([tenant, entry]) => ({
      tenant,
      windowStart: window.start.toISOString(),
      windowEnd: window.end.toISOString(),
      metrics: entry.metrics,
      byProject: entry.byProject,
    }));
    if (bodies.length > 0) options.report(bodies);
    log.info("usage reported", {
      window_start: window.start.toISOString(),
      tenants: bodies.length,
    });
    return bodies;
  }

  /** Fires at `boundary` and reports `[boundary - interval, boundary)`, however early or late the timer runs. */
  function scheduleAt(boundary: number): void {
    if (!running) return;
    timer = setTimeout(
      () => {
        timer = null;
        const window = { start: new Date(boundary - intervalMs), end: new Date(boundary) };
        collect(window)
          .catch((error: unknown) =>
            log.error("usage collection failed", {
              window_start: window.start.toISOString(),
              err: error as Error,
            }),
          )
          .finally(() => {
            // After a long stall (suspended VM) the next boundary is the next one ahead; missed windows are
            // not back-filled, as their samples could not be taken anyway.
            scheduleAt(Math.max(boundary + intervalMs, windowContaining(now(), intervalMs).end.getTime()));
          });
      },
      Math.max(0, boundary - now().getTime()),
    );
  }

  return {
    collect,
    async collectNow() {
      const current = windowContaining(now(), intervalMs);
      const window = { start: new Date(current.start.getTime() - intervalMs), end: current.start };
      const bodies = await collect(window);
      return {
        reports: bodies.length,
        windowStart: window.start.toISOString(),
        windowEnd: window.end.toISOString(),
      };
    },
    start() {
      if (running) return;
      running = true;
      scheduleAt(windowContaining(now(), intervalMs).end.getTime());
    },
    stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}
