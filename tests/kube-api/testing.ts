/** Helpers shared by the kube-api test files. */

import * as k8s from "@kubernetes/client-node";
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from "./server.ts";

export interface Harness {
  server: KubeApiServer;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  objects: k8s.KubernetesObjectApi;
}

export async function startHarness(options: KubeApiServerOptions = {}): Promise<Harness> {
  const server = await startKubeApiServer(options);
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig());
  return {
    server,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

export function clientFor(server: KubeApiServer, token: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(server.kubeconfig({ token }));
  return kc;
}

/** Polls until `fn` returns a truthy value (generous timeout for a shared 2-core machine). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** The Status body of a rejected client-node call. */
export async function rejection(
  p: Promise<unknown>,
): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body =
      typeof e.body === "string"
        ? (JSON.parse(e.body) as Record<string, unknown>)
        : (e.body as Record<string, unknown>);
    return { code: e.code ?? 0, body };
  }
  throw new Error("expected the request to fail");
}

export { k8s };
