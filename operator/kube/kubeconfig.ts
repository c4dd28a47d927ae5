/**
 * Where the API server is and how to authenticate to it: the in-cluster ServiceAccount (token re-read every
 * minute, as client-go does, so projected tokens rotate) or a kubeconfig (its current context: server, CA or
 * insecure-skip-tls-verify, tls-server-name, proxy-url; user token, tokenFile, client certificate and key,
 * basic auth, or an exec credential plugin). Legacy `auth-provider` users are refused with a message: kubectl
 * itself dropped them in favour of exec plugins.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_FILE_REREAD_MS = 60_000;
/** An exec credential is run again this long before it expires. */
const EXEC_EXPIRY_MARGIN_MS = 10_000;

/** Per request: the Authorization header (if any) and, from an exec plugin, a client certificate. */
export interface KubeCredentials {
  authorization?: string;
  cert?: string;
  key?: string;
}

export interface KubeConnection {
  /** `https://host:port`, no trailing slash (a path prefix is kept). */
  server: string;
  tls: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; serverName?: string };
  proxy?: string;
  credentials(): Promise<KubeCredentials>;
  /** The server refused the credentials (401): fetch fresh ones on the next request. */
  invalidate(): void;
}

type Yaml = Record<string, unknown>;

const isRecord = (v: unknown): v is Yaml => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const fromBase64 = (data: string) => Buffer.from(data, "base64").toString("utf8");

/** The in-cluster connection (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted ServiceAccount). */
export function inClusterConnection(
  env: Record<string, string | undefined> = process.env,
  dir = SERVICE_ACCOUNT_DIR,
): KubeConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new Error(
      "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset); set KUBECONFIG",
    );
  }
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  const server = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    server,
    tls: { ca: readFileSync(`${dir}/ca.crt`, "utf8"), rejectUnauthorized: true },
    ...tokenFileCredentials(`${dir}/token`),
  };
}

function tokenFileCredentials(path: string): Pick<KubeConnection, "credentials" | "invalidate"> {
  let token = "";
  let readAt = 0;
  return {
    async credentials() {
      if (Date.now() - readAt > TOKEN_FILE_REREAD_MS) {
        token = readFileSync(path, "utf8").trim();
        readAt = Date.now();
      }
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    invalidate() {
      readAt = 0;
    },
  };
}

/** A connection from kubeconfig text (YAML or JSON); relative file names resolve against `baseDir`. */
export function kubeconfigConnection(text: string, baseDir: string): KubeConnection {
  const config = Bun.YAML.parse(text);
  if (!isRecord(config)) throw new Error("kubeconfig: not a YAML mapping");
  const named = (list: unknown, field: string, name: string | undefined): Yaml | undefined => {
    const items = Array.isArray(list) ? list.filter(isRecord) : [];
    const item = name === undefined ? items[0] : items.find((i) => i.name === name);
    return isRecord(item?.[field]) ? (item[field] as Yaml) : undefined;
  };
  const contextName = str(config["current-context"]);
  const context = named(config.contexts, "context", contextName);
  if (!context) throw new Error(`kubeconfig: context ${JSON.stringify(contextName ?? "(first)")} not found`);
  const clusterName = str(context.cluster);
  const cluster = named(config.clusters, "cluster", clusterName);
  if (!cluster) throw new Error(`kubeconfig: cluster ${JSON.stringify(clusterName)} not found`);
  const userName = str(context.user);
  const user = userName === undefined ? {} : (named(config.users, "user", userName) ?? {});
  const file = (path: string) => readFileSync(isAbsolute(path) ? path : resolve(baseDir, path), "utf8");
  const pem = (data: unknown, path: unknown): string | undefined => {
    const inline = str(data);
    if (inline) return fromBase64(inline);
    const name = str(path);
    return name ? file(name) : undefined;
  };

  const server = str(cluster.server)?.replace(/\/+$/, "");
  if (!server) throw new Error(`kubeconfig: cluster ${JSON.stringify(clusterName)} has no server`);
  const ca = pem(cluster["certificate-authority-data"], cluster["certificate-authority"]);
  const serverName = str(cluster["tls-server-name"]);
  const proxy = str(cluster["proxy-url"]);
  const cert = pem(user["client-certificate-data"], user["client-certificate"]);
  const key = pem(user["client-key-data"], user["client-key"]);
  const tls = {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(serverName ? { serverName } : {}),
    rejectUnauthorized: cluster["insecure-skip-tls-verify"] !== true,
  };
  const base = { server, tls, ...(proxy ? { proxy } : {}) };

  if (isRecord(user["auth-provider"])) {
    throw new Error(
      `kubeconfig user ${JSON.stringify(userName)}: auth-provider ${JSON.stringify(user["auth-provider"].name)} is not supported; use an exec credential plugin`,
    );
  }
  if (isRecord(user.exec)) return { ...base, ...execCredentials(user.exec, baseDir) };
  const tokenFile = str(user.tokenFile);
  if (tokenFile)
    return {
      ...base,
      ...tokenFileCredentials(isAbsolute(tokenFile) ? tokenFile : resolve(baseDir, tokenFile)),
    };
  const token = str(user.token);
  const username = str(user.username);
  const authorization = token
    ? `Bearer ${token}`
    : username
      ? `Basic ${Buffer.from(`${username}:${str(user.password) ?? ""}`).toString("base64")}`
      : undefined;
  return {
    ...base,
    credentials: async () => (authorization ? { authorization } : {}),
    invalidate() {},
  };
}

/**
 * An exec credential plugin (client.authentication.k8s.io v1/v1beta1): runs the command non-interactively and
 * uses the token or client certificate it prints until its expiry (or until the server answers 401).
 */
function execCredentials(exec: Yaml, baseDir: string): Pick<KubeConnection, "credentials" | "invalidate"> {
  const command = str(exec.command);
  if (!command) throw new Error("kubeconfig: exec credential plugin without a command");
  // kubectl resolves a relative command that names a path against the kubeconfig's directory.
  const executable = command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command;
  const args = Array.isArray(exec.args) ? exec.args.map(String) : [];
  const extraEnv: Record<string, string> = {};
  for (const entry of Array.isArray(exec.env) ? exec.env.filter(isRecord) : []) {
    if (typeof entry.name === "string") extraEnv[entry.name] = String(entry.value ?? "");
  }
  const apiVersion = str(exec.apiVersion) ?? "client.authentication.k8s.io/v1";
  let cached: { credentials: KubeCredentials; expiresAtMs: number } | null = null;
  let running: Promise<KubeCredentials> | null = null;

  const run = async (): Promise<KubeCredentials> => {
    const proc = Bun.spawn([executable, ...args], {
      env: {
        ...process.env,
        ...extraEnv,
        KUBERNETES_EXEC_INFO: JSON.stringify({
          apiVersion,
          kind: "ExecCredential",
          spec: { interactive: false },
        }),
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (code !== 0) {
      throw new Error(
        `kubeconfig exec plugin ${command} exited with ${code}: ${stderr.trim().slice(0, 500)}`,
      );
    }
    const status = (JSON.parse(stdout) as { status?: Yaml }).status ?? {};
    const token = str(status.token);
    const cert = str(status.clientCertificateData);
    const key = str(status.clientKeyData);
    const credentials: KubeCredentials = {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(cert && key ? { cert, key } : {}),
    };
    const expiry = str(status.expirationTimestamp);
    cached = {
      credentials,
      expiresAtMs: expiry ? Date.parse(expiry) - EXEC_EXPIRY_MARGIN_MS : Number.POSITIVE_INFINITY,
    };
    return credentials;
  };

  return {
    credentials() {
      if (cached && Date.now() < cached.expiresAtMs) return Promise.resolve(cached.credentials);
      running ??= run().finally(() => {
        running = null;
      });
      return running;
    },
    invalidate() {
      cached = null;
    },
  };
}

/** From a kubeconfig file or text, else the in-cluster ServiceAccount. */
export function loadKubeConnection(options: {
  kubeconfigPath?: string;
  kubeconfig?: string;
}): KubeConnection {
  if (options.kubeconfig !== undefined) return kubeconfigConnection(options.kubeconfig, process.cwd());
  if (options.kubeconfigPath !== undefined) {
    return kubeconfigConnection(
      readFileSync(options.kubeconfigPath, "utf8"),
      dirname(options.kubeconfigPath),
    );
  }
  return inClusterConnection();
}
