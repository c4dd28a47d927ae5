/** The operator's Kubernetes adapter against the in-memory API server: apply, status, watch, TokenRequest. */
import { expect, test } from "bun:test";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import { KubeApiError, type KubeObject } from "../../operator/kube/kube.ts";
import { startKubeApiServer } from "../kube-api/server.ts";
import { waitFor } from "../sync/fixtures.ts";

const tenant = (name: string, owners: string[]): KubeObject => ({
  apiVersion: "kubenova.io/v1alpha1",
  kind: "NovaTenant",
  metadata: { name },
  spec: {
    displayName: null,
    owners,
    labels: {},
    plan: { name: null, quotas: {}, limitRange: null, allowLoadBalancers: false },
    projects: [],
  },
});

test("apply is idempotent, status is written, watches see changes, tokens are issued", async () => {
  const server = await startKubeApiServer({ namespaces: ["acme-owner"] });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  try {
    const events: string[] = [];
    const handle = await kube.watch("kubenova.io/v1alpha1", "NovaTenant", {}, (type, object) =>
      events.push(`${type} ${object.metadata.name}`),
    );
    const first = await kube.apply(tenant("acme", ["alice"]));
    const again = await kube.apply(tenant("acme", ["alice"]));
    expect(again.metadata.resourceVersion).toBe(first.metadata.resourceVersion);
    await kube.apply(tenant("acme", ["alice", "bob"]));
    const withStatus = await kube.patchStatus(
      { apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant", name: "acme" },
      { phase: "Deployed", observedGeneration: 2 },
    );
    expect(withStatus.status).toMatchObject({ phase: "Deployed", observedGeneration: 2 });
    expect(await kube.delete({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant", name: "acme" })).toBe(
      true,
    );
    expect(await kube.delete({ apiVersion: "kubenova.io/v1alpha1", kind: "NovaTenant", name: "acme" })).toBe(
      false,
    );
    await waitFor("watch events", () => events.includes("DELETED acme"));
    expect(events[0]).toBe("ADDED acme");

    // A schema violation is a non-retryable KubeApiError.
    const error = await kube
      .apply({ ...tenant("bad", []), spec: { owners: "nobody" } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(422);
    expect((error as KubeApiError).retryable).toBe(false);

    await kube.apply({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "owner", namespace: "acme-owner" },
    });
    const token = await kube.createToken("acme-owner", "owner", 600);
    expect(token.token.length).toBeGreaterThan(10);
    expect(Date.parse(token.expiresAt)).toBeGreaterThan(Date.now() + 500_000);
    await expect(kube.createToken("acme-owner", "owner", 60)).rejects.toMatchObject({ status: 422 });
    expect((await kube.servedGroups())["capsule.clastix.io"]).toContain("v1beta2");
    handle.stop();
  } finally {
    await server.close();
  }
});

test("a watch resumes after the stream drops and relists after 410 Gone, missing nothing", async () => {
  const server = await startKubeApiServer({ namespaces: ["w"], watchHistorySize: 5 });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  try {
    const seen = new Map<string, string>();
    const handle = await kube.watch("v1", "ConfigMap", { namespace: "w" }, (type, object) =>
      seen.set(object.metadata.name, type),
    );
    const put = (name: string) =>
      kube.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: "w" },
        data: { v: name },
      });
    await put("a");
    await waitFor("a", () => seen.has("a"));
    server.faults.dropWatches();
    await put("b");
    await waitFor("b after a dropped stream", () => seen.has("b"), 10_000);
    // Drop again and make more changes than the history keeps: the resume gets 410 and must relist.
    server.faults.dropWatches();
    for (let i = 0; i < 12; i++) await put(`c${i}`);
    await kube.delete({ apiVersion: "v1", kind: "ConfigMap", namespace: "w", name: "a" });
    await waitFor("everything after 410", () => seen.has("c11") && seen.get("a") === "DELETED", 15_000);
    handle.stop();
  } finally {
    await server.close();
  }
});

test("lists and relists page by page and miss nothing; a deletion found by a relist carries labels", async () => {
  const server = await startKubeApiServer({ namespaces: ["p"], watchHistorySize: 5 });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  try {
    const put = (name: string) =>
      kube.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: "p", labels: { "kubenova.io/tenant": `owner-of-${name}` } },
      });
    for (let i = 0; i < 1_100; i++) await put(`cm${String(i).padStart(4, "0")}`); // three pages of 500
    const listed = await kube.list("v1", "ConfigMap", { namespace: "p" });
    expect(listed.filter((o) => o.metadata.name.startsWith("cm")).length).toBe(1_100);
    expect(new Set(listed.map((o) => o.metadata.name)).size).toBe(listed.length);

    const added = new Set<string>();
    const deleted: Array<{ name: string; tenant: string | undefined }> = [];
    const handle = await kube.watch("v1", "ConfigMap", { namespace: "p" }, (type, object) => {
      if (type === "ADDED") added.add(object.metadata.name);
      if (type === "DELETED") {
        deleted.push({ name: object.metadata.name, tenant: object.metadata.labels?.["kubenova.io/tenant"] });
      }
    });
    expect([...added].filter((n) => n.startsWith("cm")).length).toBe(1_100);
    // Missed while the stream is down and the history too short: the relist reports the deletion.
    server.faults.dropWatches();
    await kube.delete({ apiVersion: "v1", kind: "ConfigMap", namespace: "p", name: "cm0007" });
    for (let i = 0; i < 12; i++) await put(`later${i}`);
    await waitFor("the deletion", () => deleted.some((d) => d.name === "cm0007"), 15_000);
    expect(deleted).toContainEqual({ name: "cm0007", tenant: "owner-of-cm0007" });
    handle.stop();
  } finally {
    await server.close();
  }
}, 60_000);
