/**
 * The values of `charts/operator` that install the same operator as `buildInstallManifests(options)`
 * (install.yaml): one mapping, so the chart and install.yaml can be compared (tests/charts) and a full Helm
 * command can be derived from what the Manager knows. Pure: no I/O.
 */
import type { InstallManifestOptions } from "./manifests.ts";

export interface OperatorChartValues {
  managerUrl: string;
  clusterId: string;
  clusterName: string;
  bootstrapToken: string;
  image: { repository: string; tag: string };
  targetStorageClass: string;
  targetLbAnnotations: string;
  capsuleProxyUrl: string;
  persistence: { storageClass: string };
}

/**
 * Splits `registry:5000/org/name:tag` into repository and tag (no tag means `latest`, as for a container
 * runtime). Digest references (`@sha256:…`) are not expressible in the chart's `repository:tag` form.
 */
export function splitImage(image: string): { repository: string; tag: string } {
  if (image.includes("@")) throw new Error(`image digests are not supported by the chart: ${image}`);
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return colon > slash
    ? { repository: image.slice(0, colon), tag: image.slice(colon + 1) }
    : { repository: image, tag: "latest" };
}

export function operatorChartValues(options: InstallManifestOptions): OperatorChartValues {
  const storageClass = options.targetStorageClass ?? "";
  return {
    managerUrl: options.managerUrl,
    clusterId: options.cluster.id,
    clusterName: options.cluster.name,
    bootstrapToken: options.bootstrapToken,
    image: splitImage(options.operatorImage),
    targetStorageClass: storageClass,
    targetLbAnnotations: options.targetLbAnnotations ?? "",
    capsuleProxyUrl: options.cluster.capsuleProxyUrl ?? "",
    // install.yaml puts the operator's own volume on the tenants' storage class too.
    persistence: { storageClass },
  };
}
