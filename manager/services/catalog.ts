/** Plans and policy sets: the platform's catalog of quotas, limits and enforced traits/policies. */
import type { z } from "zod";
import type { PlanCreate, PlanUpdate, PolicySetCreate, PolicySetUpdate } from "../../shared/api/models.ts";
import { errors, KubeNovaError } from "../../shared/errors.ts";
import type { PlanRow, PolicySetRow } from "../store/store.ts";
import { type Actor, audit, listAll, nowIso, type ServiceDeps } from "./context.ts";
import { syncTenantApps, syncTenantsWhere } from "./sync.ts";

export async function createPlan(deps: ServiceDeps, actor: Actor, input: z.output<typeof PlanCreate>) {
  const now = nowIso(deps);
  const row: PlanRow = {
    name: input.name,
    displayName: input.displayName ?? null,
    description: input.description ?? null,
    quotas: input.quotas,
    limitRange: input.limitRange ?? null,
    allowLoadBalancers: input.allowLoadBalancers,
    traits: input.traits,
    policies: input.policies,
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  return deps.store.transaction(async (tx) => {
    const created = await tx.plans.insert(row);
    await audit(tx, deps, actor, { action: "plan.create", resource: `plans/${row.name}` });
    return created;
  });
}

export async function getPlan(deps: ServiceDeps, name: string): Promise<PlanRow> {
  const row = await deps.store.plans.get(name);
  if (!row) throw errors.notFound("plan", name);
  return row;
}

export async function updatePlan(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  input: z.output<typeof PlanUpdate>,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await tx.plans.get(name);
    if (!current) throw errors.notFound("plan", name);
    const next: PlanRow = { ...current, updatedAt: nowIso(deps) };
    if (input.displayName !== undefined) next.displayName = input.displayName;
    if (input.description !== undefined) next.description = input.description;
    if (input.quotas !== undefined) next.quotas = input.quotas;
    if (input.limitRange !== undefined) next.limitRange = input.limitRange;
    if (input.allowLoadBalancers !== undefined) next.allowLoadBalancers = input.allowLoadBalancers;
    if (input.traits !== undefined) next.traits = input.traits;
    if (input.policies !== undefined) next.policies = input.policies;
    const updated = await tx.plans.update(next, { expectedVersion: expectedVersion ?? current.version });
    // Every tenant on this plan gets its new quotas and app rules on every cluster it is placed on.
    const tenants = await syncTenantsWhere(tx, (t) => t.plan === name);
    await audit(tx, deps, actor, { action: "plan.update", resource: `plans/${name}`, details: { tenants } });
    return updated;
  });
}

export async function deletePlan(deps: ServiceDeps, actor: Actor, name: string, expectedVersion?: number) {
  await deps.store.transaction(async (tx) => {
    const current = await tx.plans.get(name);
    if (!current) throw errors.notFound("plan", name);
    const users = await tx.tenants.list({ limit: 5, where: (t) => t.plan === name });
    if (users.items.length > 0) {
      throw new KubeNovaError(
        "KN-409",
        `plan "${name}" is used by tenants (${users.items.map((t) => t.name).join(", ")})`,
      );
    }
    await tx.plans.delete(name, { expectedVersion: expectedVersion ?? current.version });
    await audit(tx, deps, actor, { action: "plan.delete", resource: `plans/${name}` });
  });
}

export async function createPolicySet(
  deps: ServiceDeps,
  actor: Actor,
  input: z.output<typeof PolicySetCreate>,
) {
  const now = nowIso(deps);
  const row: PolicySetRow = {
    name: input.name,
    description: input.description ?? null,
    traits: input.traits,
    policies: input.policies,
    allowedComponentTypes: input.allowedComponentTypes ?? null,
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  return deps.store.transaction(async (tx) => {
    const created = await tx.policySets.insert(row);
    await audit(tx, deps, actor, { action: "policyset.create", resource: `policysets/${row.name}` });
    return created;
  });
}

export async function getPolicySet(deps: ServiceDeps, name: string): Promise<PolicySetRow> {
  const row = await deps.store.policySets.get(name);
  if (!row) throw errors.notFound("policy set", name);
  return row;
}

export async function updatePolicySet(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  input: z.output<typeof PolicySetUpdate>,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await tx.policySets.get(name);
    if (!current) throw errors.notFound("policy set", name);
    const next: PolicySetRow = { ...current, updatedAt: nowIso(deps) };
    if (input.description !== undefined) next.description = input.description;
    if (input.traits !== undefined) next.traits = input.traits;
    if (input.policies !== undefined) next.policies = input.policies;
    if (input.allowedComponentTypes !== undefined) next.allowedComponentTypes = input.allowedComponentTypes;
    const updated = await tx.policySets.update(next, { expectedVersion: expectedVersion ?? current.version });
    const tenants = await syncTenantsWhere(tx, (t) => t.policySets.includes(name));
    const projects = await listAll((cursor) =>
      tx.projects.list({}, { limit: 500, cursor, where: (p) => p.policySets.includes(name) }),
    );
    for (const project of projects) await syncTenantApps(tx, project.tenant, project.name);
    await audit(tx, deps, actor, {
      action: "policyset.update",
      resource: `policysets/${name}`,
      details: { tenants, projects: projects.length },
    });
    return updated;
  });
}

export async function deletePolicySet(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  expectedVersion?: number,
) {
  await deps.store.transaction(async (tx) => {
    const current = await tx.policySets.get(name);
    if (!current) throw errors.notFound("policy set", name);
    const tenants = await tx.tenants.list({ limit: 1, where: (t) => t.policySets.includes(name) });
    const projects = await tx.projects.list({}, { limit: 1, where: (p) => p.policySets.includes(name) });
    if (tenants.items.length > 0 || projects.items.length > 0) {
      throw new KubeNovaError("KN-409", `policy set "${name}" is still attached to tenants or projects`);
    }
    await tx.policySets.delete(name, { expectedVersion: expectedVersion ?? current.version });
    await audit(tx, deps, actor, { action: "policyset.delete", resource: `policysets/${name}` });
  });
}
