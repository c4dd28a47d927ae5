/** Tenants and their projects: global intent placed onto clusters (DESIGN.md §5–§6). */
import type { z } from "zod";
import {
  projectNamespace,
  type ProjectCreate,
  type ProjectUpdate,
  type TenantCreate,
  type TenantUpdate,
} from "../../shared/api/models.ts";
import { errors, type FieldIssue, KubeNovaError } from "../../shared/errors.ts";
import type { ProjectRow, StoreTx, TenantRow } from "../store/store.ts";
import { assertClusterCanRun } from "./capabilities.ts";
import { type Actor, audit, listAll, nowIso, type ServiceDeps } from "./context.ts";
import { syncApp, syncTenant, syncTenantApps } from "./sync.ts";

export const DEFAULT_PLAN = "default";

async function checkReferences(
  tx: StoreTx,
  refs: { clusters?: string[]; policySets?: string[]; plan?: string },
): Promise<void> {
  const issues: FieldIssue[] = [];
  for (const [i, name] of (refs.clusters ?? []).entries()) {
    const cluster = await tx.clusters.get(name);
    if (!cluster) issues.push({ path: `clusters.${i}`, message: `cluster "${name}" does not exist` });
    else assertClusterCanRun(cluster, "tenants", `clusters.${i}`); // DESIGN.md §7 CRD mismatch
  }
  for (const [i, name] of (refs.policySets ?? []).entries()) {
    if (!(await tx.policySets.get(name))) {
      issues.push({ path: `policySets.${i}`, message: `policy set "${name}" does not exist` });
    }
  }
  if (refs.plan !== undefined && !(await tx.plans.get(refs.plan))) {
    issues.push({ path: "plan", message: `plan "${refs.plan}" does not exist` });
  }
  if (issues.length > 0) {
    throw new KubeNovaError("KN-422", issues.map((i) => `${i.path}: ${i.message}`).join("; "), {
      details: issues,
    });
  }
}

export async function createTenant(deps: ServiceDeps, actor: Actor, input: z.output<typeof TenantCreate>) {
  return deps.store.transaction(async (tx) => {
    await checkReferences(tx, { clusters: input.clusters, policySets: input.policySets, plan: input.plan });
    const plan = input.plan ?? ((await tx.plans.get(DEFAULT_PLAN)) ? DEFAULT_PLAN : null);
    const now = nowIso(deps);
    const row: TenantRow = {
      name: input.name,
      displayName: input.displayName ?? null,
      owners: input.owners,
      plan,
      clusters: input.clusters,
      labels: input.labels ?? {},
      policySets: input.policySets ?? [],
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    const created = await tx.tenants.insert(row);
    await syncTenant(tx, created);
    await audit(tx, deps, actor, {
      action: "tenant.create",
      resource: `tenants/${row.name}`,
      tenant: row.name,
      details: { clusters: row.clusters, plan },
    });
    return created;
  });
}

export async function getTenant(deps: ServiceDeps, name: string): Promise<TenantRow> {
  const row = await deps.store.tenants.get(name);
  if (!row) throw errors.notFound("tenant", name);
  return row;
}

export async function updateTenant(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  input: z.output<typeof TenantUpdate>,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await tx.tenants.get(name);
    if (!current) throw errors.notFound("tenant", name);
    await checkReferences(tx, { clusters: input.clusters, policySets: input.policySets });
    const next: TenantRow = { ...current, updatedAt: nowIso(deps) };
    if (input.displayName !== undefined) next.displayName = input.displayName;
    if (input.owners !== undefined) next.owners = input.owners;
    if (input.labels !== undefined) next.labels = input.labels;
    if (input.policySets !== undefined) next.policySets = input.policySets;
    let removedFrom: string[] = [];
    if (input.clusters !== undefined) {
      next.clusters = input.clusters;
      removedFrom = current.clusters.filter((c) => !input.clusters!.includes(c));
      for (const cluster of removedFrom) {
        const projects = await tx.projects.list({ tenant: name, cluster }, { limit: 1 });
        if (projects.items.length > 0) {
          throw new KubeNovaError(
            "KN-409",
            `clusters: cannot remove cluster "${cluster}": project "${projects.items[0]!.name}" lives there`,
            { details: [{ path: "clusters", message: `cluster "${cluster}" still hosts projects` }] },
          );
        }
      }
    }
    const updated = await tx.tenants.update(next, { expectedVersion: expectedVersion ?? current.version });
    await syncTenant(tx, updated, { removedFrom });
    if (input.policySets !== undefined) await syncTenantApps(tx, name);
    await audit(tx, deps, actor, {
      action: "tenant.update",
      resource: `tenants/${name}`,
      tenant: name,
      details: { fields: Object.keys(input) },
    });
    return updated;
  });
}

export async function setTenantPlan(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  plan: string,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await tx.tenants.get(name);
    if (!current) throw errors.notFound("tenant", name);
    await checkReferences(tx, { plan });
    const updated = await tx.tenants.update(
      { ...current, plan, updatedAt: nowIso(deps) },
      { expectedVersion: expectedVersion ?? current.version },
    );
    await syncTenant(tx, updated);
    await syncTenantApps(tx, name);
    await audit(tx, deps, actor, {
      action: "tenant.plan",
      resource: `tenants/${name}`,
      tenant: name,
      details: { from: current.plan, to: plan },
    });
    return updated;
  });
}

/** Deletes a tenant with its projects and apps; each cluster gets the deletions in its change log. */
export async function deleteTenant(deps: ServiceDeps, actor: Actor, name: string, expectedVersion?: number) {
  await deps.store.transaction(async (tx) => {
    const current = await tx.tenants.get(name);
    if (!current) throw errors.notFound("tenant", name);
    if (expectedVersion !== undefined && expectedVersion !== current.version) {
      throw errors.preconditionFailed(
        `tenant "${name}" has version ${current.version}, not ${expectedVersion}`,
      );
    }
    const apps = await listAll((cursor) => tx.apps.list({ tenant: name }, { limit: 500, cursor }));
    for (const app of apps) {
      await syncApp(tx, app, { deleted: true });
      await tx.appRevisions.deleteForApp(app.tenant, app.project, app.name);
      await tx.apps.delete(app.tenant, app.project, app.name);
    }
    const projects = await listAll((cursor) => tx.projects.list({ tenant: name }, { limit: 500, cursor }));
    for (const project of projects) await tx.projects.delete(name, project.name);
    await tx.tenants.delete(name);
    await syncTenant(tx, current, { deleted: true });
    await audit(tx, deps, actor, {
      action: "tenant.delete",
      resource: `tenants/${name}`,
      tenant: name,
      details: { projects: projects.length, apps: apps.length },
    });
  });
}

// ── Projects ──────────────────────────────────────────────────────────────────────────────────────────────────

export async function createProject(
  deps: ServiceDeps,
  actor: Actor,
  tenantName: string,
  input: z.output<typeof ProjectCreate>,
) {
  return deps.store.transaction(async (tx) => {
    const tenant = await tx.tenants.get(tenantName);
    if (!tenant) throw errors.notFound("tenant", tenantName);
    if (!tenant.clusters.includes(input.cluster)) {
      throw errors.unprocessable(
        `cluster: "${input.cluster}" is not one of tenant "${tenantName}"'s clusters`,
        [{ path: "cluster", message: `must be one of: ${tenant.clusters.join(", ")}` }],
      );
    }
    await checkReferences(tx, { policySets: input.policySets });
    const placement = await tx.clusters.get(input.cluster);
    if (placement) assertClusterCanRun(placement, "tenants", "cluster");
    const now = nowIso(deps);
    const row: ProjectRow = {
      tenant: tenantName,
      name: input.name,
      displayName: input.displayName ?? null,
      cluster: input.cluster,
      namespace: projectNamespace(tenantName, input.name),
      labels: input.labels ?? {},
      policySets: input.policySets ?? [],
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    const created = await tx.projects.insert(row);
    await syncTenant(tx, tenant, { onlyCluster: row.cluster });
    await audit(tx, deps, actor, {
      action: "project.create",
      resource: `tenants/${tenantName}/projects/${row.name}`,
      tenant: tenantName,
      details: { cluster: row.cluster },
    });
    return created;
  });
}

export async function getProject(deps: ServiceDeps, tenant: string, name: string): Promise<ProjectRow> {
  const row = await deps.store.projects.get(tenant, name);
  if (!row) throw errors.notFound("project", name);
  return row;
}

export async function updateProject(
  deps: ServiceDeps,
  actor: Actor,
  tenantName: string,
  name: string,
  input: z.output<typeof ProjectUpdate>,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await tx.projects.get(tenantName, name);
    if (!current) throw errors.notFound("project", name);
    await checkReferences(tx, { policySets: input.policySets });
    const next: ProjectRow = { ...current, updatedAt: nowIso(deps) };
    if (input.displayName !== undefined) next.displayName = input.displayName;
    if (input.labels !== undefined) next.labels = input.labels;
    if (input.policySets !== undefined) next.policySets = input.policySets;
    const updated = await tx.projects.update(next, { expectedVersion: expectedVersion ?? current.version });
    const tenant = await tx.tenants.get(tenantName);
    if (tenant && input.labels !== undefined) await syncTenant(tx, tenant, { onlyCluster: current.cluster });
    if (input.policySets !== undefined) await syncTenantApps(tx, tenantName, name);
    await audit(tx, deps, actor, {
      action: "project.update",
      resource: `tenants/${tenantName}/projects/${name}`,
      tenant: tenantName,
      details: { fields: Object.keys(input) },
    });
    return updated;
  });
}

export async function deleteProject(
  deps: ServiceDeps,
  actor: Actor,
  tenantName: string,
  name: string,
  expectedVersion?: number,
) {
  await deps.store.transaction(async (tx) => {
    const current = await tx.projects.get(tenantName, name);
    if (!current) throw errors.notFound("project", name);
    if (expectedVersion !== undefined && expectedVersion !== current.version) {
      throw errors.preconditionFailed(
        `project "${name}" has version ${current.version}, not ${expectedVersion}`,
      );
    }
    const apps = await listAll((cursor) =>
      tx.apps.list({ tenant: tenantName, project: name }, { limit: 500, cursor }),
    );
    for (const app of apps) {
      await syncApp(tx, app, { deleted: true });
      await tx.appRevisions.deleteForApp(app.tenant, app.project, app.name);
      await tx.apps.delete(app.tenant, app.project, app.name);
    }
    await tx.projects.delete(tenantName, name);
    const tenant = await tx.tenants.get(tenantName);
    if (tenant) await syncTenant(tx, tenant, { onlyCluster: current.cluster });
    await audit(tx, deps, actor, {
      action: "project.delete",
      resource: `tenants/${tenantName}/projects/${name}`,
      tenant: tenantName,
      details: { apps: apps.length },
    });
  });
}
