/**
 * KEK rotation (DESIGN.md §4 "rotation re-wraps"): every envelope ciphertext the Manager stores is re-wrapped under
 * the keyring's active KEK, so the old KEK can afterwards be dropped from the keyring. The places that hold
 * envelope ciphertexts, each with the AAD that binds it to its row:
 *
 * - `clusters.kubeconfigCiphertext` — `clusters/<id>/kubeconfig`
 * - `settings["pki.ca"].privateKeyCiphertext` — `settings/pki.ca` (the generated CA's key)
 *
 * `rewrap` authenticates each record before moving it, so a corrupted or foreign row stops the rotation with a
 * KN-500 naming that row instead of being carried forward. Only the wrapped data key changes; re-running is a no-op.
 */
import { KubeNovaError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/logger.ts";
import { CA_SETTING_AAD, CA_SETTING_KEY } from "../pki/ca-store.ts";
import { kubeconfigAad } from "../services/clusters.ts";
import type { Store } from "../store/store.ts";
import type { Envelope } from "./envelope.ts";

export interface RotationReport {
  /** The KEK everything is wrapped with afterwards. */
  activeKeyId: string;
  /** Records moved to the active KEK, by the KEK they were wrapped with before. */
  rewrapped: Record<string, number>;
  /** Records that were already under the active KEK. */
  unchanged: number;
}

const PAGE = 200;

/** Re-wraps every stored envelope ciphertext under the active KEK; see the module comment. */
export async function rotateKeys(options: {
  store: Pick<Store, "clusters" | "settings">;
  envelope: Pick<Envelope, "rewrap" | "keyIdOf">;
  activeKeyId: string;
  logger?: Logger;
}): Promise<RotationReport> {
  const { store, envelope, activeKeyId, logger } = options;
  const report: RotationReport = { activeKeyId, rewrapped: {}, unchanged: 0 };
  const count = (before: string) => {
    report.rewrapped[before] = (report.rewrapped[before] ?? 0) + 1;
  };
  const move = async (ciphertext: string, aad: string, where: string): Promise<string | null> => {
    const before = envelope.keyIdOf(ciphertext);
    if (before === activeKeyId) {
      report.unchanged++;
      return null;
    }
    let next: string;
    try {
      next = await envelope.rewrap(ciphertext, aad);
    } catch (error) {
      throw new KubeNovaError("KN-500", `key rotation stopped: ${where} cannot be opened`, {
        cause: error,
        context: { where, keyId: before },
      });
    }
    count(before);
    return next;
  };

  // Cluster kubeconfigs.
  let cursor: string | undefined;
  do {
    const page = await store.clusters.list({ limit: PAGE, ...(cursor ? { cursor } : {}) });
    for (const row of page.items) {
      if (row.kubeconfigCiphertext === null) continue;
      const next = await move(row.kubeconfigCiphertext, kubeconfigAad(row.id), `clusters/${row.name}`);
      if (next === null) continue;
      // Optimistic: a concurrent edit of the cluster wins, and its new kubeconfig is sealed with the active KEK.
      const current = await store.clusters.getById(row.id);
      if (current?.kubeconfigCiphertext !== row.kubeconfigCiphertext) continue;
      await store.clusters.update(
        { ...current, kubeconfigCiphertext: next },
        { expectedVersion: current.version },
      );
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);

  // The generated CA's key.
  const stored = await store.settings.get(CA_SETTING_KEY);
  if (stored !== null) {
    const record = JSON.parse(stored) as { privateKeyCiphertext?: unknown };
    if (typeof record.privateKeyCiphertext !== "string") {
      throw new KubeNovaError("KN-500", `settings "${CA_SETTING_KEY}" does not hold a KubeNova CA record`);
    }
    const next = await move(record.privateKeyCiphertext, CA_SETTING_AAD, `settings/${CA_SETTING_KEY}`);
    if (next !== null) {
      await store.settings.put(CA_SETTING_KEY, JSON.stringify({ ...record, privateKeyCiphertext: next }));
    }
  }
  logger?.info("key-encryption keys rotated", { ...report });
  return report;
}
