/**
 * @module shared/desired — the desired-state objects the Manager writes to a cluster's change log and sends on
 * `desired` (DESIGN.md §3). Each change carries the whole object (level-triggered): applying it twice is harmless.
 * The operator turns a DesiredTenant into a NovaTenant and a DesiredApp into a KubeVela Application.
 */
import { z } from "zod";
import { AppSpec, PlanLimitRange, PlanQuotas, Policy, Trait } from "./api/models.ts";

export const DesiredPlan = z.object({
  name: z.string().nullable(),
  quotas: PlanQuotas,
  limitRange: PlanLimitRange.nullable(),
  allowLoadBalancers: z.boolean(),
});
export type DesiredPlan = z.infer<typeof DesiredPlan>;

export const DesiredProject = z.object({
  name: z.string(),
  namespace: z.string(),
  labels: z.record(z.string(), z.string()),
});

export const DesiredTenant = z.object({
  name: z.string(),
  displayName: z.string().nullable(),
  owners: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  plan: DesiredPlan,
  /** Only the tenant's projects that live on this cluster. */
  projects: z.array(DesiredProject),
});
export type DesiredTenant = z.infer<typeof DesiredTenant>;

export const DesiredApp = z.object({
  tenant: z.string(),
  project: z.string(),
  namespace: z.string(),
  name: z.string(),
  labels: z.record(z.string(), z.string()),
  /** The Manager's revision number; the operator sets `app.oam.dev/publishVersion` to `r<revision>`. */
  revision: z.number().int().min(1),
  suspended: z.boolean(),
  /** The deployed revision's spec with the plan's and policy sets' traits and policies merged in. */
  spec: AppSpec,
  traits: z.array(Trait).optional(),
  policies: z.array(Policy).optional(),
});
export type DesiredApp = z.infer<typeof DesiredApp>;

export const DESIRED_KINDS = ["tenant", "app"] as const;
export type DesiredKind = (typeof DESIRED_KINDS)[number];

/** Change-log keys: tenants by name, apps by `tenant/project/app`. */
export function appKey(tenant: string, project: string, app: string): string {
  return `${tenant}/${project}/${app}`;
}
