/**
 * Whether a cluster can run an intent (DESIGN.md §7 "CRD mismatch in a cluster"): the capabilities an operator
 * reported in `hello` (API group → served versions) must serve the API KubeNova will write there. A cluster that
 * has not reported yet is allowed — the intent waits in its change log until the operator connects.
 */
import { KubeNovaError } from "../../shared/errors.ts";
import type { ClusterRow } from "../store/store.ts";

/** What each kind of intent needs served (DESIGN.md §6). Mirrors operator/capabilities.ts REQUIRED_APIS. */
const NEEDS = {
  apps: { group: "core.oam.dev", version: "v1beta1", what: "KubeVela" },
  tenants: { group: "capsule.clastix.io", version: "v1beta2", what: "Capsule" },
} as const;

/**
 * Throws KN-422 naming `field` and the cluster when the cluster reported capabilities that lack the API `needs`
 * requires. `field` is the request field that chose the cluster (e.g. `clusters.0`, `cluster`, `project`).
 */
export function assertClusterCanRun(
  cluster: Pick<ClusterRow, "name" | "capabilities">,
  needs: keyof typeof NEEDS,
  field = "cluster",
): void {
  if (Object.keys(cluster.capabilities).length === 0) return;
  const need = NEEDS[needs];
  if (cluster.capabilities[need.group]?.includes(need.version)) return;
  const message = `cluster "${cluster.name}" does not serve ${need.group}/${need.version} (${need.what}), which ${needs} need`;
  throw new KubeNovaError("KN-422", `${field}: ${message}`, {
    details: [{ path: field, message }],
    context: { cluster: cluster.name, needs: `${need.group}/${need.version}` },
  });
}
