/** Cluster registration and lifecycle; enrolment and identity live in enrolment.ts (DESIGN.md §4). */
import type { z } from "zod";
import type { ClusterCreate, ClusterUpdate } from "../../shared/api/models.ts";
import { errors, KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import type { ClusterRow, ListOptions, Page, StoreTx } from "../store/store.ts";
import { type Actor, audit, nowIso, type ServiceDeps } from "./context.ts";

export const kubeconfigAad = (clusterId: string) => `clusters/${clusterId}/kubeconfig`;

export async function createCluster(
  deps: ServiceDeps,
  actor: Actor,
  input: z.output<typeof ClusterCreate>,
  options: {
    /** Runs inside the creating transaction (enrolment issues the bootstrap token there). */
    onCreated?: (tx: StoreTx, row: ClusterRow) => Promise<void>;
  } = {},
): Promise<ClusterRow> {
  const id = uuidv7();
  const now = nowIso(deps);
  const row: ClusterRow = {
    id,
    name: input.name,
    displayName: input.displayName ?? null,
    datacenter: input.datacenter,
    labels: input.labels ?? {},
    capsuleProxyUrl: input.capsuleProxyUrl ?? null,
    status: "pending_bootstrap",
    statusReason: null,
    versions: {},
    capabilities: {},
    kubeconfigCiphertext: input.kubeconfig
      ? await deps.secrets.encrypt(input.kubeconfig, kubeconfigAad(id))
      : null,
    lastSeenAt: null,
    revokedAt: null,
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  return deps.store.transaction(async (tx) => {
    const created = await tx.clusters.insert(row);
    await options.onCreated?.(tx, created);
    await audit(tx, deps, actor, {
      action: "cluster.create",
      resource: `clusters/${row.name}`,
      details: { datacenter: row.datacenter, withKubeconfig: row.kubeconfigCiphertext !== null },
    });
    return created;
  });
}

export async function getCluster(deps: ServiceDeps, name: string): Promise<ClusterRow> {
  const row = await deps.store.clusters.get(name);
  if (!row) throw errors.notFound("cluster", name);
  return row;
}

export function listClusters(deps: ServiceDeps, options: ListOptions<ClusterRow>): Promise<Page<ClusterRow>> {
  return deps.store.clusters.list(options);
}

export async function updateCluster(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  input: z.output<typeof ClusterUpdate>,
  expectedVersion?: number,
): Promise<ClusterRow> {
  const current = await getCluster(deps, name);
  const next: ClusterRow = { ...current, updatedAt: nowIso(deps) };
  if (input.displayName !== undefined) next.displayName = input.displayName;
  if (input.datacenter !== undefined) next.datacenter = input.datacenter;
  if (input.labels !== undefined) next.labels = input.labels;
  if (input.capsuleProxyUrl !== undefined) next.capsuleProxyUrl = input.capsuleProxyUrl;
  if (input.kubeconfig !== undefined) {
    next.kubeconfigCiphertext =
      input.kubeconfig === null
        ? null
        : await deps.secrets.encrypt(input.kubeconfig, kubeconfigAad(current.id));
  }
  return deps.store.transaction(async (tx) => {
    const updated = await tx.clusters.update(next, { expectedVersion: expectedVersion ?? current.version });
    await audit(tx, deps, actor, {
      action: "cluster.update",
      resource: `clusters/${name}`,
      details: {
        fields: Object.keys(input).filter((k) => k !== "kubeconfig" || input.kubeconfig !== undefined),
      },
    });
    return updated;
  });
}

/**
 * Deletes the cluster and revokes it at once (DESIGN.md §4): its certificates are marked revoked and its bootstrap
 * tokens dropped in the same transaction. Returns the deleted row; the caller tells the broker (revocation hook).
 */
export async function deleteCluster(
  deps: ServiceDeps,
  actor: Actor,
  name: string,
  expectedVersion?: number,
): Promise<ClusterRow> {
  return deps.store.transaction(async (tx) => {
    const current = await tx.clusters.get(name);
    if (!current) throw errors.notFound("cluster", name);
    const placed = await tx.tenants.list({ limit: 5, where: (t) => t.clusters.includes(name) });
    if (placed.items.length > 0) {
      throw new KubeNovaError(
        "KN-409",
        `cluster "${name}" still hosts tenants (${placed.items.map((t) => t.name).join(", ")}); move or delete them first`,
      );
    }
    await tx.clusters.delete(name, { expectedVersion: expectedVersion ?? current.version });
    await tx.changeLog.deleteCluster(current.id);
    await tx.clusterCertificates.revokeForCluster(current.id, nowIso(deps));
    await tx.bootstrapTokens.deleteForCluster(current.id);
    await audit(tx, deps, actor, { action: "cluster.delete", resource: `clusters/${name}` });
    return current;
  });
}
