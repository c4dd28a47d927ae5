/** Store rows for tests that write the store directly. */
import type { ClusterRow } from "../../manager/store/store.ts";
import { uuidv7 } from "../../shared/ids.ts";

export function clusterRow(name: string, overrides: Partial<ClusterRow> = {}): ClusterRow {
  const now = new Date().toISOString();
  return {
    id: uuidv7(),
    name,
    displayName: null,
    datacenter: "lab",
    labels: {},
    capsuleProxyUrl: null,
    status: "pending_bootstrap",
    statusReason: null,
    versions: {},
    capabilities: {},
    kubeconfigCiphertext: null,
    lastSeenAt: null,
    revokedAt: null,
    createdAt: now,
    updatedAt: now,
    version: 1,
    ...overrides,
  };
}
