/**
 * Usage and billing: hourly records summed into UTC hour/day/month buckets. Every number is a plain sum of raw
 * records (so totals equal the records exactly); adjustment rows are included and also shown on their own.
 * Times are UTC throughout: daylight-saving changes do not exist here.
 */
import type { UsageMetrics } from "../../shared/api/models.ts";
import { errors } from "../../shared/errors.ts";
import { addUsage, zeroUsage } from "../../shared/usage.ts";
import type { Store, UsageRow } from "../store/store.ts";

export type Granularity = "hour" | "day" | "month";

export const zeroMetrics = zeroUsage;

/** The UTC bucket a window start falls in. */
export function bucketOf(startIso: string, granularity: Granularity): { start: Date; end: Date } {
  const d = new Date(startIso);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  switch (granularity) {
    case "hour": {
      const start = new Date(Date.UTC(y, m, d.getUTCDate(), d.getUTCHours()));
      return { start, end: new Date(start.getTime() + 3_600_000) };
    }
    case "day": {
      const start = new Date(Date.UTC(y, m, d.getUTCDate()));
      return { start, end: new Date(Date.UTC(y, m, d.getUTCDate() + 1)) };
    }
    case "month":
      return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
    default: {
      const unreachable: never = granularity;
      throw new Error(`unknown granularity ${unreachable}`);
    }
  }
}

export interface UsageRange {
  from: string;
  to: string;
}

const MAX_RANGE_MS = 366 * 86_400_000;

/** Defaults (start of this UTC month → now) and limits (≤ 366 days) for a report's range. */
export function usageRange(query: { from?: string; to?: string }, now: Date): UsageRange {
  const to = query.to ? new Date(query.to) : now;
  const from = query.from
    ? new Date(query.from)
    : new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), 1));
  if (from.getTime() >= to.getTime()) {
    throw errors.badRequest("query.from: must be before query.to", [
      { path: "query.from", message: "must be before `to`" },
    ]);
  }
  if (to.getTime() - from.getTime() > MAX_RANGE_MS) {
    throw errors.badRequest("query.to: the range may span at most 366 days", [
      { path: "query.to", message: "at most 366 days after `from`" },
    ]);
  }
  return { from: from.toISOString(), to: to.toISOString() };
}

/** Every record of the filter in the range, in (windowStart, cluster, tenant, id) order. */
export async function loadUsage(
  store: Store,
  filter: { tenant?: string; clusterId?: string },
  range: UsageRange,
): Promise<UsageRow[]> {
  const rows: UsageRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.usage.list(
      { ...filter, from: range.from, to: range.to },
      { limit: 500, ...(cursor ? { cursor } : {}) },
    );
    rows.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return rows;
}

/** Sums records into buckets; `pick` selects the metrics to count (a project's share, or the whole record). */
export function aggregate(
  rows: UsageRow[],
  granularity: Granularity,
  pick: (row: UsageRow) => UsageMetrics | null = (row) => row.metrics,
) {
  const buckets = new Map<
    string,
    { start: string; end: string; records: number; metrics: UsageMetrics; adjustments: UsageMetrics }
  >();
  const totals = zeroMetrics();
  const adjustments = zeroMetrics();
  let records = 0;
  for (const row of rows) {
    const metrics = pick(row);
    if (!metrics) continue;
    const { start, end } = bucketOf(row.windowStart, granularity);
    const key = start.toISOString();
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = {
        start: key,
        end: end.toISOString(),
        records: 0,
        metrics: zeroMetrics(),
        adjustments: zeroMetrics(),
      };
      buckets.set(key, bucket);
    }
    bucket.records++;
    addUsage(bucket.metrics, metrics);
    addUsage(totals, metrics);
    if (row.adjustment) {
      addUsage(bucket.adjustments, metrics);
      addUsage(adjustments, metrics);
    }
    records++;
  }
  return {
    records,
    totals,
    adjustments,
    buckets: [...buckets.values()].sort((a, b) => a.start.localeCompare(b.start)),
  };
}

const CSV_COLUMNS = [
  "tenant",
  "cluster_id",
  "window_start",
  "window_end",
  "adjustment",
  "cpu_request_millicores",
  "memory_request_bytes",
  "storage_bytes",
  "load_balancers",
  "pods",
  "namespaces",
  "applications",
  "quota_violations",
  "record_id",
] as const;

/** Raw records as CSV with stable columns (RFC 4180; fields never need quoting: names are DNS labels). */
export function usageCsv(
  rows: UsageRow[],
  pick: (row: UsageRow) => UsageMetrics | null = (row) => row.metrics,
): string {
  const lines: string[] = [CSV_COLUMNS.join(",")];
  for (const row of rows) {
    const m = pick(row);
    if (!m) continue;
    lines.push(
      [
        row.tenant,
        row.clusterId,
        row.windowStart,
        row.windowEnd,
        row.adjustment ? "true" : "false",
        m.cpuRequestMillicores,
        m.memoryRequestBytes,
        m.storageBytes,
        m.loadBalancers,
        m.pods,
        m.namespaces,
        m.applications,
        m.quotaViolations,
        row.id,
      ].join(","),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}
