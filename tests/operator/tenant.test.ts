/**
 * The tenant reconciler against the in-memory API server with the real Capsule v1beta2 and NovaTenant CRDs and
 * the Capsule simulation (DESIGN.md §6, §9, §10): the objects a plan becomes, namespace attachment, zero writes
 * on a pass with nothing to do, pruning, deletion, schema refusals and the owner's RBAC.
 */
import { afterEach, expect, test } from "bun:test";
import { NOVA_API_VERSION } from "../../operator/desired.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import type { KubeClient, KubeObject } from "../../operator/kube/kube.ts";
import { TerminalError } from "../../operator/reconcilers/runtime.ts";
import { reconcileTenant, type TenantReconcilerDeps } from "../../operator/reconcilers/tenant.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";
import { waitFor } from "../kube-api/testing.ts";

const CAPSULE = "capsule.clastix.io/v1beta2";
const RBAC = "rbac.authorization.k8s.io/v1";

interface Plan {
  name: string | null;
  quotas: Record<string, unknown>;
  limitRange: Record<string, string> | null;
  allowLoadBalancers: boolean;
}

const NO_LIMITS: Plan = { name: "free", quotas: {}, limitRange: null, allowLoadBalancers: false };

function novaTenant(
  name: string,
  plan: Plan = NO_LIMITS,
  projects: Array<{ name: string; namespace: string }> = [],
): KubeObject {
  return {
    apiVersion: NOVA_API_VERSION,
    kind: "NovaTenant",
    metadata: { name, labels: { "app.kubernetes.io/managed-by": "kubenova", "kubenova.io/tenant": name } },
    spec: {
      displayName: null,
      owners: ["alice@example.com"],
      labels: {},
      plan,
      projects: projects.map((p) => ({ ...p, labels: { team: p.name } })),
    },
  };
}

const servers: KubeApiServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function setup(namespaces: string[] = []) {
  const server = await startKubeApiServer({ namespaces, simulations: { capsule: true } });
  servers.push(server);
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const reports: StatusBody[] = [];
  const deps: TenantReconcilerDeps = {
    kube,
    logger: createMemoryLogger("warn"),
    operatorIdentity: "system:serviceaccount:kubenova-system:kubenova-operator",
    report: (status) => reports.push(status),
  };
  const writes = () => server.requests.filter((r) => r.method !== "GET").length;
  /** Reconciles until the NovaTenant is Deployed (the Capsule simulation marks the Tenant Active meanwhile). */
  const untilDeployed = (name: string) =>
    waitFor(async () => {
      await reconcileTenant(name, deps);
      const phase = (
        server.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name })?.status as {
          phase?: string;
        }
      )?.phase;
      return phase === "Deployed";
    }, `${name} Deployed`);
  return { server, kube, deps, reports, writes, untilDeployed };
}

const ns = (server: KubeApiServer, name: string) => server.get({ apiVersion: "v1", kind: "Namespace", name });
const inNs = (server: KubeApiServer, apiVersion: string, kind: string, namespace: string, name: string) =>
  server.get({ apiVersion, kind, namespace, name });

interface PlanCase {
  case: string;
  plan: Plan;
  tenantSpec: Record<string, unknown>;
  absentTenantFields: string[];
  hard: Record<string, string>;
  limits: Array<Record<string, unknown>> | null;
}

const PLAN_CASES: PlanCase[] = [
  {
    case: "no quotas, no limit range, no LoadBalancers",
    plan: NO_LIMITS,
    tenantSpec: {
      serviceOptions: { allowedServices: { loadBalancer: false } },
      resourceQuotas: { scope: "Tenant", items: [{ hard: { "services.loadbalancers": "0" } }] },
    },
    absentTenantFields: ["limitRanges", "namespaceOptions"],
    hard: { "services.loadbalancers": "0" },
    limits: null,
  },
  {
    case: "quotas, limit range and LoadBalancers allowed",
    plan: {
      name: "pro",
      quotas: {
        cpu: "4",
        memory: "8Gi",
        storage: "100Gi",
        pods: 50,
        services: 10,
        loadBalancers: 2,
        namespaces: 5,
      },
      limitRange: {
        defaultCpu: "500m",
        defaultMemory: "512Mi",
        defaultRequestCpu: "100m",
        defaultRequestMemory: "128Mi",
        maxCpu: "2",
        maxMemory: "2Gi",
      },
      allowLoadBalancers: true,
    },
    tenantSpec: {
      serviceOptions: { allowedServices: { loadBalancer: true } },
      namespaceOptions: { quota: 5 },
      resourceQuotas: {
        scope: "Tenant",
        items: [
          {
            hard: {
              pods: "50",
              "requests.cpu": "4",
              "requests.memory": "8Gi",
              "requests.storage": "100Gi",
              services: "10",
              "services.loadbalancers": "2",
            },
          },
        ],
      },
      limitRanges: {
        items: [
          {
            limits: [
              {
                type: "Container",
                default: { cpu: "500m", memory: "512Mi" },
                defaultRequest: { cpu: "100m", memory: "128Mi" },
                max: { cpu: "2", memory: "2Gi" },
              },
            ],
          },
        ],
      },
    },
    absentTenantFields: [],
    hard: {
      pods: "50",
      "requests.cpu": "4",
      "requests.memory": "8Gi",
      "requests.storage": "100Gi",
      services: "10",
      "services.loadbalancers": "2",
    },
    limits: [
      {
        type: "Container",
        default: { cpu: "500m", memory: "512Mi" },
        defaultRequest: { cpu: "100m", memory: "128Mi" },
        max: { cpu: "2", memory: "2Gi" },
      },
    ],
  },
  {
    case: "a LoadBalancer quota while the plan forbids LoadBalancers pins them to 0",
    plan: {
      name: "team",
      quotas: { loadBalancers: 3, pods: 20 },
      limitRange: { maxMemory: "1Gi" },
      allowLoadBalancers: false,
    },
    tenantSpec: {
      serviceOptions: { allowedServices: { loadBalancer: false } },
      resourceQuotas: { scope: "Tenant", items: [{ hard: { pods: "20", "services.loadbalancers": "0" } }] },
      limitRanges: { items: [{ limits: [{ type: "Container", max: { memory: "1Gi" } }] }] },
    },
    absentTenantFields: ["namespaceOptions"],
    hard: { pods: "20", "services.loadbalancers": "0" },
    limits: [{ type: "Container", max: { memory: "1Gi" } }],
  },
];

test.each(PLAN_CASES)(
  "plan with $case becomes the expected objects",
  async ({ plan, tenantSpec, absentTenantFields, hard, limits }) => {
    const { server, kube, deps, reports } = await setup();
    await kube.apply(novaTenant("acme", plan, [{ name: "web", namespace: "acme-web" }]));
    await reconcileTenant("acme", deps);

    const tenant = server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" });
    expect(tenant?.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "kubenova",
      "kubenova.io/tenant": "acme",
    });
    expect(tenant?.spec).toMatchObject({
      owners: [{ kind: "ServiceAccount", name: "system:serviceaccount:acme-owner:owner" }],
      ...tenantSpec,
    });
    for (const field of absentTenantFields) expect(tenant?.spec).not.toHaveProperty(field);

    const namespaces = ["acme-apps", "acme-owner", "acme-web"];
    for (const name of namespaces) {
      expect(inNs(server, "v1", "ResourceQuota", name, "kubenova-quota")?.spec).toEqual({ hard });
      const limitRange = inNs(server, "v1", "LimitRange", name, "kubenova-limits");
      if (limits) expect(limitRange?.spec).toEqual({ limits });
      else expect(limitRange).toBeUndefined();
      expect(
        inNs(server, "networking.k8s.io/v1", "NetworkPolicy", name, "kubenova-tenant-isolation")?.spec,
      ).toEqual({
        podSelector: {},
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { "capsule.clastix.io/tenant": "acme" } } },
              { podSelector: {} },
            ],
          },
        ],
      });
      expect(inNs(server, RBAC, "RoleBinding", name, "kubenova-owner")).toMatchObject({
        roleRef: { kind: "ClusterRole", name: "admin" },
        subjects: [{ kind: "ServiceAccount", name: "owner", namespace: "acme-owner" }],
      });
      expect(inNs(server, RBAC, "RoleBinding", name, "kubenova-readonly")).toMatchObject({
        roleRef: { kind: "ClusterRole", name: "view" },
        subjects: [{ kind: "ServiceAccount", name: "readonly", namespace: "acme-owner" }],
      });
    }
    expect(inNs(server, "v1", "ServiceAccount", "acme-owner", "owner")).toBeDefined();
    expect(inNs(server, "v1", "ServiceAccount", "acme-owner", "readonly")).toBeDefined();
    expect(inNs(server, "v1", "ServiceAccount", "acme-web", "dev")).toBeDefined();
    expect(inNs(server, RBAC, "RoleBinding", "acme-web", "kubenova-dev")).toMatchObject({
      roleRef: { kind: "ClusterRole", name: "edit" },
      subjects: [{ kind: "ServiceAccount", name: "dev", namespace: "acme-web" }],
    });
    // projectDev only in its project's namespace.
    expect(inNs(server, RBAC, "RoleBinding", "acme-apps", "kubenova-dev")).toBeUndefined();

    const status = server.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" })?.status;
    expect(status).toMatchObject({ observedGeneration: 1, namespaces });
    expect(reports.at(-1)).toMatchObject({ objectKind: "tenant", key: "acme", observedGeneration: 1 });
  },
);

test("namespaces carry the Tenant ownerReference and labels; Capsule lists them in Tenant.status", async () => {
  const { server, kube, deps, untilDeployed } = await setup();
  await kube.apply(novaTenant("acme", NO_LIMITS, [{ name: "web", namespace: "acme-web" }]));
  await untilDeployed("acme");
  const tenant = server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" });
  expect(ns(server, "acme-web")?.metadata).toMatchObject({
    labels: {
      "capsule.clastix.io/tenant": "acme",
      "kubenova.io/tenant": "acme",
      "kubenova.io/project": "web",
      "app.kubernetes.io/managed-by": "kubenova",
      team: "web",
    },
    ownerReferences: [
      { apiVersion: CAPSULE, kind: "Tenant", name: "acme", uid: tenant?.metadata.uid, controller: true },
    ],
  });
  expect(ns(server, "acme-owner")?.metadata.labels).not.toHaveProperty("kubenova.io/project");
  await waitFor(
    () =>
      JSON.stringify(
        (
          server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" })?.status as {
            namespaces?: string[];
          }
        )?.namespaces,
      ) === JSON.stringify(["acme-apps", "acme-owner", "acme-web"]),
    "Tenant.status.namespaces",
  );
  expect(server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" })?.status).toMatchObject({
    state: "Active",
    size: 3,
  });
  expect(await reconcileTenant("acme", deps)).toEqual({});
});

test("a second pass with nothing changed makes zero writes and reports nothing", async () => {
  const plan: Plan = {
    name: "pro",
    quotas: { cpu: "2", memory: "4Gi", pods: 10, namespaces: 4 },
    limitRange: { defaultCpu: "200m", maxMemory: "1Gi" },
    allowLoadBalancers: true,
  };
  const { kube, deps, reports, writes, untilDeployed } = await setup();
  await kube.apply(novaTenant("acme", plan, [{ name: "web", namespace: "acme-web" }]));
  await untilDeployed("acme");
  const reported = reports.length;
  expect(reports.at(-1)).toMatchObject({ phase: "Deployed", observedGeneration: 1 });
  const before = writes();
  await reconcileTenant("acme", deps);
  await reconcileTenant("acme", deps);
  expect(writes() - before).toBe(0);
  expect(reports.length).toBe(reported);
});

test("removing a project deletes its namespace only; a new generation is reported", async () => {
  const { server, kube, deps, reports, writes, untilDeployed } = await setup(["bystander"]);
  const projects = [
    { name: "web", namespace: "acme-web" },
    { name: "api", namespace: "acme-api" },
  ];
  await kube.apply(novaTenant("acme", NO_LIMITS, projects));
  await untilDeployed("acme");
  await kube.apply(novaTenant("acme", NO_LIMITS, projects.slice(0, 1)));
  await untilDeployed("acme");
  await waitFor(() => ns(server, "acme-api") === undefined, "acme-api deleted");
  for (const name of ["acme-owner", "acme-apps", "acme-web", "bystander"])
    expect(ns(server, name)).toBeDefined();
  expect(reports.at(-1)).toMatchObject({ phase: "Deployed", observedGeneration: 2 });
  expect(
    server.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" })?.status,
  ).toMatchObject({ namespaces: ["acme-apps", "acme-owner", "acme-web"] });
  const before = writes();
  await reconcileTenant("acme", deps);
  expect(writes() - before).toBe(0);
});

test("deleting the NovaTenant removes everything it created and nothing else", async () => {
  const { server, kube, deps, reports, untilDeployed } = await setup(["bystander"]);
  // Unrelated objects, including one in a tenant namespace that someone else created.
  server.put({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "robot", namespace: "bystander" },
  });
  await kube.apply(novaTenant("acme", NO_LIMITS, [{ name: "web", namespace: "acme-web" }]));
  await kube.apply(novaTenant("globex", NO_LIMITS));
  await untilDeployed("acme");
  await untilDeployed("globex");

  await kube.delete({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" });
  await reconcileTenant("acme", deps);
  expect(reports.at(-1)).toMatchObject({ key: "acme", detail: { removed: true } });
  await waitFor(
    () => ["acme-owner", "acme-apps", "acme-web"].every((name) => ns(server, name) === undefined),
    "acme namespaces gone",
  );
  expect(server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" })).toBeUndefined();
  expect(
    server
      .list({ apiVersion: RBAC, kind: "RoleBinding" })
      .filter((rb) => rb.metadata.labels?.["kubenova.io/tenant"] === "acme"),
  ).toEqual([]);

  expect(ns(server, "bystander")).toBeDefined();
  expect(inNs(server, "v1", "ServiceAccount", "bystander", "robot")).toBeDefined();
  expect(server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "globex" })).toBeDefined();
  for (const name of ["globex-owner", "globex-apps"]) expect(ns(server, name)).toBeDefined();
  expect(inNs(server, RBAC, "RoleBinding", "globex-apps", "kubenova-owner")).toBeDefined();

  // Gone stays gone: another pass neither writes nor reports.
  const reported = reports.length;
  await reconcileTenant("acme", deps);
  expect(reports.length).toBe(reported);
});

test("an object the Capsule Tenant schema refuses ends in phase Error with the server's message", async () => {
  const { server, kube, deps, reports } = await setup();
  // The NovaTenant CRD takes any string for cpu; the real Capsule schema requires a quantity.
  await kube.apply(novaTenant("acme", { ...NO_LIMITS, quotas: { cpu: "two cores" } }));
  let thrown: unknown;
  try {
    await reconcileTenant("acme", deps);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TerminalError);
  const message = (thrown as Error).message;
  expect(message).toContain("requests.cpu");
  expect(
    server.get({ apiVersion: NOVA_API_VERSION, kind: "NovaTenant", name: "acme" })?.status,
  ).toMatchObject({
    phase: "Error",
    observedGeneration: 1,
    conditions: [{ type: "Ready", status: "False", reason: "Error", message }],
  });
  expect(reports).toEqual([
    { objectKind: "tenant", key: "acme", observedGeneration: 1, phase: "Error", message },
  ]);
  expect(server.get({ apiVersion: CAPSULE, kind: "Tenant", name: "acme" })).toBeUndefined();
  expect(ns(server, "acme-owner")).toBeUndefined();
});

async function createConfigMap(server: KubeApiServer, token: string, namespace: string): Promise<number> {
  const response = await fetch(`${server.url}/api/v1/namespaces/${namespace}/configmaps`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "hello" },
      data: { a: "1" },
    }),
  });
  return response.status;
}

test("a tenant owner's token works in its own namespaces and is refused in another tenant's", async () => {
  const { server, kube, deps } = await setup();
  await kube.apply(novaTenant("acme", NO_LIMITS, [{ name: "web", namespace: "acme-web" }]));
  await kube.apply(novaTenant("globex", NO_LIMITS));
  await reconcileTenant("acme", deps);
  await reconcileTenant("globex", deps);
  const { token } = await kube.createToken("acme-owner", "owner", 600);
  for (const namespace of ["acme-owner", "acme-apps", "acme-web"]) {
    expect(await createConfigMap(server, token, namespace)).toBe(201);
  }
  expect(await createConfigMap(server, token, "globex-apps")).toBe(403);
  expect(await createConfigMap(server, token, "default")).toBe(403);
  // readonly may look but not touch.
  const readonly = await kube.createToken("acme-owner", "readonly", 600);
  expect(await createConfigMap(server, readonly.token, "acme-apps")).toBe(403);
  const asReadonly: KubeClient = createKubeClient({
    kubeconfig: server.kubeconfig({ token: readonly.token }),
  });
  expect((await asReadonly.list("v1", "ConfigMap", { namespace: "acme-apps" })).length).toBe(1);
});
