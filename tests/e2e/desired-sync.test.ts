/**
 * DESIGN.md §3 with real processes over real mTLS: desired changes to many clusters while some operators are
 * offline and the Manager is SIGKILLed mid-dispatch and restarted. Every cluster reaches its latest revision and
 * each change is applied exactly once, counted at the operator. Scale with KN_E2E_CLUSTERS / KN_E2E_CHANGES
 * (defaults: the 20 clusters and 1,000 changes).
 */
import { afterAll, expect, test } from "bun:test";
import {
  createOperatorProcess,
  type ManagerProcess,
  type OperatorProcess,
  startManagerProcess,
  tempDir,
  waitUntil,
} from "./harness.ts";

const CLUSTERS = Number(process.env.KN_E2E_CLUSTERS ?? 20);
const CHANGES = Number(process.env.KN_E2E_CHANGES ?? 1000);
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test(`${CHANGES} desired changes to ${CLUSTERS} clusters, half offline, Manager SIGKILLed mid-dispatch`, async () => {
  const dir = await tempDir("kn-e2e-sync-");
  cleanups.push(dir.remove);
  const manager: ManagerProcess = await startManagerProcess(`${dir.path}/manager`);
  cleanups.push(() => manager.kill("SIGKILL"));
  const operators: OperatorProcess[] = [];
  for (let i = 0; i < CLUSTERS; i++) {
    const registered = await manager.api("POST", "/api/v1/clusters", {
      name: `dc${i}`,
      datacenter: `dc${i}`,
    });
    expect(registered.status).toBe(201);
    const operator = await createOperatorProcess({
      manager,
      clusterId: registered.body.cluster.id,
      bootstrapToken: registered.body.bootstrap.token,
      dir: `${dir.path}/op${i}`,
    });
    cleanups.push(() => operator.close());
    operators.push(operator);
  }
  const online = operators.slice(0, Math.ceil(CLUSTERS / 2));
  const offline = operators.slice(online.length);
  await Promise.all(online.map((o) => o.start()));
  await waitUntil("online clusters connected", async () => {
    const list = await manager.api("GET", "/api/v1/clusters?limit=500");
    const connected = list.body.items.filter((c: { status: string }) => c.status === "connected").length;
    return connected === online.length;
  });

  // Each tenant is placed on two clusters: one change on each.
  const tenants = Math.floor(CHANGES / 2);
  const expected = new Map<string, number>(operators.map((o) => [o.clusterId, 0]));
  for (let t = 0; t < tenants; t++) {
    const a = t % CLUSTERS;
    const b = (t + 1 + Math.floor(t / CLUSTERS)) % CLUSTERS;
    const placement = a === b ? [a] : [a, b];
    const created = await manager.api("POST", "/api/v1/tenants", {
      name: `t${t}`,
      clusters: placement.map((i) => `dc${i}`),
    });
    expect(created.status).toBe(201);
    for (const i of placement)
      expected.set(operators[i]!.clusterId, (expected.get(operators[i]!.clusterId) ?? 0) + 1);
    if (t === Math.floor(tenants / 2)) {
      await manager.kill("SIGKILL");
      await manager.start();
    }
  }
  await Promise.all(offline.map((o) => o.start()));

  const revisionOf = (o: OperatorProcess) =>
    Number(
      (
        o.kube.get({
          apiVersion: "v1",
          kind: "ConfigMap",
          namespace: "kubenova-system",
          name: "kubenova-state",
        })?.data as Record<string, string> | undefined
      )?.lastAppliedRevision ?? 0,
    );
  await waitUntil(
    "every cluster at its latest revision",
    () => operators.every((o) => revisionOf(o) === expected.get(o.clusterId)),
    60_000,
  );
  for (const operator of operators) {
    const want = expected.get(operator.clusterId)!;
    const tenantsThere = operator.kube.list({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant" });
    expect(tenantsThere.length).toBe(want);
    const stats = await operator.stats();
    // Exactly once, counted at the operator: every revision applied, none twice.
    expect(stats.desired.applied).toBe(want);
    expect(stats.desired.repeatedRevisions).toBe(0);
    expect(stats.link.lastAppliedRevision).toBe(want);
  }
  // The status reports the operators sent were committed and acknowledged.
  await waitUntil("empty outboxes", async () => {
    const all = await Promise.all(operators.map((o) => o.stats()));
    return all.every((s) => s.outbox.pending === 0);
  });
}, 180_000);
