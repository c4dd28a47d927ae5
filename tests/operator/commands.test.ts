/** The operator's command handler against the in-memory API server: TokenRequest, argument checks, routing. */
import { expect, test } from "bun:test";
import { createCommandHandler } from "../../operator/commands.ts";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import type { CommandBody } from "../../shared/messages.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";

const command = (name: CommandBody["name"], args: Record<string, unknown> = {}): CommandBody => ({
  correlationId: "0191d7a4-0000-7000-8000-000000000001",
  name,
  deadline: new Date(Date.now() + 60_000).toISOString(),
  args,
});

async function cluster(): Promise<KubeApiServer> {
  const server = await startKubeApiServer({ namespaces: ["acme-owner", "acme-web", "globex-owner"] });
  const sa = (namespace: string, name: string) =>
    server.put({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } });
  sa("acme-owner", "owner");
  sa("acme-owner", "readonly");
  sa("acme-web", "dev");
  // What the tenant reconciler grants the owner: admin in the tenant's namespace.
  server.put({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "owner-admin", namespace: "acme-owner" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: [{ kind: "ServiceAccount", name: "owner", namespace: "acme-owner" }],
  });
  return server;
}

const get = (server: KubeApiServer, token: string, path: string) =>
  fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

test("issue-token mints a token for the tenant owner that works in the owner's namespace only", async () => {
  const server = await cluster();
  try {
    const handle = createCommandHandler({
      kube: createKubeClient({ kubeconfig: server.kubeconfig() }),
      logger: createMemoryLogger(),
    });
    const started = Date.now();
    const reply = await handle(
      command("issue-token", { tenant: "acme", role: "tenantOwner", ttlSeconds: 900 }),
    );
    expect(reply.ok).toBe(true);
    const result = reply.result as {
      token: string;
      expiresAt: string;
      namespace: string;
      serviceAccount: string;
    };
    expect(result.namespace).toBe("acme-owner");
    expect(result.serviceAccount).toBe("owner");
    const expires = Date.parse(result.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(started + 899_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 901_000);

    expect(await get(server, result.token, "/api/v1/namespaces/acme-owner/configmaps")).toBe(200);
    expect(await get(server, result.token, "/api/v1/namespaces/globex-owner/configmaps")).toBe(403);
    expect(await get(server, "not-a-token", "/api/v1/namespaces/acme-owner/configmaps")).toBe(401);
  } finally {
    await server.close();
  }
});

test.each([
  [{ tenant: "acme", role: "readOnly", ttlSeconds: 600 }, "acme-owner", "readonly"],
  [{ tenant: "acme", role: "projectDev", project: "web", ttlSeconds: 3600 }, "acme-web", "dev"],
])("issue-token %o → %s/%s", async (args, namespace, serviceAccount) => {
  const server = await cluster();
  try {
    const handle = createCommandHandler({
      kube: createKubeClient({ kubeconfig: server.kubeconfig() }),
      logger: createMemoryLogger(),
    });
    const reply = await handle(command("issue-token", args));
    expect(reply).toMatchObject({ ok: true, result: { namespace, serviceAccount } });
    const token = (reply.result as { token: string }).token;
    // Authenticated as that ServiceAccount: 403 (no RBAC here), not 401.
    expect(await get(server, token, `/api/v1/namespaces/${namespace}/secrets`)).toBe(403);
  } finally {
    await server.close();
  }
});

test.each([
  [{ tenant: "acme", role: "tenantOwner", ttlSeconds: 599 }, "KN-400", "ttlSeconds"],
  [{ tenant: "acme", role: "tenantOwner", ttlSeconds: 60 }, "KN-400", "ttlSeconds"],
  [{ tenant: "acme", role: "tenantOwner" }, "KN-400", "ttlSeconds"],
  [{ tenant: "acme", role: "tenantOwner", ttlSeconds: "900" }, "KN-400", "ttlSeconds"],
  [{ tenant: "Acme!", role: "tenantOwner", ttlSeconds: 900 }, "KN-400", "tenant"],
  [{ tenant: "acme", role: "admin", ttlSeconds: 900 }, "KN-400", "role"],
  [{ tenant: "acme", role: "projectDev", ttlSeconds: 900 }, "KN-400", "project"],
  [{ tenant: "initech", role: "tenantOwner", ttlSeconds: 900 }, "KN-404", "initech"],
  [{ tenant: "acme", role: "projectDev", project: "api", ttlSeconds: 900 }, "KN-404", "acme-api"],
])("issue-token %o → %s naming %s", async (args, code, named) => {
  const server = await cluster();
  try {
    const handle = createCommandHandler({
      kube: createKubeClient({ kubeconfig: server.kubeconfig() }),
      logger: createMemoryLogger(),
    });
    const reply = await handle(command("issue-token", args));
    expect(reply.ok).toBe(false);
    expect(reply.error?.code).toBe(code);
    expect(reply.error?.message).toContain(named);
    expect(reply.result).toBeUndefined();
  } finally {
    await server.close();
  }
});

test("collect-usage, resync, unsupported commands and a passed deadline", async () => {
  const server = await cluster();
  try {
    let resyncs = 0;
    const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
    const handle = createCommandHandler({
      kube,
      logger: createMemoryLogger(),
      collectUsageNow: async () => ({ reports: 3, windowStart: "2025-03-01T09:00:00.000Z" }),
      resync: async () => {
        resyncs++;
      },
    });
    expect(await handle(command("collect-usage"))).toEqual({
      ok: true,
      result: { reports: 3, windowStart: "2025-03-01T09:00:00.000Z" },
    });
    expect(await handle(command("resync"))).toEqual({ ok: true, result: {} });
    expect(resyncs).toBe(1);
    for (const name of ["logs", "cleanup"] as const) {
      expect(await handle(command(name))).toEqual({
        ok: false,
        error: { code: "KN-422", message: `${name} is not supported yet` },
      });
    }
    const late = await handle({ ...command("resync"), deadline: new Date(Date.now() - 1000).toISOString() });
    expect(late.error?.code).toBe("KN-504");
    expect(resyncs).toBe(1);

    const bare = createCommandHandler({ kube, logger: createMemoryLogger() });
    expect((await bare(command("collect-usage"))).error?.code).toBe("KN-422");
    const failing = createCommandHandler({
      kube,
      logger: createMemoryLogger(),
      resync: async () => {
        throw new Error("store unavailable");
      },
    });
    expect(await failing(command("resync"))).toEqual({
      ok: false,
      error: { code: "KN-503", message: "resync failed: store unavailable" },
    });
  } finally {
    await server.close();
  }
});
