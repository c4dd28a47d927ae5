/**
 * A cluster's whole desired state at its latest revision, for an operator whose revision was compacted away
 * (DESIGN.md §3): every tenant placed there and every deployed app, computed from the database, not the log.
 */
import { appKey } from "../../shared/desired.ts";
import type { DesiredChange } from "../../shared/messages.ts";
import { appBody, tenantBody } from "../services/sync.ts";
import type { Store } from "../store/store.ts";

const PAGE = 500;

export async function clusterSnapshot(
  store: Store,
  clusterId: string,
): Promise<{ revision: number; changes: DesiredChange[] }> {
  return store.transaction(async (tx) => {
    const cluster = await tx.clusters.getById(clusterId);
    if (!cluster) return { revision: 0, changes: [] };
    const revision = await tx.changeLog.latestRevision(clusterId);
    const changes: DesiredChange[] = [];
    let cursor: string | undefined;
    do {
      const page = await tx.tenants.list({
        limit: PAGE,
        ...(cursor ? { cursor } : {}),
        where: (t) => t.clusters.includes(cluster.name),
      });
      for (const tenant of page.items) {
        const plan = tenant.plan ? await tx.plans.get(tenant.plan) : null;
        const body = await tenantBody(tx, tenant, plan, cluster.name);
        changes.push({ revision, kind: "tenant", key: tenant.name, op: "upsert", body });
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    do {
      const page = await tx.apps.list(
        { cluster: cluster.name },
        { limit: PAGE, ...(cursor ? { cursor } : {}) },
      );
      for (const app of page.items) {
        const body = await appBody(tx, app);
        if (body)
          changes.push({
            revision,
            kind: "app",
            key: appKey(app.tenant, app.project, app.name),
            op: "upsert",
            body,
          });
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return { revision, changes };
  });
}
