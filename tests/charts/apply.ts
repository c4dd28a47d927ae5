/**
 * Applying rendered chart objects to the in-memory Kubernetes API server (tests/kube-api) the way
 * `helm install --create-namespace` would end up: the namespace, then every object by server-side apply.
 */
import { type Harness, k8s, startHarness } from "../kube-api/testing.ts";

export { startHarness };

/** The server's message from a failed client-node call (the Status body), or the error itself. */
function reason(error: unknown): string {
  const e = error as { code?: number; body?: unknown };
  if (typeof e.code !== "number") return String(error);
  const body = typeof e.body === "string" ? (JSON.parse(e.body) as { message?: string }) : e.body;
  return `HTTP ${e.code}: ${(body as { message?: string } | undefined)?.message ?? ""}`;
}

/**
 * Server-side applies `objects` in order (field manager `helm`) after creating `namespace`. Objects go through
 * `k8s.loadYaml` so client-node keeps the schema keys (`enum`, `default`, `x-kubernetes-*`) it drops from plain
 * objects (manager/install/kube-installer.ts). Throws naming the object the server refused.
 */
export async function applyAll(
  h: Harness,
  namespace: string,
  objects: ReadonlyArray<{ apiVersion: string; kind: string; metadata: { name: string } }>,
): Promise<k8s.KubernetesObject[]> {
  const apply = (obj: object) =>
    h.objects.patch(
      k8s.loadYaml<k8s.KubernetesObject>(JSON.stringify(obj)),
      undefined,
      undefined,
      "helm",
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
  await apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  const applied: k8s.KubernetesObject[] = [];
  for (const obj of objects) {
    try {
      applied.push(await apply(obj));
    } catch (error) {
      throw new Error(`${obj.kind} ${obj.metadata.name}: ${reason(error)}`);
    }
  }
  return applied;
}
