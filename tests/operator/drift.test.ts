/**
 * Drift (DESIGN.md §6, §7): someone deletes or edits an object the tenant reconciler manages; the watch enqueues
 * the tenant, the status goes `Drifted`, the object is repaired and the status is `Deployed` again.
 */
import { afterEach, expect, test } from "bun:test";
import { NOVA_API_VERSION } from "../../operator/desired.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import type { WatchHandle } from "../../operator/kube/kube.ts";
import { watchTenantDrift } from "../../operator/reconcilers/drift.ts";
import { type Controller, createController } from "../../operator/reconcilers/runtime.ts";
import { reconcileTenant } from "../../operator/reconcilers/tenant.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";
import { waitFor } from "../kube-api/testing.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startOperator() {
  const server = await startKubeApiServer({ simulations: { capsule: true } });
  cleanups.push(() => server.close());
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const logger = createMemoryLogger("warn");
  const reports: StatusBody[] = [];
  const controller: Controller = createController({
    name: "tenant",
    logger,
    backoff: { initialMs: 20, maxMs: 200 },
    reconcile: (key) =>
      reconcileTenant(key, {
        kube,
        logger,
        operatorIdentity: "system:serviceaccount:kubenova-system:kubenova-operator",
        report: (status) => reports.push(status),
      }),
  });
  cleanups.push(() => controller.stop());
  const watch: WatchHandle = await watchTenantDrift({
    kube,
    logger,
    enqueue: (name) => controller.enqueue(name),
  });
  cleanups.push(() => watch.stop());
  await kube.apply({
    apiVersion: NOVA_API_VERSION,
    kind: "NovaTenant",
    metadata: { name: "acme" },
    spec: {
      displayName: null,
      owners: [],
      labels: {},
      plan: { name: "pro", quotas: { pods: 10, cpu: "2" }, limitRange: null, allowLoadBalancers: false },
      projects: [{ name: "web", namespace: "acme-web", labels: {} }],
    },
  });
  await waitFor(() => reports.at(-1)?.phase === "Deployed", "acme Deployed");
  return { server, reports };
}

const phasesSince = (reports: StatusBody[], from: number) => reports.slice(from).map((r) => r.phase);

test.each([
  {
    change: "someone deletes a managed RoleBinding",
    ref: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      namespace: "acme-web",
      name: "kubenova-dev",
    },
    act: (server: KubeApiServer) =>
      server.delete({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        namespace: "acme-web",
        name: "kubenova-dev",
      }),
    repaired: { roleRef: { name: "edit" }, subjects: [{ name: "dev", namespace: "acme-web" }] },
  },
  {
    change: "someone raises a managed ResourceQuota",
    ref: { apiVersion: "v1", kind: "ResourceQuota", namespace: "acme-apps", name: "kubenova-quota" },
    act: async (server: KubeApiServer) => {
      // A real client's merge patch (another field manager), as `kubectl edit` would send.
      const response = await fetch(
        `${server.url}/api/v1/namespaces/acme-apps/resourcequotas/kubenova-quota`,
        {
          method: "PATCH",
          headers: {
            authorization: `Bearer ${server.adminToken}`,
            "content-type": "application/merge-patch+json",
          },
          body: JSON.stringify({ spec: { hard: { pods: "1000" } } }),
        },
      );
      expect(response.status).toBe(200);
    },
    repaired: { spec: { hard: { pods: "10", "requests.cpu": "2", "services.loadbalancers": "0" } } },
  },
])("$change → Drifted, repaired, Deployed again", async ({ ref, act, repaired }) => {
  const { server, reports } = await startOperator();
  const from = reports.length;
  await act(server);
  await waitFor(() => phasesSince(reports, from).join() === "Drifted,Deployed", "Drifted then Deployed");
  expect(reports.slice(from)[0]).toMatchObject({ objectKind: "tenant", key: "acme", observedGeneration: 1 });
  expect(server.get(ref)).toMatchObject(repaired);
  expect(
    server.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" })?.status,
  ).toMatchObject({
    phase: "Deployed",
    conditions: [{ type: "Ready", status: "True" }],
  });
});

test("the watch enqueues a deleted NovaTenant and its objects are removed", async () => {
  const { server, reports } = await startOperator();
  server.delete({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" });
  await waitFor(() => reports.at(-1)?.detail?.removed === true, "removal reported");
  await waitFor(
    () =>
      server.get({ apiVersion: "capsule.clastix.io/v1beta2", kind: "Tenant", name: "acme" }) === undefined &&
      server.get({ apiVersion: "v1", kind: "Namespace", name: "acme-web" }) === undefined,
    "acme objects gone",
  );
});

test("a deleted NovaTenant is enqueued once more (for its cleanup) and then reported as deleted", async () => {
  const server = await startKubeApiServer({});
  cleanups.push(() => server.close());
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const calls: string[] = [];
  const watch = await watchTenantDrift({
    kube,
    logger: createMemoryLogger("warn"),
    enqueue: (name) => calls.push(`enqueue ${name}`),
    deleted: (name) => calls.push(`deleted ${name}`),
  });
  cleanups.push(() => watch.stop());
  const ref = { apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "gone" };
  await kube.apply({
    ...ref,
    metadata: { name: "gone" },
    spec: {
      displayName: null,
      owners: [],
      labels: {},
      plan: { name: null, quotas: {}, limitRange: null, allowLoadBalancers: false },
      projects: [],
    },
  });
  await waitFor(() => calls.includes("enqueue gone"), "the NovaTenant seen");
  await kube.delete(ref);
  await waitFor(() => calls.includes("deleted gone"), "the deletion seen");
  expect(calls).toEqual(["enqueue gone", "enqueue gone", "deleted gone"]);
});
