/**
 * @module operator/helm — the operator's narrow view of the Helm CLI (DESIGN.md §6: add-ons are installed
 * through the Helm binary shipped in the operator image). Commands run as argv arrays through `Bun.spawn`, never
 * through a shell, with a deadline; a non-zero exit becomes a `HelmError` carrying the tail of stderr.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../shared/logger.ts";

/** One entry of `helm list --output json`. */
export interface HelmRelease {
  name: string;
  namespace: string;
  /** `<chart name>-<chart version>`, e.g. `capsule-0.14.0`. */
  chart: string;
  app_version: string;
  /** `deployed`, `failed`, `pending-install`, `pending-upgrade`, … */
  status: string;
  revision: string;
}

export interface HelmUpgradeInstall {
  release: string;
  /** A repo reference (`projectcapsule/capsule`), an OCI reference or a path to a vendored chart archive. */
  chart: string;
  version: string;
  namespace: string;
  /** How long Helm waits for the release's resources (`--wait --timeout`). */
  waitTimeoutSeconds: number;
  /** User-supplied values; passed as a values file so no value is ever parsed as a flag. */
  values?: Record<string, unknown>;
}

export interface Helm {
  /** Releases of every status in `namespace`. */
  list(namespace: string): Promise<HelmRelease[]>;
  /** The user-supplied values of a release (`{}` when none). */
  getValues(release: string, namespace: string): Promise<Record<string, unknown>>;
  upgradeInstall(options: HelmUpgradeInstall): Promise<void>;
}

const STDERR_TAIL_CHARS = 2000;

export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    /** The last ~2 KB of stderr: where Helm says what went wrong. */
    readonly stderrTail: string,
    readonly timedOut: boolean,
  ) {
    super(
      timedOut
        ? `helm ${args[0]} timed out`
        : `helm ${args[0]} exited with ${exitCode}: ${stderrTail.trim() || "(no stderr)"}`,
    );
    this.name = "HelmError";
  }
}

export interface HelmOptions {
  /** Path of the helm binary; `helm` from PATH by default. */
  binary?: string;
  /** Deadline for commands that do not wait for resources (list, get). Default 60 s. */
  commandTimeoutMs?: number;
  /** Extra environment (e.g. `HELM_CACHE_HOME`); the operator's environment is inherited. */
  env?: Record<string, string>;
  logger: Logger;
}

const tail = (text: string) => (text.length > STDERR_TAIL_CHARS ? text.slice(-STDERR_TAIL_CHARS) : text);

export function createHelm(options: HelmOptions): Helm {
  const binary = options.binary ?? "helm";
  const commandTimeoutMs = options.commandTimeoutMs ?? 60_000;
  const log = options.logger.child({ adapter: "helm" });

  async function run(args: string[], timeoutMs: number): Promise<string> {
    const started = performance.now();
    const proc = Bun.spawn([binary, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...options.env },
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGTERM");
    }, timeoutMs);
    try {
      const [stdout, stderr, exitCode] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      log.debug("helm ran", {
        command: args[0],
        exit_code: exitCode,
        duration_ms: Math.round(performance.now() - started),
      });
      if (timedOut || exitCode !== 0) throw new HelmError(args, exitCode, tail(stderr), timedOut);
      return stdout;
    } finally {
      clearTimeout(timer);
    }
  }

  const parseJson = (text: string, what: string): unknown => {
    try {
      return JSON.parse(text.trim() || "null");
    } catch {
      throw new HelmError([what], 0, `unparseable output: ${tail(text)}`, false);
    }
  };

  return {
    async list(namespace) {
      const out = await run(
        ["list", "--namespace", namespace, "--all", "--output", "json"],
        commandTimeoutMs,
      );
      const parsed = parseJson(out, "list");
      return Array.isArray(parsed) ? (parsed as HelmRelease[]) : [];
    },
    async getValues(release, namespace) {
      const out = await run(
        ["get", "values", release, "--namespace", namespace, "--output", "json"],
        commandTimeoutMs,
      );
      const parsed = parseJson(out, "get");
      return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
    },
    async upgradeInstall(install) {
      // `--flag=value` so a value can never be read as another flag.
      const args = [
        "upgrade",
        "--install",
        install.release,
        install.chart,
        `--version=${install.version}`,
        `--namespace=${install.namespace}`,
        "--create-namespace",
        "--wait",
        `--timeout=${install.waitTimeoutSeconds}s`,
      ];
      let dir: string | null = null;
      try {
        if (install.values && Object.keys(install.values).length > 0) {
          dir = await mkdtemp(join(tmpdir(), "kubenova-helm-"));
          const file = join(dir, "values.json"); // JSON is YAML: Helm reads it as a values file
          await writeFile(file, JSON.stringify(install.values), { mode: 0o600 });
          args.push(`--values=${file}`);
        }
        // Helm's own --timeout bounds the wait; the process deadline adds a grace period on top of it.
        await run(args, install.waitTimeoutSeconds * 1000 + commandTimeoutMs);
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
