/**
 * What this cluster can run, from API discovery (DESIGN.md §3 `hello`, §7 "CRD mismatch"): the served API groups
 * (`group → versions`, the format of `hello.capabilities`) and the versions of the two add-ons KubeNova drives.
 * The Manager answers 422 for intents a cluster's capabilities cannot run.
 */
import type { KubeClient } from "./kube/kube.ts";

/** The API versions KubeNova writes (DESIGN.md §6): Capsule `Tenant` v1beta2, KubeVela `Application` v1beta1. */
export const REQUIRED_APIS = {
  capsule: { group: "capsule.clastix.io", version: "v1beta2" },
  kubevela: { group: "core.oam.dev", version: "v1beta1" },
} as const;

export interface ClusterCapabilities {
  /** API group → served versions; sent as `hello.capabilities`. */
  groups: Record<string, string[]>;
  /** `capsule.clastix.io/v1beta2` when served, else null. */
  capsule: string | null;
  /** `core.oam.dev/v1beta1` when served, else null. */
  kubevela: string | null;
}

const served = (groups: Record<string, string[]>, api: { group: string; version: string }) =>
  groups[api.group]?.includes(api.version) ? `${api.group}/${api.version}` : null;

/** Reads discovery once; a discovery failure throws (KubeApiError) so the caller can retry before `hello`. */
export async function detectCapabilities(
  kube: Pick<KubeClient, "servedGroups">,
): Promise<ClusterCapabilities> {
  const groups = await kube.servedGroups();
  return {
    groups,
    capsule: served(groups, REQUIRED_APIS.capsule),
    kubevela: served(groups, REQUIRED_APIS.kubevela),
  };
}
