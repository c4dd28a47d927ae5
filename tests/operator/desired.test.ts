/** The desired layer: an app waits for its project's namespace; a missing one for good is retryable, not refused. */
import { expect, test } from "bun:test";
import { createDesiredApplier } from "../../operator/desired.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import { KubeApiError } from "../../operator/kube/kube.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { DesiredChange } from "../../shared/messages.ts";
import { startKubeApiServer } from "../kube-api/server.ts";

const appChange = (namespace: string): DesiredChange => ({
  revision: 1,
  kind: "app",
  key: `acme/web/site`,
  op: "upsert",
  body: {
    tenant: "acme",
    project: "web",
    namespace,
    name: "site",
    labels: {},
    revision: 1,
    suspended: false,
    spec: { components: [{ name: "web", type: "webservice" }] },
  },
});

test("an app waits for its namespace; without one it fails retryably and reports nothing as refused", async () => {
  const server = await startKubeApiServer();
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  const reports: unknown[] = [];
  const applier = createDesiredApplier({
    kube,
    logger: createMemoryLogger(),
    report: (r) => reports.push(r),
  });
  try {
    setTimeout(() => {
      void kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "acme-web" } });
    }, 400);
    await applier.apply(appChange("acme-web"));
    expect(
      server.get({
        apiVersion: "core.oam.dev/v1beta1",
        kind: "Application",
        namespace: "acme-web",
        name: "site",
      }),
    ).toBeDefined();

    const error = await applier.apply(appChange("never-there")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).retryable).toBe(true);
    expect(reports).toEqual([]);
    expect(applier.stats().refused).toBe(0);
  } finally {
    await server.close();
  }
}, 20_000);
