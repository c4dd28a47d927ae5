/** Read-modify-write of one cluster row with optimistic concurrency: presence and hello never undo each other. */
import { isKubeNovaError } from "../../shared/errors.ts";
import type { ClusterRow, Store } from "../store/store.ts";

export async function patchCluster(
  store: Store,
  clusterId: string,
  patch: (row: ClusterRow) => Partial<ClusterRow> | null,
  attempts = 5,
): Promise<ClusterRow | null> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const row = await store.clusters.getById(clusterId);
    if (!row) return null; // deleted meanwhile
    const changes = patch(row);
    if (!changes) return row;
    try {
      return await store.clusters.update({ ...row, ...changes }, { expectedVersion: row.version });
    } catch (error) {
      if (isKubeNovaError(error) && error.code === "KN-412") continue;
      throw error;
    }
  }
  throw new Error(`cluster ${clusterId} kept changing; gave up after ${attempts} attempts`);
}
