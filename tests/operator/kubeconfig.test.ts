/**
 * How the operator reaches its API server (operator/kube/kubeconfig.ts) against the in-memory API server over
 * TLS: the kubeconfig's CA is what is trusted, the in-cluster ServiceAccount works from its mounted files, an
 * exec credential plugin supplies the token, and what cannot work is refused with a message.
 */
import { afterEach, expect, test } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKubeClient } from "../../operator/kube/http-client.ts";
import { inClusterConnection } from "../../operator/kube/kubeconfig.ts";
import { type KubeApiServer, startKubeApiServer } from "../kube-api/server.ts";

let server: KubeApiServer | null = null;
let dir: string | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
});

const kubeconfig = (url: string, cluster: Record<string, unknown>, user: Record<string, unknown>) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "test",
    contexts: [{ name: "test", context: { cluster: "c", user: "u" } }],
    clusters: [{ name: "c", cluster: { server: url, ...cluster } }],
    users: [{ name: "u", user }],
  });

test("over TLS the kubeconfig's CA is trusted, and only it", async () => {
  server = await startKubeApiServer({ tls: true, namespaces: ["acme"] });
  const kube = createKubeClient({ kubeconfig: server.kubeconfig() });
  expect((await kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" }))?.metadata.name).toBe("acme");
  // The same server with no CA in the kubeconfig: the chain does not verify, so nothing is sent.
  const untrusted = createKubeClient({
    kubeconfig: kubeconfig(server.url, {}, { token: server.adminToken }),
  });
  await expect(untrusted.get({ apiVersion: "v1", kind: "Namespace", name: "acme" })).rejects.toMatchObject({
    status: 0,
  });
});

test("in a pod: the ServiceAccount's CA and token files; a rotated token is read again after a 401", async () => {
  server = await startKubeApiServer({ tls: true, namespaces: ["acme"] });
  dir = await mkdtemp(join(tmpdir(), "kn-sa-"));
  await writeFile(join(dir, "ca.crt"), server.caPem ?? "");
  await writeFile(join(dir, "token"), "stale-token\n");
  const port = new URL(server.url).port;
  const connection = inClusterConnection(
    { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port },
    dir,
  );
  expect(connection.server).toBe(`https://127.0.0.1:${port}`);
  const kube = createKubeClient({ connection });
  await expect(kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" })).rejects.toMatchObject({
    status: 401,
  });
  // The kubelet rotates the projected token; the next 401 makes the client read the file again and retry.
  await writeFile(join(dir, "token"), `${server.adminToken}\n`);
  expect((await kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" }))?.metadata.name).toBe("acme");
  expect(() => inClusterConnection({}, dir ?? "")).toThrow(/KUBERNETES_SERVICE_HOST/);
});

test("a rotated token file is picked up after a 401 without restarting", async () => {
  server = await startKubeApiServer({ namespaces: ["acme"] });
  dir = await mkdtemp(join(tmpdir(), "kn-tokenfile-"));
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, "not-a-valid-token");
  const kube = createKubeClient({
    kubeconfig: kubeconfig(server.url, { "insecure-skip-tls-verify": true }, { tokenFile }),
  });
  await expect(kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" })).rejects.toMatchObject({
    status: 401,
  });
  await writeFile(tokenFile, server.adminToken);
  expect((await kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" }))?.metadata.name).toBe("acme");
});

test("an exec credential plugin supplies the token, run once while it is valid", async () => {
  server = await startKubeApiServer({ namespaces: ["acme"] });
  dir = await mkdtemp(join(tmpdir(), "kn-exec-"));
  const plugin = join(dir, "credential-plugin");
  const runs = join(dir, "runs");
  const expires = new Date(Date.now() + 3_600_000).toISOString();
  await writeFile(
    plugin,
    `#!/bin/sh\necho run >> "${runs}"\ntest "$PLUGIN_ENV" = "set" || exit 3\necho "$KUBERNETES_EXEC_INFO" | grep -q ExecCredential || exit 4\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${server.adminToken}","expirationTimestamp":"${expires}"}}'\n`,
  );
  await chmod(plugin, 0o755);
  const kube = createKubeClient({
    kubeconfig: kubeconfig(
      server.url,
      { "insecure-skip-tls-verify": true },
      {
        exec: {
          apiVersion: "client.authentication.k8s.io/v1",
          command: plugin,
          env: [{ name: "PLUGIN_ENV", value: "set" }],
          interactiveMode: "Never",
        },
      },
    ),
  });
  expect((await kube.get({ apiVersion: "v1", kind: "Namespace", name: "acme" }))?.metadata.name).toBe("acme");
  expect((await kube.list("v1", "Namespace")).map((n) => n.metadata.name)).toContain("acme");
  expect((await Bun.file(runs).text()).trim().split("\n")).toEqual(["run"]);
});

test("legacy auth-provider users are refused with a message naming the way out", () => {
  expect(() =>
    createKubeClient({
      kubeconfig: kubeconfig("https://127.0.0.1:6443", {}, { "auth-provider": { name: "gcp", config: {} } }),
    }),
  ).toThrow(/auth-provider "gcp" is not supported; use an exec credential plugin/);
});
