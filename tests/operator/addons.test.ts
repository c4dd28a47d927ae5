/**
 * Add-on bootstrap: a recording `helm` (tests/operator/fixtures/helm) and the in-memory API server, which starts
 * without the add-ons' CRDs; the test adds them (and Available Deployments) as Capsule's and KubeVela's charts
 * would.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createHelm } from "../../operator/helm.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import type { KubeObject } from "../../operator/kube/kube.ts";
import { type AddonsDeps, reconcileAddons } from "../../operator/reconcilers/addons.ts";
import { TerminalError } from "../../operator/reconcilers/runtime.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { loadCrds } from "../kube-api/crds.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";

const REPO = resolve(import.meta.dir, "../..");
const FAKE_HELM = join(import.meta.dir, "fixtures/helm");
const IDENTITY = "system:serviceaccount:kubenova-system:kubenova-operator";
const ADDON_CRDS = new Set([
  "tenants.capsule.clastix.io",
  "capsuleconfigurations.capsule.clastix.io",
  "applications.core.oam.dev",
]);

interface World {
  server: KubeApiServer;
  deps: AddonsDeps;
  reports: StatusBody[];
  state: string;
  calls(): Promise<string[][]>;
  config(): KubeObject | undefined;
  close(): Promise<void>;
}

async function world(spec: Record<string, unknown> = {}): Promise<World> {
  // Only KubeNova's own CRDs: Capsule and KubeVela are not installed yet.
  const server = await startKubeApiServer({ crdDirs: [join(REPO, "charts/operator/crds")] });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const state = await mkdtemp(join(tmpdir(), "kubenova-fake-helm-"));
  const log = join(state, "calls.jsonl");
  await kube.apply({
    apiVersion: "kubenova.io/v1alpha1",
    kind: "NovaClusterConfig",
    metadata: { name: "kubenova" },
    spec: { installCapsule: true, installCapsuleProxy: true, installKubeVela: true, ...spec },
  });
  const logger = createMemoryLogger();
  const reports: StatusBody[] = [];
  const deps: AddonsDeps = {
    kube,
    helm: createHelm({ binary: FAKE_HELM, env: { HELM_FAKE_LOG: log, HELM_FAKE_STATE: state }, logger }),
    logger,
    operatorIdentity: IDENTITY,
    report: (body) => reports.push(body),
  };
  return {
    server,
    deps,
    reports,
    state,
    calls: async () =>
      existsSync(log)
        ? (await readFile(log, "utf8"))
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as string[])
        : [],
    config: () =>
      server.get({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaClusterConfig", name: "kubenova" }),
    close: async () => {
      await server.close();
      await rm(state, { recursive: true, force: true });
    },
  };
}

/** What Capsule's and KubeVela's charts leave behind once their controllers run. */
function installAddonsInCluster(server: KubeApiServer): void {
  for (const crd of loadCrds([join(REPO, "../shared/crds")])) {
    if (ADDON_CRDS.has(crd.metadata.name)) server.put(crd);
  }
  for (const ns of ["capsule-system", "vela-system"]) {
    server.put({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  }
  const deployment = (namespace: string, name: string, release: string): KubeObject => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace, labels: { "app.kubernetes.io/instance": release } },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } } } },
    status: { conditions: [{ type: "Available", status: "True", reason: "MinimumReplicasAvailable" }] },
  });
  server.put(deployment("capsule-system", "capsule-controller-manager", "capsule"));
  server.put(deployment("capsule-system", "capsule-proxy", "capsule-proxy"));
  server.put(deployment("vela-system", "kubevela-vela-core", "kubevela"));
  server.put({
    apiVersion: "capsule.clastix.io/v1beta2",
    kind: "CapsuleConfiguration",
    metadata: { name: "default" },
    spec: {
      cacheInvalidation: "24h",
      enableTLSReconciler: false,
      rbac: {},
      administrators: [{ kind: "Group", name: "platform-admins" }],
    },
  });
}

const conditionsOf = (config: KubeObject | undefined) =>
  Object.fromEntries(
    (
      ((config?.status as { conditions?: unknown[] } | undefined)?.conditions ?? []) as Array<{
        type: string;
        status: string;
        reason: string;
        message: string;
      }>
    ).map((c) => [c.type, c]),
  );

const phaseOf = (config: KubeObject | undefined) => (config?.status as { phase?: string } | undefined)?.phase;

const installs = (calls: string[][]) => calls.filter((c) => c[0] === "upgrade");

test("installs each add-on at its pin, waits for readiness, lists the operator as Capsule administrator", async () => {
  const w = await world();
  try {
    const first = await reconcileAddons("kubenova", w.deps);
    expect(first.requeueAfterMs).toBe(10_000);
    expect(installs(await w.calls())).toEqual([
      [
        "upgrade",
        "--install",
        "capsule",
        "projectcapsule/capsule",
        "--version=0.14.0",
        "--namespace=capsule-system",
        "--create-namespace",
        "--wait",
        "--timeout=300s",
      ],
      [
        "upgrade",
        "--install",
        "capsule-proxy",
        "projectcapsule/capsule-proxy",
        "--version=0.14.0",
        "--namespace=capsule-system",
        "--create-namespace",
        "--wait",
        "--timeout=300s",
      ],
      [
        "upgrade",
        "--install",
        "kubevela",
        "kubevela/vela-core",
        "--version=1.11.0-alpha.4",
        "--namespace=vela-system",
        "--create-namespace",
        "--wait",
        "--timeout=300s",
      ],
    ]);
    // Helm said yes, but the API server serves nothing yet: Installing, and the conditions say what is missing.
    let config = w.config();
    expect(phaseOf(config)).toBe("Installing");
    let conditions = conditionsOf(config);
    expect(conditions.CapsuleReady?.status).toBe("False");
    expect(conditions.CapsuleReady?.message).toContain(
      "Tenant (capsule.clastix.io/v1beta2) is not served yet",
    );
    expect(conditions.CapsuleReady?.message).toContain("no Deployment of release capsule in capsule-system");
    expect(conditions.KubeVelaReady?.message).toContain(
      "Application (core.oam.dev/v1beta1) is not served yet",
    );
    expect(conditions.CapsuleProxyReady?.message).toContain("no Deployment of release capsule-proxy");
    expect(w.reports.at(-1)).toMatchObject({
      objectKind: "clusterConfig",
      key: "kubenova",
      phase: "Applying",
    });

    installAddonsInCluster(w.server);
    const before = (await w.calls()).length;
    const second = await reconcileAddons("kubenova", w.deps);
    expect(second.requeueAfterMs).toBe(600_000);
    const secondCalls = (await w.calls()).slice(before);
    expect(installs(secondCalls)).toEqual([]); // already at the pin: helm list / get values only
    expect(secondCalls.map((c) => c[0])).toEqual(["list", "get", "get", "list", "get"]);

    config = w.config();
    expect(phaseOf(config)).toBe("Ready");
    conditions = conditionsOf(config);
    for (const type of [
      "CapsuleReady",
      "CapsuleProxyReady",
      "KubeVelaReady",
      "CapsuleAdministrator",
      "Ready",
    ]) {
      expect(conditions[type]?.status).toBe("True");
    }
    const capsuleConfig = w.server.get({
      apiVersion: "capsule.clastix.io/v1beta2",
      kind: "CapsuleConfiguration",
      name: "default",
    });
    expect((capsuleConfig?.spec as { administrators?: unknown[] } | undefined)?.administrators).toEqual([
      { kind: "Group", name: "platform-admins" },
      { kind: "ServiceAccount", name: IDENTITY },
    ]);
    expect(w.reports.at(-1)).toMatchObject({ phase: "Deployed" });

    // Nothing changed: no install, no status write, no report.
    const reportsBefore = w.reports.length;
    const statusWrites = () =>
      w.server.requests.filter((r) => r.method === "PATCH" && r.path.endsWith("/status"));
    const writesBefore = statusWrites().length;
    const rv = config?.metadata.resourceVersion;
    await reconcileAddons("kubenova", w.deps);
    expect(installs(await w.calls()).length).toBe(3);
    expect(statusWrites().length).toBe(writesBefore);
    expect(w.reports.length).toBe(reportsBefore);
    expect(w.config()?.metadata.resourceVersion).toBe(rv);
  } finally {
    await w.close();
  }
});

test("values from the spec go to helm as a values file; changed values reinstall, disabled add-ons are left alone", async () => {
  const w = await world({
    installCapsuleProxy: false,
    installKubeVela: false,
    charts: { capsule: { version: "0.14.1", values: { replicaCount: 2 } } },
  });
  try {
    installAddonsInCluster(w.server);
    await reconcileAddons("kubenova", w.deps);
    const [install, ...rest] = installs(await w.calls());
    expect(rest).toEqual([]);
    expect(install?.slice(0, 9)).toEqual([
      "upgrade",
      "--install",
      "capsule",
      "projectcapsule/capsule",
      "--version=0.14.1",
      "--namespace=capsule-system",
      "--create-namespace",
      "--wait",
      "--timeout=300s",
    ]);
    expect(install?.[9]).toMatch(/^--values=/);
    expect(JSON.parse(await readFile(join(w.state, "capsule-system/capsule.values.json"), "utf8"))).toEqual({
      replicaCount: 2,
    });
    expect(phaseOf(w.config())).toBe("Ready");
    expect(Object.keys(conditionsOf(w.config())).sort()).toEqual([
      "CapsuleAdministrator",
      "CapsuleReady",
      "Ready",
    ]);

    await reconcileAddons("kubenova", w.deps);
    expect(installs(await w.calls()).length).toBe(1);

    const kube = w.deps.kube;
    await kube.apply({
      apiVersion: "kubenova.io/v1alpha1",
      kind: "NovaClusterConfig",
      metadata: { name: "kubenova" },
      spec: {
        installCapsule: true,
        installCapsuleProxy: false,
        installKubeVela: false,
        charts: { capsule: { version: "0.14.1", values: { replicaCount: 3 } } },
      },
    });
    await reconcileAddons("kubenova", w.deps);
    expect(installs(await w.calls()).length).toBe(2);
  } finally {
    await w.close();
  }
});

test("a helm failure is an Error condition with helm's stderr, and a retryable error", async () => {
  const w = await world();
  try {
    await writeFile(join(w.state, "fail"), 'Error: repo "projectcapsule" not found\n');
    const error = await reconcileAddons("kubenova", w.deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(TerminalError);
    const config = w.config();
    expect(phaseOf(config)).toBe("Error");
    const conditions = conditionsOf(config);
    expect(conditions.CapsuleReady).toMatchObject({ status: "False", reason: "InstallFailed" });
    expect(conditions.CapsuleReady?.message).toContain('Error: repo "projectcapsule" not found');
    expect(conditions.CapsuleProxyReady).toMatchObject({ reason: "WaitingForCapsule" });
    expect(conditions.Ready).toMatchObject({ status: "False", reason: "InstallFailed" });
    // capsule-proxy waits for Capsule; KubeVela is independent and is still attempted.
    expect(installs(await w.calls()).map((c) => c[2])).toEqual(["capsule", "kubevela"]);
    expect(w.reports.at(-1)).toMatchObject({ phase: "Error" });

    // The repo comes back: the retry installs and the Error clears.
    await rm(join(w.state, "fail"));
    installAddonsInCluster(w.server);
    await reconcileAddons("kubenova", w.deps);
    expect(phaseOf(w.config())).toBe("Ready");
  } finally {
    await w.close();
  }
});

test("a chart version that is not SemVer is a TerminalError and never reaches helm", async () => {
  const w = await world({ charts: { capsule: { version: "--post-renderer=/bin/sh" } } });
  try {
    const error = await reconcileAddons("kubenova", w.deps).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toContain("spec.charts.capsule.version");
    expect(await w.calls()).toEqual([]);
    expect(conditionsOf(w.config()).Ready).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(phaseOf(w.config())).toBe("Error");
  } finally {
    await w.close();
  }
});

test("a missing NovaClusterConfig is nothing to do", async () => {
  const w = await world();
  try {
    expect(await reconcileAddons("other", w.deps)).toEqual({});
    expect(await w.calls()).toEqual([]);
  } finally {
    await w.close();
  }
});
