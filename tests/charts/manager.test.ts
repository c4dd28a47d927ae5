import { describe, expect, test } from "bun:test";
import type { KubeManifest } from "../../manager/install/manifests.ts";
import { MANAGER_ENV, parseManagerConfig } from "../../shared/config.ts";
import { applyAll, startHarness } from "./apply.ts";
import { renderChart } from "./render.ts";
import { validateValues } from "./schema.ts";

const CHART = "charts/manager";
const RELEASE = { name: "kubenova", namespace: "kubenova" };

type Env = Array<{
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}>;
interface Container {
  env: Env;
  ports: Array<{ name: string; containerPort: number; protocol: string }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: Record<string, unknown>;
}
interface PodSpec {
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: Array<Record<string, unknown>>;
}

const render = (values: Record<string, unknown> = {}) => renderChart(CHART, { values, release: RELEASE });
const find = (objects: KubeManifest[], kind: string) => objects.find((m) => m.kind === kind);
const podSpec = (objects: KubeManifest[]) =>
  (find(objects, "Deployment") as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const container = (objects: KubeManifest[]) => podSpec(objects).containers[0] as Container;

/** The environment the Manager process would see, with Secret references resolved from `secrets`. */
function processEnv(env: Env, secrets: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(
    env.map((e) => {
      const ref = e.valueFrom?.secretKeyRef;
      return [e.name, ref ? (secrets[`${ref.name}/${ref.key}`] ?? "") : (e.value ?? "")];
    }),
  );
}

describe("charts/manager values.schema.json", () => {
  test("values.yaml is valid on its own", () => {
    expect(validateValues(CHART, render().values)).toEqual({ valid: true, errors: [] });
  });

  test.each([
    ["negative replicas", { replicas: -1 }, /replicas: must be >= 0/],
    ["fractional replicas", { replicas: 1.5 }, /replicas: must be integer/],
    ["a database URL that is not Postgres or SQLite", { database: { url: "mysql://db" } }, /database\.url/],
    [
      "an http MQTT public URL",
      { mqtt: { publicUrl: "http://mqtt.example.com" } },
      /mqtt\.publicUrl: must match/,
    ],
    ["a public URL that is not a URL", { publicUrl: "kubenova" }, /publicUrl/],
    ["a service port out of range", { service: { httpPort: 0 } }, /service\.httpPort: must be >= 1/],
    ["an unknown service type", { service: { type: "External" } }, /service\.type: must be equal to one/],
    ["an unknown log level", { logLevel: "trace" }, /logLevel: must be equal to one/],
    [
      "a Secret name with capitals",
      { jwt: { existingSecret: "My_Secret" } },
      /jwt\.existingSecret: must match/,
    ],
    ["an unknown value", { databaseUrl: "postgres://db" }, /\(root\): must NOT have additional properties/],
    ["several replicas on SQLite", { replicas: 3 }, /database/],
    [
      "several replicas with the embedded broker",
      { replicas: 3, database: { existingSecret: "db" }, persistence: { enabled: false } },
      /mqtt\.externalUrl: must NOT have fewer than 1 characters/,
    ],
    [
      "several replicas on one ReadWriteOnce volume",
      { replicas: 2, database: { existingSecret: "db" }, mqtt: { externalUrl: "mqtts://emqx:8883" } },
      /persistence\.enabled: must be equal to constant/,
    ],
  ])("rejects %s, naming the property", (_what, bad, message) => {
    expect(() => render(bad)).toThrow(message);
  });

  test("several replicas on Postgres with an external broker and no volume are accepted", () => {
    const { objects } = render({
      replicas: 3,
      database: { existingSecret: "db" },
      mqtt: { externalUrl: "mqtts://emqx.example.com:8883" },
      persistence: { enabled: false },
    });
    expect(find(objects, "PersistentVolumeClaim")).toBeUndefined();
    const spec = find(objects, "Deployment")?.spec as { replicas: number; strategy?: unknown };
    expect(spec.replicas).toBe(3);
    expect(spec.strategy).toBeUndefined();
    expect(podSpec(objects).volumes).toContainEqual({ name: "data", emptyDir: {} });
  });
});

describe("charts/manager renders", () => {
  test("the objects: ServiceAccount, Service, PVC, Deployment, NetworkPolicy, no CRDs", () => {
    const chart = render();
    expect(chart.crds).toEqual([]);
    expect(chart.objects.map((m) => `${m.kind} ${m.metadata.namespace}/${m.metadata.name}`).sort()).toEqual([
      "Deployment kubenova/kubenova",
      "NetworkPolicy kubenova/kubenova",
      "PersistentVolumeClaim kubenova/kubenova-data",
      "Service kubenova/kubenova",
      "ServiceAccount kubenova/kubenova",
    ]);
  });

  test("a non-root, read-only container probed on /healthz and /readyz over the http port", () => {
    const { objects } = render();
    expect(podSpec(objects).securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    const c = container(objects);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.ports).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "mqtts", containerPort: 8883, protocol: "TCP" },
    ]);
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
  });

  test("the Service exposes http 8080 and mqtts 8883 to the Deployment's pods", () => {
    const { objects } = render();
    const service = find(objects, "Service") as unknown as {
      spec: {
        selector: Record<string, string>;
        ports: Array<{ name: string; port: number; targetPort: string }>;
      };
    };
    expect(service.spec.ports.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ["http", 8080, "http"],
      ["mqtts", 8883, "mqtts"],
    ]);
    const podLabels = (
      find(objects, "Deployment") as unknown as {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      }
    ).spec.template.metadata.labels;
    expect(podLabels).toMatchObject(service.spec.selector);
  });

  test("every variable is one of MANAGER_ENV, and the defaults parse into a SQLite Manager on 0.0.0.0:8080", () => {
    const env = container(render().objects).env;
    for (const { name } of env) expect(Object.keys(MANAGER_ENV)).toContain(name);
    const config = parseManagerConfig(processEnv(env));
    expect(config.http).toMatchObject({ host: "0.0.0.0", port: 8080 });
    expect(config.mqtt.port).toBe(8883);
    expect(config.databaseUrl).toBeNull();
    expect(config.dataDir).toBe("/var/lib/kubenova");
  });

  test("Secrets for the database, JWT and KEK are referenced, never inlined, and parse as the Manager's config", () => {
    const values = {
      publicUrl: "https://kubenova.example.com",
      database: { existingSecret: "kubenova-db" },
      jwt: { existingSecret: "kubenova-jwt" },
      kek: { existingSecret: "kubenova-kek" },
      mqtt: { publicUrl: "mqtts://mqtt.example.com:8883", sans: "mqtt.example.com" },
      otlpEndpoint: "http://collector:4318",
      operatorImage: "registry.example.com/kubenova/kubenova:0.1.0",
    };
    const env = container(render(values).objects).env;
    const refs = env
      .filter((e) => e.valueFrom)
      .map((e): [string, unknown] => [e.name, e.valueFrom?.secretKeyRef]);
    expect(refs).toEqual([
      ["KUBENOVA_DATABASE_URL", { name: "kubenova-db", key: "url" }],
      ["KUBENOVA_JWT_SECRET", { name: "kubenova-jwt", key: "secret" }],
      ["KUBENOVA_KEK", { name: "kubenova-kek", key: "keys" }],
      ["KUBENOVA_KEK_ACTIVE", { name: "kubenova-kek", key: "active", optional: true }],
    ]);
    const config = parseManagerConfig(
      processEnv(env, {
        "kubenova-db/url": "postgres://kubenova:pw@postgres:5432/kubenova",
        "kubenova-jwt/secret": "x".repeat(32),
        "kubenova-kek/keys": `k1:${Buffer.alloc(32, 1).toString("base64")}`,
        "kubenova-kek/active": "k1",
      }),
    );
    expect(config.databaseUrl).toStartWith("postgres://");
    expect(config.publicUrl).toBe("https://kubenova.example.com");
    expect(config.mqtt.publicUrl).toBe("mqtts://mqtt.example.com:8883");
    expect(config.mqtt.serverNames).toEqual(["mqtt.example.com"]);
    expect(config.otlpEndpoint).toBe("http://collector:4318");
    expect(config.operatorImage).toBe("registry.example.com/kubenova/kubenova:0.1.0");
    expect(config.kek).toEqual({ keys: `k1:${Buffer.alloc(32, 1).toString("base64")}`, activeKeyId: "k1" });
  });

  test("the NetworkPolicy admits only the API and broker ports", () => {
    const policy = find(render().objects, "NetworkPolicy") as unknown as {
      spec: { podSelector: { matchLabels: Record<string, string> }; ingress: unknown[] };
    };
    expect(policy.spec.ingress).toEqual([
      {
        ports: [
          { port: 8080, protocol: "TCP" },
          { port: 8883, protocol: "TCP" },
        ],
      },
    ]);
    expect(policy.spec.podSelector.matchLabels).toEqual({
      "app.kubernetes.io/name": "kubenova-manager",
      "app.kubernetes.io/instance": RELEASE.name,
    });
    expect(render({ networkPolicy: { enabled: false } }).objects.map((m) => m.kind)).not.toContain(
      "NetworkPolicy",
    );
  });

  test("a LoadBalancer Service carries its annotations", () => {
    const service = find(
      render({
        service: { type: "LoadBalancer", annotations: { "metallb.universe.tf/address-pool": "public" } },
      }).objects,
      "Service",
    ) as unknown as { metadata: { annotations: Record<string, string> }; spec: { type: string } };
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.metadata.annotations).toEqual({ "metallb.universe.tf/address-pool": "public" });
  });
});

describe("charts/manager against the in-memory Kubernetes API server", () => {
  test("every rendered object is accepted by server-side apply", async () => {
    const h = await startHarness();
    try {
      const { objects } = render({ jwt: { existingSecret: "kubenova-jwt" } });
      const applied = await applyAll(h, RELEASE.namespace, objects);
      expect(applied.map((o) => `${o.kind} ${o.metadata?.name}`)).toEqual(
        objects.map((o) => `${o.kind} ${o.metadata.name}`),
      );
      const service = await h.core.readNamespacedService({ name: "kubenova", namespace: RELEASE.namespace });
      expect(service.spec?.ports?.map((p) => p.port)).toEqual([8080, 8883]);
    } finally {
      await h.server.close();
    }
  });
});
