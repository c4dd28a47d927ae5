/**
 * Change-log fan-out: whenever intent changes, the affected clusters get the new desired objects appended to
 * their log in the same transaction (DESIGN.md §3 — the database is the source of truth).
 */
import { appKey, type DesiredApp, type DesiredTenant } from "../../shared/desired.ts";
import { traceparentOf } from "../../shared/tracing.ts";
import { desiredApp, desiredTenant, platformRules } from "../desired/compose.ts";
import type { AppRow, PlanRow, PolicySetRow, StoreTx, TenantRow } from "../store/store.ts";
import { listAll } from "./context.ts";

const PAGE = 500;

async function clusterIdOf(tx: StoreTx, clusterName: string): Promise<string | null> {
  return (await tx.clusters.get(clusterName))?.id ?? null;
}

async function policySetsByName(tx: StoreTx, names: string[]): Promise<PolicySetRow[]> {
  const rows: PolicySetRow[] = [];
  for (const name of names) {
    const row = await tx.policySets.get(name);
    if (row) rows.push(row);
  }
  return rows;
}

/**
 * Appends the tenant's desired object to every cluster it is placed on, and a delete to every cluster in
 * `removedFrom`. Pass `deleted` to remove it everywhere, `onlyCluster` when only one cluster's view changed.
 */
export async function syncTenant(
  tx: StoreTx,
  tenant: TenantRow,
  options: { removedFrom?: string[]; deleted?: boolean; onlyCluster?: string } = {},
): Promise<void> {
  const plan = tenant.plan ? await tx.plans.get(tenant.plan) : null;
  const deletes = options.deleted ? tenant.clusters : (options.removedFrom ?? []);
  for (const clusterName of deletes) {
    const clusterId = await clusterIdOf(tx, clusterName);
    if (clusterId)
      await tx.changeLog.append(clusterId, [
        { kind: "tenant", key: tenant.name, op: "delete", body: null, traceparent: traceparentOf() ?? null },
      ]);
  }
  if (options.deleted) return;
  for (const clusterName of tenant.clusters) {
    if (options.onlyCluster !== undefined && clusterName !== options.onlyCluster) continue;
    const clusterId = await clusterIdOf(tx, clusterName);
    if (!clusterId) continue;
    const body = await tenantBody(tx, tenant, plan, clusterName);
    await tx.changeLog.append(clusterId, [
      { kind: "tenant", key: tenant.name, op: "upsert", body, traceparent: traceparentOf() ?? null },
    ]);
  }
}

/** The tenant as one cluster should see it: with only the projects that live there. */
export async function tenantBody(
  tx: StoreTx,
  tenant: TenantRow,
  plan: PlanRow | null,
  clusterName: string,
): Promise<DesiredTenant> {
  const projects = await listAll((cursor) =>
    tx.projects.list({ tenant: tenant.name, cluster: clusterName }, { limit: PAGE, cursor }),
  );
  return desiredTenant(tenant, plan, projects);
}

/** A deployed app's desired object with platform rules merged; null when it is not deployed. */
export async function appBody(tx: StoreTx, app: AppRow): Promise<DesiredApp | null> {
  if (app.deployedRevision === null) return null;
  const revision = await tx.appRevisions.get(app.tenant, app.project, app.name, app.deployedRevision);
  if (!revision) return null;
  const tenant = await tx.tenants.get(app.tenant);
  const project = await tx.projects.get(app.tenant, app.project);
  const plan = tenant?.plan ? await tx.plans.get(tenant.plan) : null;
  const sets = await policySetsByName(tx, [...(tenant?.policySets ?? []), ...(project?.policySets ?? [])]);
  return desiredApp(app, revision.spec, app.deployedRevision, platformRules(plan, sets));
}

/** Appends an app's desired object (or its deletion) to its project's cluster. Undeployed apps send nothing. */
export async function syncApp(tx: StoreTx, app: AppRow, options: { deleted?: boolean } = {}): Promise<void> {
  const clusterId = await clusterIdOf(tx, app.cluster);
  if (!clusterId) return;
  const key = appKey(app.tenant, app.project, app.name);
  if (options.deleted) {
    if (app.deployedRevision !== null) {
      await tx.changeLog.append(clusterId, [
        { kind: "app", key, op: "delete", body: null, traceparent: traceparentOf() ?? null },
      ]);
    }
    return;
  }
  const body = await appBody(tx, app);
  if (!body) return;
  await tx.changeLog.append(clusterId, [
    { kind: "app", key, op: "upsert", body, traceparent: traceparentOf() ?? null },
  ]);
}

/** Re-sends every deployed app of a tenant (optionally one project): platform rules changed under them. */
export async function syncTenantApps(tx: StoreTx, tenant: string, project?: string): Promise<void> {
  const apps = await listAll((cursor) =>
    tx.apps.list(project ? { tenant, project } : { tenant }, { limit: PAGE, cursor }),
  );
  for (const app of apps) await syncApp(tx, app);
}

/** Tenants whose plan or policy sets changed: their objects and apps are re-sent everywhere. */
export async function syncTenantsWhere(tx: StoreTx, where: (tenant: TenantRow) => boolean): Promise<number> {
  const tenants = await listAll((cursor) => tx.tenants.list({ limit: PAGE, cursor, where }));
  for (const tenant of tenants) {
    await syncTenant(tx, tenant);
    await syncTenantApps(tx, tenant.name);
  }
  return tenants.length;
}
