/**
 * @module manager/desired — pure functions that compose what a cluster should run from the Manager's rows.
 * Platform rules (plan and policy-set traits and policies) are merged here, once, so every cluster gets the same.
 */
import type { AppSpec } from "../../shared/api/models.ts";
import type { DesiredApp, DesiredPlan, DesiredTenant } from "../../shared/desired.ts";
import type { AppRow, PlanRow, PolicySetRow, ProjectRow, TenantRow } from "../store/store.ts";

type TraitSpec = { type: string; properties?: Record<string, unknown> };
type PolicySpec = { name: string; type: string; properties?: Record<string, unknown> };

export function desiredPlan(plan: PlanRow | null): DesiredPlan {
  if (!plan) return { name: null, quotas: {}, limitRange: null, allowLoadBalancers: false };
  return {
    name: plan.name,
    quotas: plan.quotas as DesiredPlan["quotas"],
    limitRange: (plan.limitRange ?? null) as DesiredPlan["limitRange"],
    allowLoadBalancers: plan.allowLoadBalancers,
  };
}

export function desiredTenant(
  tenant: TenantRow,
  plan: PlanRow | null,
  projectsOnCluster: ProjectRow[],
): DesiredTenant {
  return {
    name: tenant.name,
    displayName: tenant.displayName,
    owners: [...tenant.owners],
    labels: { ...tenant.labels },
    plan: desiredPlan(plan),
    projects: projectsOnCluster
      .map((p) => ({ name: p.name, namespace: p.namespace, labels: { ...p.labels } }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/**
 * Merges platform traits into every component and platform policies into the app. Platform rules are
 * enforced: a platform trait replaces an app trait of the same type, a platform policy one of the same name.
 */
export function mergePlatformRules(spec: AppSpec, traits: TraitSpec[], policies: PolicySpec[]): AppSpec {
  const platformTraitTypes = new Set(traits.map((t) => t.type));
  const platformPolicyNames = new Set(policies.map((p) => p.name));
  const merged: AppSpec = {
    ...spec,
    components: spec.components.map((component) => {
      const own = (component.traits ?? []).filter((t) => !platformTraitTypes.has(t.type));
      const all = [...own, ...traits.map((t) => structuredClone(t))];
      return all.length > 0 ? { ...component, traits: all } : { ...component };
    }),
  };
  const ownPolicies = (spec.policies ?? []).filter((p) => !platformPolicyNames.has(p.name));
  const allPolicies = [...ownPolicies, ...policies.map((p) => structuredClone(p))];
  if (allPolicies.length > 0) merged.policies = allPolicies;
  return merged;
}

/** The platform rules that apply to an app: its tenant's plan, then tenant and project policy sets. */
export function platformRules(plan: PlanRow | null, policySets: PolicySetRow[]) {
  const traits: TraitSpec[] = [];
  const policies: PolicySpec[] = [];
  const addTraits = (list: TraitSpec[]) => {
    for (const t of list) {
      const at = traits.findIndex((x) => x.type === t.type);
      if (at >= 0) traits[at] = t;
      else traits.push(t);
    }
  };
  const addPolicies = (list: PolicySpec[]) => {
    for (const p of list) {
      const at = policies.findIndex((x) => x.name === p.name);
      if (at >= 0) policies[at] = p;
      else policies.push(p);
    }
  };
  if (plan) {
    addTraits(plan.traits);
    addPolicies(plan.policies);
  }
  for (const set of policySets) {
    addTraits(set.traits);
    addPolicies(set.policies);
  }
  return { traits, policies };
}

export function desiredApp(
  app: AppRow,
  deployedSpec: AppSpec,
  deployedRevision: number,
  rules: { traits: TraitSpec[]; policies: PolicySpec[] },
): DesiredApp {
  return {
    tenant: app.tenant,
    project: app.project,
    namespace: app.namespace,
    name: app.name,
    labels: { ...app.labels },
    revision: deployedRevision,
    suspended: app.suspended,
    spec: mergePlatformRules(deployedSpec, rules.traits, rules.policies),
  };
}
