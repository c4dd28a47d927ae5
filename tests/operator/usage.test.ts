/** The usage collector against the in-memory API server, with numbers computed by hand. */
import { expect, test } from "bun:test";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import type { KubeObject } from "../../operator/kube/kube.ts";
import {
  compareQuantities,
  createUsageCollector,
  parseMilliQuantity,
  parseQuantity,
  windowContaining,
} from "../../operator/usage.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { UsageBody } from "../../shared/messages.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";
import { waitFor } from "../sync/fixtures.ts";

test.each([
  ["500m", 500],
  ["1.5", 1500],
  ["1", 1000],
  [".5", 500],
  ["0.25", 250],
  ["2.5k", 2_500_000],
  ["1e3", 1_000_000],
  ["1.5e-3", 2], // 1.5 millicores, rounded up as Kubernetes' MilliValue() does
  ["12345n", 1],
  ["100u", 1],
])("CPU %s is %d millicores", (text, millicores) => {
  expect(parseMilliQuantity(text)).toBe(millicores);
});

test.each([
  ["2Gi", 2_147_483_648],
  ["1Ki", 1024],
  ["0.5Gi", 536_870_912],
  ["1.5Gi", 1_610_612_736],
  ["256Mi", 268_435_456],
  ["1Ti", 1_099_511_627_776],
  ["1Pi", 1_125_899_906_842_624],
  ["100M", 100_000_000],
  ["1G", 1_000_000_000],
  ["1e3", 1000],
  ["1E3", 1000], // an exponent, not exa
  ["1E", 1e18], // exa
  ["2Ei", 2 * 2 ** 60],
  ["128974848", 128_974_848],
  ["+5k", 5000],
  ["100m", 1], // a tenth of a byte rounds up to one, as Quantity.Value() does
])("memory %s is %d bytes", (text, bytes) => {
  expect(parseQuantity(text)).toBe(bytes);
});

test.each(["", "Mi", "1.2.3", "1 Gi", "1mi", "1Kb", "e3", "1e", "0x10"])("%p is not a quantity", (text) => {
  expect(() => parseQuantity(text)).toThrow("not a Kubernetes quantity");
});

test("quantities compare exactly across units", () => {
  expect(compareQuantities("1Gi", "1073741824")).toBe(0);
  expect(compareQuantities("1750m", "2")).toBe(-1);
  expect(compareQuantities("1G", "1Gi")).toBe(-1);
  expect(compareQuantities("0.1", "100m")).toBe(0);
});

test("windows are aligned to the interval; the last millisecond belongs to the closing window", () => {
  const hour = 3_600_000;
  expect(windowContaining(new Date("2025-03-01T09:59:59.999Z"), hour)).toEqual({
    start: new Date("2025-03-01T09:00:00.000Z"),
    end: new Date("2025-03-01T10:00:00.000Z"),
  });
  expect(windowContaining(new Date("2025-03-01T10:00:00.000Z"), hour)).toEqual({
    start: new Date("2025-03-01T10:00:00.000Z"),
    end: new Date("2025-03-01T11:00:00.000Z"),
  });
  expect(windowContaining(new Date("2025-03-01T10:07:30.000Z"), 15 * 60_000).start).toEqual(
    new Date("2025-03-01T10:00:00.000Z"),
  );
});

const ns = (name: string, tenant?: string, project?: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: {
    name,
    labels: {
      ...(tenant ? { "kubenova.io/tenant": tenant } : {}),
      ...(project ? { "kubenova.io/project": project } : {}),
    },
  },
  status: { phase: "Active" },
});

const pod = (
  namespace: string,
  name: string,
  phase: string,
  requests: Array<{ cpu?: string; memory?: string } | null>,
): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace },
  spec: {
    containers: requests.map((r, i) => ({
      name: `c${i}`,
      image: "app",
      ...(r ? { resources: { requests: r } } : {}),
    })),
  },
  status: { phase },
});

const pvc = (namespace: string, name: string, requested: string, capacity?: string): KubeObject => ({
  apiVersion: "v1",
  kind: "PersistentVolumeClaim",
  metadata: { name, namespace },
  spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: requested } } },
  status: capacity ? { phase: "Bound", capacity: { storage: capacity } } : { phase: "Pending" },
});

const service = (namespace: string, name: string, type: string): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace },
  spec: { type, ports: [{ port: 80 }] },
});

const quota = (
  namespace: string,
  name: string,
  hard: Record<string, string>,
  used: Record<string, string>,
): KubeObject => ({
  apiVersion: "v1",
  kind: "ResourceQuota",
  metadata: { name, namespace },
  spec: { hard },
  status: { hard, used },
});

const application = (namespace: string, name: string): KubeObject => ({
  apiVersion: "core.oam.dev/v1beta1",
  kind: "Application",
  metadata: { name, namespace },
  spec: { components: [] },
});

function seed(server: KubeApiServer): void {
  for (const object of [
    ns("acme-owner", "acme"),
    ns("acme-web", "acme", "web"),
    ns("acme-api", "acme", "api"),
    ns("beta-owner", "beta"),
    ns("other"),
    // acme-owner
    pod("acme-owner", "tool", "Running", [{ cpu: "2", memory: "1Gi" }]),
    service("acme-owner", "ingress", "LoadBalancer"),
    // acme-web
    pod("acme-web", "web-1", "Running", [
      { cpu: "500m", memory: "256Mi" },
      { cpu: "0.25", memory: "1.5Gi" },
    ]),
    pod("acme-web", "web-2", "Pending", [{ cpu: "1", memory: "100M" }]),
    pod("acme-web", "web-done", "Succeeded", [{ cpu: "4", memory: "4Gi" }]),
    pvc("acme-web", "data", "5Gi", "10Gi"),
    pvc("acme-web", "waiting", "1G"),
    service("acme-web", "lb", "LoadBalancer"),
    service("acme-web", "internal", "ClusterIP"),
    application("acme-web", "shop"),
    application("acme-web", "blog"),
    quota(
      "acme-web",
      "plan",
      { pods: "10", "requests.cpu": "2", "requests.memory": "2Gi", "services.loadbalancers": "1" },
      { pods: "2", "requests.cpu": "1750m", "requests.memory": "1979048192", "services.loadbalancers": "1" },
    ),
    // acme-api
    pod("acme-api", "api-1", "Running", [{ cpu: "0.1", memory: "128974848" }, null]),
    pvc("acme-api", "db", "512Mi", "512Mi"),
    quota(
      "acme-api",
      "plan",
      { "services.loadbalancers": "0", pods: "1", "requests.storage": "1Gi" },
      { "services.loadbalancers": "0", pods: "2", "requests.storage": "1Gi" },
    ),
    // not a tenant's: never counted
    pod("other", "big", "Running", [{ cpu: "8", memory: "64Gi" }]),
    service("other", "lb", "LoadBalancer"),
  ]) {
    server.put(object);
  }
}

test("per-tenant usage equals the hand-computed numbers", async () => {
  const server = await startKubeApiServer();
  try {
    seed(server);
    const reports: UsageBody[] = [];
    const collector = createUsageCollector({
      kube: createKubeClient({ kubeconfig: server.kubeconfig() }),
      logger: createMemoryLogger(),
      report: (bodies) => reports.push(...bodies),
    });
    const window = { start: new Date("2025-03-01T09:00:00Z"), end: new Date("2025-03-01T10:00:00Z") };
    const bodies = await collector.collect(window);
    expect(reports).toEqual(bodies);
    expect(reports.map((r) => r.tenant).sort()).toEqual(["acme", "beta"]);

    const web = {
      cpuRequestMillicores: 1750, // web-1: 500m + 0.25 (250m); web-2: 1000m; web-done Succeeded: not counted
      memoryRequestBytes: 1_979_048_192, // 256Mi 268435456 + 1.5Gi 1610612736 + 100M 100000000
      storageBytes: 11_737_418_240, // data: capacity 10Gi 10737418240 (not the 5Gi asked); waiting: 1G 1e9
      loadBalancers: 1,
      pods: 2, // web-1, web-2
      namespaces: 1,
      applications: 2,
      quotaViolations: 1, // services.loadbalancers 1 >= 1; memory 1979048192 < 2Gi 2147483648; cpu 1750m < 2
    };
    const api = {
      cpuRequestMillicores: 100, // 0.1; the second container requests nothing
      memoryRequestBytes: 128_974_848,
      storageBytes: 536_870_912, // 512Mi
      loadBalancers: 0,
      pods: 1,
      namespaces: 1,
      applications: 0,
      quotaViolations: 2, // pods 2 > 1, requests.storage 1Gi >= 1Gi; loadbalancers 0 of 0 is a respected ban
    };
    const acme = reports.find((r) => r.tenant === "acme");
    expect(acme).toEqual({
      tenant: "acme",
      windowStart: "2025-03-01T09:00:00.000Z",
      windowEnd: "2025-03-01T10:00:00.000Z",
      metrics: {
        cpuRequestMillicores: 3850, // web 1750 + api 100 + owner tool 2000
        memoryRequestBytes: 3_181_764_864, // 1979048192 + 128974848 + 1Gi 1073741824
        storageBytes: 12_274_289_152, // 11737418240 + 536870912
        loadBalancers: 2, // acme-web lb + acme-owner ingress
        pods: 4, // 2 + 1 + tool
        namespaces: 3,
        applications: 2,
        quotaViolations: 3, // 1 + 2
      },
      byProject: { web, api },
    });
    expect(reports.find((r) => r.tenant === "beta")).toEqual({
      tenant: "beta",
      windowStart: "2025-03-01T09:00:00.000Z",
      windowEnd: "2025-03-01T10:00:00.000Z",
      metrics: {
        cpuRequestMillicores: 0,
        memoryRequestBytes: 0,
        storageBytes: 0,
        loadBalancers: 0,
        pods: 0,
        namespaces: 1,
        applications: 0,
        quotaViolations: 0,
      },
      byProject: {},
    });
  } finally {
    await server.close();
  }
});

test("start() reports the window that just closed, once per tenant; collectNow() the last closed one", async () => {
  const server = await startKubeApiServer();
  try {
    seed(server);
    const reports: UsageBody[] = [];
    // 10 ms before the top of the hour: the timer fires at 10:00 and reports [09:00, 10:00).
    let clock = new Date("2025-03-01T09:59:59.990Z");
    const collector = createUsageCollector({
      kube: createKubeClient({ kubeconfig: server.kubeconfig() }),
      logger: createMemoryLogger(),
      report: (bodies) => reports.push(...bodies),
      now: () => clock,
    });
    collector.start();
    await waitFor("the closing window's reports", () => reports.length === 2, 5000);
    collector.stop();
    for (const report of reports) {
      expect(report.windowStart).toBe("2025-03-01T09:00:00.000Z");
      expect(report.windowEnd).toBe("2025-03-01T10:00:00.000Z");
    }

    clock = new Date("2025-03-01T10:20:00.000Z");
    expect(await collector.collectNow()).toEqual({
      reports: 2,
      windowStart: "2025-03-01T09:00:00.000Z",
      windowEnd: "2025-03-01T10:00:00.000Z",
    });
  } finally {
    await server.close();
  }
});
