/** Usage metrics arithmetic shared by the operator's collector and the Manager's billing reports. */
import type { UsageMetrics } from "./api/models.ts";

export const USAGE_METRIC_KEYS = [
  "cpuRequestMillicores",
  "memoryRequestBytes",
  "storageBytes",
  "loadBalancers",
  "pods",
  "namespaces",
  "applications",
  "quotaViolations",
] as const satisfies ReadonlyArray<keyof UsageMetrics>;

export function zeroUsage(): UsageMetrics {
  return {
    cpuRequestMillicores: 0,
    memoryRequestBytes: 0,
    storageBytes: 0,
    loadBalancers: 0,
    pods: 0,
    namespaces: 0,
    applications: 0,
    quotaViolations: 0,
  };
}

/** Adds `from` into `into`, field by field. */
export function addUsage(into: UsageMetrics, from: UsageMetrics): void {
  for (const key of USAGE_METRIC_KEYS) into[key] += from[key];
}
