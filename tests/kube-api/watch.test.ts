import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, startHarness, waitFor } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

interface Seen {
  type: string;
  name: string | undefined;
  object: Record<string, unknown> & { code?: number; reason?: string };
}

async function watchInto(path: string, query: Record<string, string | boolean | undefined>) {
  const seen: Seen[] = [];
  let done: unknown = "open";
  const ctrl = await new k8s.Watch(h.kc).watch(
    path,
    query,
    (type, object) => seen.push({ type, name: object?.metadata?.name, object }),
    (err) => {
      done = err ?? null;
    },
  );
  return { seen, ctrl, isDone: () => done !== "open" };
}

describe("watch", () => {
  test("streams ADDED, MODIFIED and DELETED after the given resourceVersion", async () => {
    h = await startHarness();
    const list = await h.core.listNamespacedConfigMap({ namespace: "default" });
    const w = await watchInto("/api/v1/namespaces/default/configmaps", {
      resourceVersion: list.metadata?.resourceVersion,
    });
    await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "a" }, data: { v: "1" } },
    });
    await h.core.replaceNamespacedConfigMap({
      name: "a",
      namespace: "default",
      body: { metadata: { name: "a" }, data: { v: "2" } },
    });
    await h.core.deleteNamespacedConfigMap({ name: "a", namespace: "default" });
    await waitFor(() => w.seen.length >= 3, "three events");
    w.ctrl.abort();
    expect(w.seen.map((e) => `${e.type}:${e.name}`)).toEqual(["ADDED:a", "MODIFIED:a", "DELETED:a"]);
  });

  test("without resourceVersion it starts with the current state; label selectors filter events", async () => {
    h = await startHarness();
    await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "old", labels: { w: "y" } } },
    });
    const w = await watchInto("/api/v1/namespaces/default/configmaps", { labelSelector: "w=y" });
    await h.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "other" } } });
    await h.core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "new", labels: { w: "y" } } },
    });
    // Leaving the selector looks like a deletion to this watcher.
    await h.core.patchNamespacedConfigMap(
      { name: "old", namespace: "default", body: { metadata: { labels: { w: "n" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor(() => w.seen.length >= 3, "three events");
    w.ctrl.abort();
    expect(w.seen.map((e) => `${e.type}:${e.name}`)).toEqual(["ADDED:old", "ADDED:new", "DELETED:old"]);
  });

  test("a resourceVersion older than the retained history gets a 410 Expired ERROR event", async () => {
    h = await startHarness({ watchHistorySize: 3 });
    const start = (await h.core.listNamespacedConfigMap({ namespace: "default" })).metadata?.resourceVersion;
    for (let i = 0; i < 5; i++) {
      await h.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: `c${i}` } } });
    }
    const w = await watchInto("/api/v1/namespaces/default/configmaps", { resourceVersion: start });
    await waitFor(() => w.isDone(), "the stream to end");
    expect(w.seen).toHaveLength(1);
    expect(w.seen[0]?.type).toBe("ERROR");
    expect(w.seen[0]?.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
  });

  test("bookmarks arrive when allowed; timeoutSeconds ends the stream", async () => {
    h = await startHarness({ bookmarkIntervalMs: 20 });
    const w = await watchInto("/api/v1/namespaces", { allowWatchBookmarks: true, timeoutSeconds: "1" });
    await waitFor(() => w.seen.some((e) => e.type === "BOOKMARK"), "a bookmark");
    const bookmark = w.seen.find((e) => e.type === "BOOKMARK");
    expect(
      Number((bookmark?.object.metadata as { resourceVersion?: string } | undefined)?.resourceVersion),
    ).toBeGreaterThan(0);
    await waitFor(() => w.isDone(), "timeout to close the stream");
  });

  test("makeInformer lists then watches, and relists after its watch is dropped", async () => {
    h = await startHarness();
    await h.core.createNamespace({ body: { metadata: { name: "team" } } });
    await h.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "first" } } });
    const informer = k8s.makeInformer(h.kc, "/api/v1/namespaces/team/configmaps", () =>
      h.core.listNamespacedConfigMap({ namespace: "team" }),
    );
    const added: string[] = [];
    informer.on("add", (o) => added.push(o.metadata?.name ?? ""));
    await informer.start();
    await waitFor(() => added.includes("first"), "informer to list");
    await h.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "second" } } });
    await waitFor(() => informer.get("second", "team"), "informer to see a watched add");
    await waitFor(() => h.server.faults.openWatches > 0, "an open watch");
    h.server.faults.dropWatches();
    await h.core.createNamespacedConfigMap({ namespace: "team", body: { metadata: { name: "third" } } });
    await waitFor(() => informer.get("third", "team"), "informer to resume after the drop", 10000);
    await informer.stop();
    expect(
      informer
        .list("team")
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["first", "second", "third"]);
  });
});
