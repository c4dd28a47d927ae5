import { describe, expect, test } from "bun:test";
import { operatorChartValues, splitImage } from "../../manager/install/chart-values.ts";
import {
  buildInstallManifests,
  type InstallManifestOptions,
  type KubeManifest,
} from "../../manager/install/manifests.ts";
import { parseOperatorConfig } from "../../shared/config.ts";
import { applyAll, startHarness } from "./apply.ts";
import { renderChart } from "./render.ts";
import { validateValues } from "./schema.ts";

const CHART = "charts/operator";
const RELEASE = { name: "kubenova-operator", namespace: "kubenova-system" };
const CLUSTER_ID = "0b6a2f5e-3c1d-4e8f-9a7b-1c2d3e4f5a6b";
const TOKEN = `knb_${"Ab3_-".repeat(8)}xyz`;
const REQUIRED = { managerUrl: "https://kubenova.example.com", clusterId: CLUSTER_ID, bootstrapToken: TOKEN };

const OPTIONS: InstallManifestOptions = {
  cluster: { id: CLUSTER_ID, name: "edge-1", capsuleProxyUrl: "https://proxy.edge-1.example.com:9001" },
  managerUrl: "https://kubenova.example.com",
  operatorImage: "registry.example.com:5000/kubenova/kubenova:0.1.0",
  bootstrapToken: TOKEN,
  targetStorageClass: "fast-ssd",
  targetLbAnnotations: "metallb.universe.tf/address-pool=public,example.com/tier=edge",
};

const chartDefaults = () => renderChart(CHART, { values: REQUIRED, release: RELEASE });

describe("charts/operator values.schema.json", () => {
  test("values.yaml with the three values the Manager's Helm command sets is valid", () => {
    expect(validateValues(CHART, chartDefaults().values)).toEqual({ valid: true, errors: [] });
  });

  test("values.yaml alone is rejected: managerUrl and clusterId are required", () => {
    expect(() => renderChart(CHART, { release: RELEASE })).toThrow(/managerUrl: must have required property/);
    expect(() => renderChart(CHART, { release: RELEASE })).toThrow(/clusterId: must have required property/);
  });

  test.each([
    ["clusterId missing", { clusterId: null }, /clusterId: must have required property/],
    ["clusterId not a UUID", { clusterId: "edge-1" }, /clusterId: must match format "uuid"/],
    ["clusterId in upper case", { clusterId: CLUSTER_ID.toUpperCase() }, /clusterId: must match pattern/],
    ["managerUrl not a URL", { managerUrl: "kubenova.example.com" }, /managerUrl: must match format "uri"/],
    [
      "managerUrl not http(s)",
      { managerUrl: "ftp://kubenova.example.com" },
      /managerUrl: must match pattern/,
    ],
    ["bootstrapToken not knb_", { bootstrapToken: "secret" }, /bootstrapToken: must match pattern/],
    [
      "an unknown pull policy",
      { image: { pullPolicy: "Sometimes" } },
      /image\.pullPolicy: must be equal to one/,
    ],
    ["a tag with a space", { image: { tag: "0.1 beta" } }, /image\.tag: must match pattern/],
    ["a bad volume size", { persistence: { size: "lots" } }, /persistence\.size: must match pattern/],
    ["a negative CPU request", { resources: { requests: { cpu: "-1" } } }, /resources\.requests\.cpu/],
    ["an unknown profile", { clusterConfig: { kubeVelaProfile: "huge" } }, /clusterConfig\.kubeVelaProfile/],
    ["a port out of range", { networkPolicy: { egress: [{ ports: [{ port: 70000 }] }] } }, /ports\.0\.port/],
    ["a typo'd top-level value", { clusterID: CLUSTER_ID }, /\(root\): must NOT have additional properties/],
    ["capsuleProxyUrl not a URL", { capsuleProxyUrl: "proxy" }, /capsuleProxyUrl/],
    [
      "annotations not k=v",
      { targetLbAnnotations: "just-a-word" },
      /targetLbAnnotations: must match pattern/,
    ],
  ])("rejects %s, naming the property", (_what, bad, message) => {
    expect(() => renderChart(CHART, { values: { ...REQUIRED, ...bad }, release: RELEASE })).toThrow(message);
  });
});

/** Where helm and install.yaml legitimately differ: the labels saying who manages an object (README). */
const HELM_ONLY_LABELS = ["app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "helm.sh/chart"];

function withoutManagementLabels(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutManagementLabels);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === "labels" && v && typeof v === "object") {
      out[key] = Object.fromEntries(Object.entries(v).filter(([k]) => !HELM_ONLY_LABELS.includes(k)));
    } else out[key] = withoutManagementLabels(v);
  }
  return out;
}

/** RBAC rules as a set of (group, resource, verb) grants: order and grouping do not change what is allowed. */
function grants(manifest: KubeManifest): string[] {
  const rules = (manifest.rules ?? []) as Array<Record<string, string[]>>;
  return rules
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).flatMap((res) => (r.verbs ?? []).map((v) => `${g}/${res}:${v}`)),
      ),
    )
    .sort();
}

/** What the comparison ignores: Helm's management labels, and the order RBAC rules are written in. */
function normalize(manifest: KubeManifest | undefined): unknown {
  if (!manifest) return manifest;
  const out = withoutManagementLabels(manifest) as Record<string, unknown>;
  if (manifest.rules) out.rules = grants(manifest);
  return out;
}

const key = (m: KubeManifest) =>
  `${m.kind} ${m.metadata.namespace ?? ""}/${m.metadata.name} (${m.apiVersion})`;
const byKey = (ms: KubeManifest[]) => new Map(ms.map((m) => [key(m), m]));

describe("charts/operator describes the objects of install.yaml", () => {
  const install = buildInstallManifests(OPTIONS);
  const chart = renderChart(CHART, { values: { ...operatorChartValues(OPTIONS) }, release: RELEASE });
  const helmObjects = [...chart.crds, ...chart.objects];

  test("the same kinds, names and namespaces; Helm creates the namespace, the chart adds a NetworkPolicy", () => {
    const fromInstall = install.filter((m) => m.kind !== "Namespace").map(key);
    const fromChart = helmObjects.filter((m) => m.kind !== "NetworkPolicy").map(key);
    expect(fromChart.sort()).toEqual(fromInstall.sort());
    expect(install.filter((m) => m.kind === "Namespace").map((m) => m.metadata.name)).toEqual([
      RELEASE.namespace,
    ]);
    expect(helmObjects.filter((m) => m.kind === "NetworkPolicy").map(key)).toEqual([
      "NetworkPolicy kubenova-system/kubenova-operator (networking.k8s.io/v1)",
    ]);
  });

  test("every object is identical but for Helm's management labels and the order of RBAC rules", () => {
    const charted = byKey(helmObjects);
    for (const manifest of install.filter((m) => m.kind !== "Namespace")) {
      const fromChart = charted.get(key(manifest));
      expect({ key: key(manifest), object: normalize(fromChart) }).toEqual({
        key: key(manifest),
        object: normalize(manifest),
      });
    }
  });

  test("the Deployment runs the same container: image, env, ports, probes, securityContext, volumes", () => {
    type Pod = {
      spec: { template: { spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } } };
    };
    const pod = (ms: KubeManifest[]) =>
      (ms.find((m) => m.kind === "Deployment") as unknown as Pod).spec.template.spec;
    const [a, b] = [pod(install), pod(helmObjects)];
    for (const field of [
      "image",
      "imagePullPolicy",
      "args",
      "env",
      "ports",
      "livenessProbe",
      "readinessProbe",
    ])
      expect(b.containers[0]?.[field]).toEqual(a.containers[0]?.[field]);
    expect(b.containers[0]?.securityContext).toEqual(a.containers[0]?.securityContext);
    expect(b.securityContext).toEqual(a.securityContext);
    expect(b.volumes).toEqual(a.volumes);
    expect(b.containers[0]?.image).toBe(OPTIONS.operatorImage);
  });

  test("the same RBAC grants, compared as sets", () => {
    const charted = byKey(helmObjects);
    for (const manifest of install.filter((m) => m.kind === "ClusterRole" || m.kind === "Role")) {
      const fromChart = charted.get(key(manifest));
      expect(fromChart).toBeDefined();
      expect(grants(fromChart as KubeManifest)).toEqual(grants(manifest));
    }
  });

  test("the env the chart sets is a valid operator configuration (shared/config.ts)", () => {
    type Env = Array<{ name: string; value?: string }>;
    const deployment = chart.objects.find((m) => m.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: Array<{ env: Env }> } } };
    };
    const env = Object.fromEntries(
      (deployment.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? "from-ref"]),
    );
    const config = parseOperatorConfig({ ...env, POD_NAMESPACE: RELEASE.namespace });
    expect(config.NOVA_CLUSTER_ID).toBe(CLUSTER_ID);
    expect(config.NOVA_MANAGER_URL).toBe(OPTIONS.managerUrl);
  });

  test("the Manager's defaults (image without a registry port, no storage class) compare the same way", () => {
    const options = { ...OPTIONS, operatorImage: "kubenova/kubenova:latest", targetStorageClass: "" };
    const rendered = renderChart(CHART, { values: { ...operatorChartValues(options) }, release: RELEASE });
    const charted = byKey([...rendered.crds, ...rendered.objects]);
    for (const manifest of buildInstallManifests(options).filter((m) => m.kind !== "Namespace"))
      expect(normalize(charted.get(key(manifest)))).toEqual(normalize(manifest));
  });

  test("splitImage keeps a registry port in the repository and defaults the tag", () => {
    expect(splitImage("registry.example.com:5000/kubenova/kubenova:0.1.0")).toEqual({
      repository: "registry.example.com:5000/kubenova/kubenova",
      tag: "0.1.0",
    });
    expect(splitImage("registry.example.com:5000/kubenova")).toEqual({
      repository: "registry.example.com:5000/kubenova",
      tag: "latest",
    });
    expect(() => splitImage("kubenova/kubenova@sha256:abc")).toThrow(/digests/);
  });
});

describe("charts/operator options", () => {
  test("existingSecret: no Secret is rendered and the token comes from the named Secret", () => {
    const { objects } = renderChart(CHART, {
      values: { ...REQUIRED, bootstrapToken: "", existingSecret: "my-token" },
      release: RELEASE,
    });
    expect(objects.filter((m) => m.kind === "Secret")).toEqual([]);
    expect(JSON.stringify(objects.find((m) => m.kind === "Deployment"))).toContain(
      '"name":"NOVA_BOOTSTRAP_TOKEN","valueFrom":{"secretKeyRef":{"name":"my-token","key":"token"}}',
    );
  });

  test("networkPolicy.enabled=false drops the NetworkPolicy", () => {
    const { objects } = renderChart(CHART, {
      values: { ...REQUIRED, networkPolicy: { enabled: false } },
      release: RELEASE,
    });
    expect(objects.map((m) => m.kind)).not.toContain("NetworkPolicy");
  });

  test("the NetworkPolicy admits only the health port and egress to DNS, the API server and the Manager", () => {
    const policy = chartDefaults().objects.find((m) => m.kind === "NetworkPolicy") as unknown as {
      spec: { policyTypes: string[]; ingress: unknown[]; egress: Array<{ ports: Array<{ port: number }> }> };
    };
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec.ingress).toEqual([{ ports: [{ port: 8081, protocol: "TCP" }] }]);
    expect(policy.spec.egress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([
      53, 53, 443, 6443, 8080, 8883,
    ]);
  });

  test("a release in another namespace puts namespaced objects and the RBAC subjects there", () => {
    const { objects } = renderChart(CHART, { values: REQUIRED, release: { name: "x", namespace: "ops" } });
    for (const m of objects.filter(
      (o) => !["ClusterRole", "ClusterRoleBinding", "NovaClusterConfig"].includes(o.kind),
    ))
      expect(`${m.kind} ${m.metadata.namespace}`).toBe(`${m.kind} ops`);
    const binding = objects.find((m) => m.kind === "ClusterRoleBinding") as unknown as {
      subjects: Array<{ namespace: string }>;
    };
    expect(binding.subjects[0]?.namespace).toBe("ops");
  });
});

describe("charts/operator against the in-memory Kubernetes API server", () => {
  test("every rendered object (CRDs first) is accepted by server-side apply and read back", async () => {
    const h = await startHarness();
    try {
      const chart = renderChart(CHART, { values: { ...operatorChartValues(OPTIONS) }, release: RELEASE });
      const applied = await applyAll(h, RELEASE.namespace, [...chart.crds, ...chart.objects]);
      expect(applied).toHaveLength(chart.crds.length + chart.objects.length);
      const config = (await h.objects.read({
        apiVersion: "kubenova.io/v1alpha1",
        kind: "NovaClusterConfig",
        metadata: { name: "kubenova" },
      })) as unknown as { spec: Record<string, unknown> };
      expect(config.spec).toEqual({
        installCapsule: true,
        installCapsuleProxy: true,
        installKubeVela: true,
        kubeVelaProfile: "standard",
      });
      const secret = await h.core.readNamespacedSecret({
        name: "kubenova-bootstrap",
        namespace: RELEASE.namespace,
      });
      expect(Buffer.from(secret.data?.token ?? "", "base64").toString()).toBe(TOKEN);
    } finally {
      await h.server.close();
    }
  });

  test("a NovaClusterConfig value outside the CRD's enum is rejected by the server when applied", async () => {
    const h = await startHarness();
    try {
      // The schema would refuse "huge" first; the CRD is the second line of defence for edited manifests.
      const chart = renderChart(CHART, { values: { ...operatorChartValues(OPTIONS) }, release: RELEASE });
      const config = chart.objects.find((m) => m.kind === "NovaClusterConfig") as KubeManifest;
      const bad = { ...config, spec: { ...(config.spec as object), kubeVelaProfile: "huge" } };
      await expect(applyAll(h, RELEASE.namespace, [bad])).rejects.toThrow(/kubeVelaProfile/);
    } finally {
      await h.server.close();
    }
  });
});
