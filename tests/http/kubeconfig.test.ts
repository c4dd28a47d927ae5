/**
 * Kubeconfig composition and refusals. The command round trip to a real operator is covered by the channel and
 * end-to-end suites; here the cluster side is a recorded CommandClient so the Manager's own rules are isolated.
 */
import { expect, test } from "bun:test";
import { parse } from "yaml";
import type { CommandClient } from "../../manager/sync/commands.ts";
import { createTestManager, seedWorld } from "./harness.ts";

function recordingCommands(calls: unknown[]): CommandClient {
  return {
    async request(cluster, name, args) {
      calls.push({ cluster: cluster.name, name, args });
      return {
        token: "sa-token-abc",
        expiresAt: "2030-01-01T00:00:00.000Z",
        namespace: args.project ? `acme-${args.project}` : "acme-owner",
        serviceAccount:
          args.role === "tenantOwner" ? "owner" : args.role === "projectDev" ? "dev" : "readonly",
      };
    },
    resolve() {},
    pending: () => 0,
    lateReplies: 0,
  };
}

test("a tenant owner gets a kubeconfig for capsule-proxy; only an audit record is kept", async () => {
  const m = await createTestManager();
  try {
    const { admin } = await seedWorld(m);
    const calls: unknown[] = [];
    m.services.commands = recordingCommands(calls);
    const { createApp } = await import("../../manager/http/app.ts");
    const app = createApp(m.services);
    const owner = await m.token("tenantOwner", { tenant: "acme" });
    const call = async (path: string, body: unknown, token = owner) => {
      const res = await app.request(path, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    // No capsule-proxy URL yet: 422 naming the cluster.
    const noProxy = await call("/api/v1/tenants/acme/kubeconfig", {
      role: "tenantOwner",
      cluster: "dc1",
      ttlSeconds: 600,
    });
    expect(noProxy.status).toBe(422);
    expect(noProxy.body.error.message).toContain("dc1");
    await m.call("PATCH", "/api/v1/clusters/dc1", {
      token: admin,
      body: { capsuleProxyUrl: "https://proxy.dc1.example:9001" },
    });

    // Not connected: 503 saying which cluster and since when.
    const offline = await call("/api/v1/tenants/acme/kubeconfig", {
      role: "tenantOwner",
      cluster: "dc1",
      ttlSeconds: 600,
    });
    expect(offline.status).toBe(503);
    expect(offline.body.error.code).toBe("KN-503");
    expect(offline.body.error.message).toContain('cluster "dc1" is not connected');
    expect(offline.body.error.message).toContain("never seen");

    const row = (await m.store.clusters.get("dc1"))!;
    await m.store.clusters.update({ ...row, status: "connected", lastSeenAt: new Date().toISOString() });
    const issued = await call("/api/v1/tenants/acme/kubeconfig", {
      role: "tenantOwner",
      cluster: "dc1",
      ttlSeconds: 600,
    });
    expect(issued.status).toBe(201);
    const kubeconfig = parse(issued.body.kubeconfig);
    expect(kubeconfig.clusters[0].cluster.server).toBe("https://proxy.dc1.example:9001");
    expect(kubeconfig.users[0].user.token).toBe("sa-token-abc");
    expect(kubeconfig.contexts[0].context.namespace).toBe("acme-owner");
    expect(issued.body).toMatchObject({ cluster: "dc1", serviceAccount: "owner", namespace: "acme-owner" });
    expect(calls).toEqual([
      { cluster: "dc1", name: "issue-token", args: { tenant: "acme", role: "tenantOwner", ttlSeconds: 600 } },
    ]);

    const audit = await m.store.audit.list({ tenant: "acme" }, { limit: 50 });
    const entry = audit.items.find((a) => a.action === "kubeconfig.issue");
    expect(entry?.details).toMatchObject({ role: "tenantOwner", cluster: "dc1", serviceAccount: "owner" });
    expect(JSON.stringify(await m.store.audit.list({}, { limit: 500 }))).not.toContain("sa-token-abc");

    // Within the caller's authority only: a read-only user cannot get an owner kubeconfig; TTL < 600 is refused.
    const viewer = await m.token("readOnly", { tenant: "acme" });
    expect(
      (
        await call(
          "/api/v1/tenants/acme/kubeconfig",
          { role: "tenantOwner", cluster: "dc1", ttlSeconds: 600 },
          viewer,
        )
      ).status,
    ).toBe(403);
    const short = await call("/api/v1/tenants/acme/kubeconfig", {
      role: "tenantOwner",
      cluster: "dc1",
      ttlSeconds: 60,
    });
    expect(short.status).toBe(400);
    expect(short.body.error.details[0].path).toBe("ttlSeconds");
    // Project kubeconfigs are for projectDev: the project's account in the project's namespace.
    const dev = await m.token("projectDev", { tenant: "acme", project: "web" });
    const project = await call(
      "/api/v1/tenants/acme/projects/web/kubeconfig",
      { role: "projectDev", ttlSeconds: 600 },
      dev,
    );
    expect(project.status).toBe(201);
    expect(project.body).toMatchObject({ namespace: "acme-web", serviceAccount: "dev", cluster: "dc1" });
  } finally {
    await m.close();
  }
});
