/**
 * Apps: KubeVela Application intent with revisions. Every spec change is a new revision; what the cluster runs
 * is `deployedRevision`. Rollback copies an old revision's spec into a new revision (DESIGN.md §9.6).
 */
import type { z } from "zod";
import type { AppCreate, AppSpec, AppUpdate } from "../../shared/api/models.ts";
import { appKey } from "../../shared/desired.ts";
import { errors, type FieldIssue, KubeNovaError } from "../../shared/errors.ts";
import type { AppRevisionRow, AppRow, StoreTx } from "../store/store.ts";
import { assertClusterCanRun } from "./capabilities.ts";
import { type Actor, audit, nowIso, type ServiceDeps } from "./context.ts";
import { jsonDiff } from "./diff.ts";
import { syncApp } from "./sync.ts";

const resourceOf = (app: { tenant: string; project: string; name: string }) =>
  `tenants/${app.tenant}/projects/${app.project}/apps/${app.name}`;

/** Component types limited by the tenant's and project's policy sets answer 422 naming the component. */
async function checkAllowedComponentTypes(tx: StoreTx, tenant: string, project: string, spec: AppSpec) {
  const tenantRow = await tx.tenants.get(tenant);
  const projectRow = await tx.projects.get(tenant, project);
  const names = [...(tenantRow?.policySets ?? []), ...(projectRow?.policySets ?? [])];
  const issues: FieldIssue[] = [];
  for (const name of names) {
    const set = await tx.policySets.get(name);
    if (!set?.allowedComponentTypes) continue;
    for (const [i, component] of spec.components.entries()) {
      if (!set.allowedComponentTypes.includes(component.type)) {
        issues.push({
          path: `spec.components.${i}.type`,
          message: `component type "${component.type}" is not allowed by policy set "${name}" (allowed: ${set.allowedComponentTypes.join(", ")})`,
        });
      }
    }
  }
  if (issues.length > 0) {
    throw new KubeNovaError("KN-422", issues.map((i) => `${i.path}: ${i.message}`).join("; "), {
      details: issues,
    });
  }
}

/** DESIGN.md §7: a cluster that reported no KubeVela cannot run apps (422 naming the project's cluster). */
async function checkClusterRunsApps(tx: StoreTx, clusterName: string) {
  const cluster = await tx.clusters.get(clusterName);
  if (cluster) assertClusterCanRun(cluster, "apps", "cluster");
}

async function loadApp(tx: StoreTx, tenant: string, project: string, name: string): Promise<AppRow> {
  const app = await tx.apps.get(tenant, project, name);
  if (!app) throw errors.notFound("app", name);
  return app;
}

function checkVersion(app: AppRow, expectedVersion: number | undefined) {
  if (expectedVersion !== undefined && expectedVersion !== app.version) {
    throw errors.preconditionFailed(`app "${app.name}" has version ${app.version}, not ${expectedVersion}`);
  }
}

async function addRevision(
  tx: StoreTx,
  deps: ServiceDeps,
  actor: Actor,
  app: { tenant: string; project: string; name: string },
  revision: number,
  spec: AppSpec,
  note: string | null,
): Promise<AppRevisionRow> {
  return tx.appRevisions.insert({
    tenant: app.tenant,
    project: app.project,
    app: app.name,
    revision,
    spec,
    createdAt: nowIso(deps),
    createdBy: actor.subject,
    note,
  });
}

export async function createApp(
  deps: ServiceDeps,
  actor: Actor,
  tenant: string,
  projectName: string,
  input: z.output<typeof AppCreate>,
) {
  return deps.store.transaction(async (tx) => {
    const project = await tx.projects.get(tenant, projectName);
    if (!project) throw errors.notFound("project", projectName);
    await checkClusterRunsApps(tx, project.cluster);
    await checkAllowedComponentTypes(tx, tenant, projectName, input.spec);
    const now = nowIso(deps);
    const row: AppRow = {
      tenant,
      project: projectName,
      name: input.name,
      cluster: project.cluster,
      namespace: project.namespace,
      labels: input.labels ?? {},
      spec: input.spec,
      revision: 1,
      deployedRevision: input.deploy ? 1 : null,
      suspended: false,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    const created = await tx.apps.insert(row);
    await addRevision(tx, deps, actor, row, 1, input.spec, null);
    await syncApp(tx, created);
    await audit(tx, deps, actor, {
      action: "app.create",
      resource: resourceOf(row),
      tenant,
      details: { deployed: input.deploy },
    });
    return created;
  });
}

export async function getApp(
  deps: ServiceDeps,
  tenant: string,
  project: string,
  name: string,
): Promise<AppRow> {
  return loadApp(deps.store, tenant, project, name);
}

export async function updateApp(
  deps: ServiceDeps,
  actor: Actor,
  ref: { tenant: string; project: string; name: string },
  input: z.output<typeof AppUpdate>,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await loadApp(tx, ref.tenant, ref.project, ref.name);
    checkVersion(current, expectedVersion);
    const next: AppRow = { ...current, updatedAt: nowIso(deps) };
    if (input.labels !== undefined) next.labels = input.labels;
    const specChanged = input.spec !== undefined && jsonDiff(current.spec, input.spec).length > 0;
    if (input.spec !== undefined && specChanged) {
      await checkClusterRunsApps(tx, current.cluster);
      await checkAllowedComponentTypes(tx, ref.tenant, ref.project, input.spec);
      next.spec = input.spec;
      next.revision = current.revision + 1;
      await addRevision(tx, deps, actor, ref, next.revision, input.spec, null);
      if (input.deploy) next.deployedRevision = next.revision;
    }
    const updated = await tx.apps.update(next, { expectedVersion: current.version });
    if (specChanged || input.labels !== undefined) await syncApp(tx, updated);
    await audit(tx, deps, actor, {
      action: "app.update",
      resource: resourceOf(ref),
      tenant: ref.tenant,
      details: { revision: updated.revision, deployedRevision: updated.deployedRevision },
    });
    return updated;
  });
}

export async function deleteApp(
  deps: ServiceDeps,
  actor: Actor,
  ref: { tenant: string; project: string; name: string },
  expectedVersion?: number,
) {
  await deps.store.transaction(async (tx) => {
    const current = await loadApp(tx, ref.tenant, ref.project, ref.name);
    checkVersion(current, expectedVersion);
    await syncApp(tx, current, { deleted: true });
    await tx.appRevisions.deleteForApp(ref.tenant, ref.project, ref.name);
    await tx.apps.delete(ref.tenant, ref.project, ref.name);
    await audit(tx, deps, actor, { action: "app.delete", resource: resourceOf(ref), tenant: ref.tenant });
  });
}

export type AppOperation =
  | { op: "deploy"; revision?: number }
  | { op: "suspend" }
  | { op: "resume" }
  | { op: "rollback"; revision: number };

export async function operateApp(
  deps: ServiceDeps,
  actor: Actor,
  ref: { tenant: string; project: string; name: string },
  operation: AppOperation,
  expectedVersion?: number,
) {
  return deps.store.transaction(async (tx) => {
    const current = await loadApp(tx, ref.tenant, ref.project, ref.name);
    checkVersion(current, expectedVersion);
    const next: AppRow = { ...current, updatedAt: nowIso(deps) };
    const missingRevision = (revision: number) =>
      errors.unprocessable(`revision: app "${ref.name}" has no revision ${revision}`, [
        { path: "revision", message: `revision ${revision} does not exist (latest is ${current.revision})` },
      ]);
    switch (operation.op) {
      case "deploy": {
        const revision = operation.revision ?? current.revision;
        if (!(await tx.appRevisions.get(ref.tenant, ref.project, ref.name, revision)))
          throw missingRevision(revision);
        next.deployedRevision = revision;
        break;
      }
      case "suspend":
      case "resume": {
        if (current.deployedRevision === null) {
          throw errors.conflict(`app "${ref.name}" is not deployed; deploy it before you ${operation.op} it`);
        }
        next.suspended = operation.op === "suspend";
        break;
      }
      case "rollback": {
        const source = await tx.appRevisions.get(ref.tenant, ref.project, ref.name, operation.revision);
        if (!source) throw missingRevision(operation.revision);
        next.spec = source.spec;
        next.revision = current.revision + 1;
        next.deployedRevision = next.revision;
        await addRevision(
          tx,
          deps,
          actor,
          ref,
          next.revision,
          source.spec,
          `rollback to revision ${operation.revision}`,
        );
        break;
      }
      default: {
        const unreachable: never = operation;
        throw new Error(`unhandled app operation ${JSON.stringify(unreachable)}`);
      }
    }
    const updated = await tx.apps.update(next, { expectedVersion: current.version });
    await syncApp(tx, updated);
    await audit(tx, deps, actor, {
      action: `app.${operation.op}`,
      resource: resourceOf(ref),
      tenant: ref.tenant,
      details: { revision: updated.deployedRevision, suspended: updated.suspended },
    });
    return updated;
  });
}

export async function listRevisions(
  deps: ServiceDeps,
  ref: { tenant: string; project: string; name: string },
  page: { limit: number; cursor?: string },
) {
  await loadApp(deps.store, ref.tenant, ref.project, ref.name);
  return deps.store.appRevisions.list(ref.tenant, ref.project, ref.name, page);
}

export async function diffRevisions(
  deps: ServiceDeps,
  ref: { tenant: string; project: string; name: string },
  from: number,
  to: number,
) {
  const app = await loadApp(deps.store, ref.tenant, ref.project, ref.name);
  const [a, b] = await Promise.all([
    deps.store.appRevisions.get(ref.tenant, ref.project, ref.name, from),
    deps.store.appRevisions.get(ref.tenant, ref.project, ref.name, to),
  ]);
  const issues: FieldIssue[] = [];
  if (!a)
    issues.push({ path: "from", message: `revision ${from} does not exist (latest is ${app.revision})` });
  if (!b) issues.push({ path: "to", message: `revision ${to} does not exist (latest is ${app.revision})` });
  if (!a || !b) throw errors.unprocessable(issues.map((i) => `${i.path}: ${i.message}`).join("; "), issues);
  return { from, to, changes: jsonDiff(a.spec, b.spec) };
}

export async function appStatus(deps: ServiceDeps, ref: { tenant: string; project: string; name: string }) {
  const app = await loadApp(deps.store, ref.tenant, ref.project, ref.name);
  const cluster = await deps.store.clusters.get(app.cluster);
  const row = cluster
    ? await deps.store.statusMirror.get(cluster.id, "app", appKey(ref.tenant, ref.project, ref.name))
    : null;
  const body = row?.body ?? null;
  const phase = typeof body?.phase === "string" ? body.phase : null;
  const observedRevision = typeof body?.revision === "number" ? body.revision : null;
  return {
    cluster: app.cluster,
    phase: phase as "Pending" | "Applying" | "Deployed" | "Drifted" | "Error" | null,
    observedGeneration: row?.observedGeneration ?? null,
    observedRevision,
    report: body,
    updatedAt: row?.updatedAt ?? null,
  };
}
