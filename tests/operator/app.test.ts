/**
 * The app reconciler (operator/reconcilers/app.ts) against the in-memory API server with the real KubeVela CRDs and
 * its simulated KubeVela controller: phases reported upward, suspend/resume through `status.workflow.suspend`,
 * in-cluster rollback from an ApplicationRevision (DESIGN.md §9.6), idempotence, and refusals reported as Error.
 */
import { afterEach, describe, expect, test } from "bun:test";
import path from "node:path";
import { detectCapabilities } from "../../operator/capabilities.ts";
import { createDesiredApplier } from "../../operator/desired.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import { KubeApiError, type KubeClient, type KubeObject } from "../../operator/kube/kube.ts";
import {
  type AppMemory,
  createAppMemory,
  PUBLISH_VERSION,
  ROLLBACK_TO,
  ROLLED_BACK_TO,
  reconcileApp,
} from "../../operator/reconcilers/app.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { StatusBody } from "../../shared/messages.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";

const NS = "acme-web";
const REF = { namespace: NS, name: "site" };
const KEY = "acme/web/site";
const APP = { apiVersion: "core.oam.dev/v1beta1", kind: "Application", namespace: NS, name: "site" };
const POLL_MS = 15;

const component = (image: string) => ({
  name: "frontend",
  type: "webservice",
  properties: { image, port: 80 },
});

/** The Application as operator/desired.ts writes it for a Manager revision. */
function intent(revision: number, options: { suspended?: boolean; image?: string } = {}): KubeObject {
  return {
    apiVersion: APP.apiVersion,
    kind: APP.kind,
    metadata: {
      name: "site",
      namespace: NS,
      labels: {
        "app.kubernetes.io/managed-by": "kubenova",
        "kubenova.io/tenant": "acme",
        "kubenova.io/project": "web",
        "kubenova.io/app": "site",
      },
      annotations: {
        [PUBLISH_VERSION]: `r${revision}`,
        "kubenova.io/suspended": String(options.suspended ?? false),
      },
    },
    spec: { components: [component(options.image ?? `nginx:1.${revision}`)] },
  };
}

interface World {
  server: KubeApiServer;
  kube: KubeClient;
  reports: StatusBody[];
  memory: AppMemory;
  /** One reconcile, as the controller would run it. */
  reconcile(): ReturnType<typeof reconcileApp>;
  /** Reconciles, following `requeueAfterMs`, until `done` holds for the latest report (or the app settles). */
  until(done: (last: StatusBody | undefined) => boolean, timeoutMs?: number): Promise<StatusBody>;
  /** Writes made since `mark` (anything but GET). */
  writesSince(mark: number): string[];
  live(): KubeObject;
}

const open: World[] = [];
afterEach(async () => {
  for (const world of open.splice(0)) await world.server.close();
});

async function world(stepDelayMs = 5): Promise<World> {
  const server = await startKubeApiServer({ namespaces: [NS], simulations: { kubevela: true, stepDelayMs } });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const reports: StatusBody[] = [];
  const memory = createAppMemory();
  const deps = {
    kube,
    logger: createMemoryLogger("warn"),
    report: (s: StatusBody) => reports.push(s),
    memory,
    pollIntervalMs: POLL_MS,
  };
  const w: World = {
    server,
    kube,
    reports,
    memory,
    reconcile: () => reconcileApp(REF, deps),
    async until(done, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const result = await reconcileApp(REF, deps);
        if (done(reports.at(-1))) return reports.at(-1)!;
        if (Date.now() > deadline)
          throw new Error(`timed out; last report ${JSON.stringify(reports.at(-1))}`);
        await Bun.sleep(result.requeueAfterMs ?? POLL_MS);
      }
    },
    writesSince: (mark) =>
      server.requests
        .slice(mark)
        .filter((r) => r.method !== "GET")
        .map((r) => `${r.method} ${r.path}`),
    live: () => server.get(APP)!,
  };
  open.push(w);
  return w;
}

const deployed = (s: StatusBody | undefined) => s?.phase === "Deployed";
const phasesOf = (reports: StatusBody[]) => reports.map((r) => r.phase).filter((p, i, a) => a[i - 1] !== p);

describe("status upward", () => {
  test("phases are reported in order up to Deployed, with KubeVela's phase and service health", async () => {
    // Slow simulated steps so each KubeVela phase is visible to the poller.
    const w = await world(60);
    await w.kube.apply(intent(1));
    const last = await w.until(deployed);
    expect(phasesOf(w.reports)).toEqual(["Pending", "Applying", "Deployed"]);
    const velaPhases = w.reports.map((r) => r.detail?.velaPhase);
    expect(velaPhases[0]).toBeNull();
    expect(velaPhases.at(-1)).toBe("running");
    // KubeVela's own order: never back to rendering once it ran the workflow.
    const order = [null, "rendering", "runningWorkflow", "running"];
    const ranks = velaPhases.map((p) => order.indexOf(p as string | null));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    expect(last).toEqual({
      objectKind: "app",
      key: KEY,
      observedGeneration: 1,
      phase: "Deployed",
      revision: 1,
      detail: {
        velaPhase: "running",
        services: [{ name: "frontend", healthy: true, message: "Ready:1/1 (simulated KubeVela controller)" }],
        latestRevision: "site-v1",
        suspended: false,
      },
    });
    // Every report differs from the one before it: unchanged status is not sent again.
    for (let i = 1; i < w.reports.length; i++) expect(w.reports[i]).not.toEqual(w.reports[i - 1]);
  });

  test("a settled app: a second reconcile makes zero writes, reports nothing and does not requeue", async () => {
    const w = await world();
    await w.kube.apply(intent(1));
    await w.until(deployed);
    const count = w.reports.length;
    const mark = w.server.requests.length;
    expect(await w.reconcile()).toEqual({});
    expect(await w.reconcile()).toEqual({});
    expect(w.writesSince(mark)).toEqual([]);
    expect(w.reports.length).toBe(count);
  });

  test.each([
    {
      name: "workflowFailed",
      status: { status: "workflowFailed", workflow: { message: "step deploy failed" } },
      message: "workflowFailed: step deploy failed",
    },
    {
      name: "an unhealthy service while running",
      status: { status: "running", unhealthy: true },
      message: "unhealthy: frontend (CrashLoopBackOff)",
    },
  ])("KubeVela reporting $name is Error", async ({ status, message }) => {
    const w = await world();
    await w.kube.apply(intent(1));
    await w.until(deployed);
    // Stand in for KubeVela writing a failure (the simulation only ever succeeds).
    const live = w.live();
    const current = live.status as Record<string, unknown>;
    const services = (current.services as Record<string, unknown>[]).map((s) =>
      status.unhealthy ? { ...s, healthy: false, message: "CrashLoopBackOff" } : s,
    );
    w.server.put({
      ...live,
      status: {
        ...current,
        status: status.status,
        services,
        workflow: { ...(current.workflow as object), ...(status.workflow ?? {}) },
      },
    });
    const last = await w.until((s) => s?.phase === "Error");
    expect(last.message).toContain(message);
    expect(last.detail?.velaPhase).toBe(status.status);
  });

  test("Drifted comes from the drift hook; a deleted Application is forgotten and not reported", async () => {
    const w = await world();
    await w.kube.apply(intent(1));
    await w.until(deployed);
    let drift: string | false = "Deployment frontend was edited";
    const deps = {
      kube: w.kube,
      logger: createMemoryLogger("warn"),
      report: (s: StatusBody) => w.reports.push(s),
      memory: w.memory,
      drifted: (key: string) => (key === KEY ? drift : false),
    };
    expect((await reconcileApp(REF, deps)).requeueAfterMs).toBeGreaterThan(0);
    expect(w.reports.at(-1)).toMatchObject({ phase: "Drifted", message: "Deployment frontend was edited" });
    drift = false;
    await reconcileApp(REF, deps);
    expect(w.reports.at(-1)?.phase).toBe("Deployed");

    await w.kube.delete(APP);
    const count = w.reports.length;
    expect(await w.reconcile()).toEqual({});
    expect(w.reports.length).toBe(count);
    expect(w.memory.reports.size).toBe(0);
  });
});

describe("suspend and resume", () => {
  test.each([
    { name: "after it was deployed", suspendFirst: false },
    { name: "before KubeVela started its workflow", suspendFirst: true },
  ])("suspended $name: the workflow suspends, then resumes to Deployed", async ({ suspendFirst }) => {
    const w = await world();
    if (suspendFirst) {
      await w.kube.apply(intent(1, { suspended: true }));
    } else {
      await w.kube.apply(intent(1));
      await w.until(deployed);
      await w.kube.apply(intent(1, { suspended: true }));
    }
    const suspended = await w.until((s) => s?.detail?.velaPhase === "workflowSuspending");
    expect(suspended).toMatchObject({ phase: "Applying", revision: 1 });
    expect(suspended.detail?.suspended).toBe(true);
    expect((w.live().status as { workflow: { suspend: boolean } }).workflow.suspend).toBe(true);
    // Suspended and settled: nothing to poll, nothing to write.
    const mark = w.server.requests.length;
    expect(await w.reconcile()).toEqual({});
    expect(w.writesSince(mark)).toEqual([]);
    expect(w.reports.at(-1)).toEqual(suspended);

    await w.kube.apply(intent(1, { suspended: false }));
    const resumed = await w.until(deployed);
    expect(resumed.detail?.suspended).toBe(false);
    expect((w.live().status as { workflow: { suspend: boolean } }).workflow.suspend).toBe(false);
  });
});

describe("rollback", () => {
  /** A user (or kubectl) asking for an in-cluster rollback, as another field manager would. */
  function requestRollback(w: World, revision: string) {
    const live = w.live();
    w.server.put({
      ...live,
      metadata: { ...live.metadata, annotations: { ...live.metadata.annotations, [ROLLBACK_TO]: revision } },
    });
  }

  test("kubenova.io/rollback-to copies the ApplicationRevision's spec with a new publishVersion, once", async () => {
    const w = await world();
    await w.kube.apply(intent(1, { image: "nginx:old" }));
    await w.until(deployed);
    await w.kube.apply(intent(2, { image: "nginx:new" }));
    await w.until((s) => deployed(s) && s?.revision === 2 && s.detail?.latestRevision === "site-v2");

    requestRollback(w, "1");
    const last = await w.until((s) => deployed(s) && s?.detail?.latestRevision === "site-v3");
    const live = w.live();
    expect(live.spec).toEqual({ components: [component("nginx:old")] });
    expect(live.metadata.annotations).toMatchObject({
      [PUBLISH_VERSION]: "r2-rollback-1",
      [ROLLED_BACK_TO]: "1",
      [ROLLBACK_TO]: "1",
    });
    expect(live.metadata.labels?.["kubenova.io/app"]).toBe("site");
    expect(last).toMatchObject({ revision: 2, observedGeneration: 3 });

    // Done once: reconciling again writes nothing.
    const mark = w.server.requests.length;
    await w.reconcile();
    expect(w.writesSince(mark)).toEqual([]);

    // The Manager's next revision wins even though the old request is still annotated.
    await w.kube.apply(intent(3, { image: "nginx:newest" }));
    await w.until((s) => deployed(s) && s?.revision === 3);
    expect(w.live().spec).toEqual({ components: [component("nginx:newest")] });
  });

  test("a rollback the real schema refuses is reported as Error with the server's message, not retried", async () => {
    const w = await world();
    await w.kube.apply(intent(1));
    await w.until(deployed);
    // A revision whose spec the Application schema rejects (a component without `type`), put in place directly.
    const v1 = w.server.get({ ...APP, kind: "ApplicationRevision", name: "site-v1" })!;
    const application = (v1.spec as { application: Record<string, unknown> }).application;
    w.server.put({
      ...v1,
      metadata: { name: "site-v9", namespace: NS },
      spec: { application: { ...application, spec: { components: [{ name: "frontend" }] } } },
    });
    requestRollback(w, "9");
    const refused = await w.until((s) => s?.phase === "Error");
    expect(refused.message).toContain("type");
    expect(refused.message).toMatch(/Required|required/);
    expect(w.live().spec).toEqual({ components: [component("nginx:1.1")] });
    const mark = w.server.requests.length;
    const count = w.reports.length;
    expect(await w.reconcile()).toEqual({});
    expect(w.writesSince(mark)).toEqual([]);
    expect(w.reports.length).toBe(count);

    requestRollback(w, "404");
    const missing = await w.until((s) => s?.message?.includes("site-v404") === true);
    expect(missing.phase).toBe("Error");
  });
});

test("an Application the real schema rejects never reaches the cluster: the adapter throws 422, desired.ts reports Error", async () => {
  const w = await world();
  const bad = { ...intent(1), spec: { components: [{ name: "frontend" }] } };
  const error = await w.kube.apply(bad).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KubeApiError);
  expect((error as KubeApiError).status).toBe(422);
  expect((error as KubeApiError).message).toContain("type");

  const reports: StatusBody[] = [];
  const applier = createDesiredApplier({
    kube: w.kube,
    report: (s) => reports.push(s),
    logger: createMemoryLogger("error"),
  });
  const { metadata } = bad;
  await applier.apply({
    revision: 5,
    kind: "app",
    op: "upsert",
    key: KEY,
    body: {
      tenant: "acme",
      project: "web",
      namespace: NS,
      name: metadata.name,
      labels: {},
      revision: 1,
      suspended: false,
      spec: bad.spec,
    },
  } as Parameters<typeof applier.apply>[0]);
  expect(reports).toEqual([
    expect.objectContaining({ key: KEY, phase: "Error", message: (error as Error).message }),
  ]);
  // The reconciler has nothing to follow: no Application, no report.
  expect(await w.reconcile()).toEqual({});
  expect(w.reports).toEqual([]);
});

describe("capabilities", () => {
  const shared = path.resolve(import.meta.dir, "../../../shared/crds");
  const charts = path.resolve(import.meta.dir, "../../charts/operator/crds");
  test.each<{ name: string; dirs: string[]; capsule: string | null; kubevela: string | null }>([
    {
      name: "Capsule and KubeVela",
      dirs: [shared, charts],
      capsule: "capsule.clastix.io/v1beta2",
      kubevela: "core.oam.dev/v1beta1",
    },
    {
      name: "no KubeVela",
      dirs: [`${shared}/capsule`, charts],
      capsule: "capsule.clastix.io/v1beta2",
      kubevela: null,
    },
    { name: "no add-ons", dirs: [charts], capsule: null, kubevela: null },
  ])("$name", async ({ dirs, capsule, kubevela }) => {
    const server = await startKubeApiServer({ crdDirs: dirs });
    try {
      const caps = await detectCapabilities(createKubeClient({ kubeconfig: server.kubeconfig() }));
      expect(caps.capsule).toBe(capsule);
      expect(caps.kubevela).toBe(kubevela);
      expect(caps.groups.apps).toContain("v1");
      expect(caps.groups["kubenova.io"]).toContain("v1alpha1");
      expect("core.oam.dev" in caps.groups).toBe(kubevela !== null);
      for (const versions of Object.values(caps.groups)) expect(versions.length).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});
