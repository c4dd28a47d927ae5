/**
 * @module In-memory Kubernetes API server for tests and the demo (DESIGN.md §10): real REST protocol,
 * discovery, CRDs validated against their openAPIV3Schema, server-side apply, watches, RBAC, TokenRequest.
 * See README.md for what it emulates and what it does not.
 */

import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { ApiCore, tableOf } from "./api.ts";
import { defaultCrdDirs, loadCrds } from "./crds.ts";
import { Faults } from "./faults.ts";
import { handle, type RequestLogEntry } from "./http.ts";
import { Authenticator, defaultRbacObjects } from "./rbac.ts";
import { builtinResources, Registry, splitApiVersion } from "./registry.ts";
import { type SimulationOptions, startSimulations } from "./simulations.ts";
import { type KubeObject, Store } from "./store.ts";
import { tlsMaterial } from "./tls.ts";

export type { RequestLogEntry } from "./http.ts";
export type { KubeObject } from "./store.ts";

export interface KubeApiServerOptions {
  /** Folders whose YAML CustomResourceDefinitions are installed at start; defaults to `defaultCrdDirs()`. */
  crdDirs?: string[];
  tls?: boolean;
  /** Bearer token of a `system:masters` user; random when omitted. */
  adminToken?: string;
  /** Simulated Capsule/KubeVela controllers (see simulations.ts); all off by default. */
  simulations?: SimulationOptions;
  /** Change events kept for watches to resume from; older resourceVersions get 410. Default 1000. */
  watchHistorySize?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 1000 ms. */
  bookmarkIntervalMs?: number;
  /** Namespaces created at start (besides `default`, `kube-system`, `kube-public`). */
  namespaces?: string[];
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface KubeApiServer {
  url: string;
  adminToken: string;
  /** PEM of the CA that signed the server certificate (TLS only). */
  caPem: string | undefined;
  /** Admin kubeconfig YAML, or one for `user.token` (e.g. a ServiceAccount token). */
  kubeconfig(user?: { token: string }): string;
  writeKubeconfig(path: string, user?: { token: string }): void;
  faults: Faults;
  /** Every request handled, oldest first. */
  requests: RequestLogEntry[];
  /** In-process read, bypassing HTTP and RBAC. */
  get(ref: ObjectRef): KubeObject | undefined;
  /** In-process list, bypassing HTTP and RBAC. */
  list(ref: { apiVersion: string; kind: string; namespace?: string }): KubeObject[];
  /**
   * In-process upsert, bypassing admission and status-subresource rules, as a controller writing status
   * would; still gets a new resourceVersion and watch events (none when nothing changed).
   */
  put(obj: KubeObject): KubeObject;
  /** In-process delete with the same finalizer/GC semantics as the API. */
  delete(ref: ObjectRef): void;
  /** Errors from background work (GC, namespace termination, simulations). */
  backgroundErrors: unknown[];
  close(): Promise<void>;
}

function systemNamespace(name: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels: { "kubernetes.io/metadata.name": name } },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

/** Starts a server on 127.0.0.1 with an ephemeral port. */
export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const registry = new Registry(builtinResources());
  const store = new Store({ historySize: options.watchHistorySize ?? 1000 });
  const adminToken = options.adminToken ?? randomBytes(24).toString("hex");
  const auth = new Authenticator(adminToken, store);
  const core = new ApiCore(registry, store, auth);
  const faults = new Faults();
  const requests: RequestLogEntry[] = [];

  for (const ns of [
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    ...(options.namespaces ?? []),
  ]) {
    core.putDirect(systemNamespace(ns));
  }
  for (const obj of defaultRbacObjects()) core.putDirect(obj);
  core.putDirect({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "default", namespace: "default" },
  });
  for (const crd of loadCrds(options.crdDirs ?? defaultCrdDirs())) core.putDirect(crd);

  const stopSimulations = startSimulations(core, options.simulations ?? {});
  const tls = options.tls ? tlsMaterial() : undefined;
  const ctx = { core, faults, requests, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // Watches stay open with no traffic for long stretches; Bun's default 10 s idle timeout would cut them.
    idleTimeout: 0,
    ...(tls ? { tls: { cert: tls.certPem, key: tls.keyPem } } : {}),
    fetch: (req) => handle(ctx, req),
  });
  const url = `${tls ? "https" : "http"}://127.0.0.1:${server.port}`;

  const kubeconfig = (user?: { token: string }): string => {
    const cluster: Record<string, unknown> = { server: url };
    if (tls) cluster["certificate-authority-data"] = Buffer.from(tls.caPem).toString("base64");
    // @kubernetes/client-node 2.0 refuses http:// servers unless TLS verification is explicitly skipped.
    else cluster["insecure-skip-tls-verify"] = true;
    const userName = user ? "token-user" : "admin";
    return stringify(
      {
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "kube-api", cluster }],
        users: [{ name: userName, user: { token: user?.token ?? adminToken } }],
        contexts: [
          { name: "kube-api", context: { cluster: "kube-api", user: userName, namespace: "default" } },
        ],
        "current-context": "kube-api",
        preferences: {},
      },
      { version: "1.1", lineWidth: 0 },
    );
  };

  const typeOf = (ref: { apiVersion: string; kind: string }) => {
    const t = registry.byKind(ref.apiVersion, ref.kind);
    if (!t) throw new Error(`no resource serves ${ref.apiVersion} ${ref.kind}`);
    return t;
  };

  return {
    url,
    adminToken,
    caPem: tls?.caPem,
    kubeconfig,
    writeKubeconfig: (path, user) => writeFileSync(path, kubeconfig(user), { mode: 0o600 }),
    faults,
    requests,
    get: (ref) => {
      const t = typeOf(ref);
      const obj = store.get(tableOf(t), t.namespaced ? ref.namespace : undefined, ref.name);
      return obj ? core.present(obj, t, splitApiVersion(ref.apiVersion).version) : undefined;
    },
    list: (ref) => {
      const t = typeOf(ref);
      return store
        .list(tableOf(t), ref.namespace)
        .map((o) => core.present(o, t, splitApiVersion(ref.apiVersion).version));
    },
    put: (obj) => core.putDirect(obj),
    delete: (ref) => {
      const t = typeOf(ref);
      const live = store.get(tableOf(t), t.namespaced ? ref.namespace : undefined, ref.name);
      if (live) core.deleteObject(t, live, "Background", splitApiVersion(ref.apiVersion).version);
    },
    backgroundErrors: core.backgroundErrors,
    close: async () => {
      stopSimulations();
      faults.dropWatches();
      core.close();
      await server.stop(true);
    },
  };
}
