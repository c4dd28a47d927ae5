/**
 * @module operator/commands — the operator's answers to the Manager's `commands` (DESIGN.md §3, §4): one handler
 * per command name, routed by one exhaustive `switch`. Replies carry KubeNova error codes; nothing is thrown back
 * to the link.
 *
 * `logs` and `cleanup` answer KN-422 "not supported yet": the in-memory test API server has no pod logs, and
 * cleanup's scope (what to remove when a cluster is deleted) is not decided yet.
 */
import { z } from "../shared/zod.ts";
import type { Logger } from "../shared/logger.ts";
import type { CommandBody, ReplyBody } from "../shared/messages.ts";
import { KubeApiError, type KubeClient } from "./kube/kube.ts";
import type { CommandHandler } from "./link/link.ts";

type Reply = Omit<ReplyBody, "correlationId">;

/** TokenRequest refuses shorter tokens (DESIGN.md §9.7). */
export const MIN_TOKEN_TTL_SECONDS = 600;

// Built on first use (z.lazy), like the message schemas (shared/messages.ts): most operators never get a command.
export const IssueTokenArgs = z.lazy(() => {
  const DnsLabel = z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(63),
      z.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label"),
    );
  return z.object({
    tenant: DnsLabel,
    role: z.enum(["tenantOwner", "projectDev", "readOnly"]),
    project: z.optional(DnsLabel),
    ttlSeconds: z
      .number()
      .check(
        z.int(),
        z.minimum(
          MIN_TOKEN_TTL_SECONDS,
          `must be at least ${MIN_TOKEN_TTL_SECONDS} (TokenRequest's minimum)`,
        ),
      ),
  });
});
export type IssueTokenArgs = z.infer<typeof IssueTokenArgs>;

/**
 * The ServiceAccount a role's token is minted for: the tenant's `owner` and `readonly` live in `<tenant>-owner`
 * (DESIGN.md §6), a project's `dev` in the project's namespace `<tenant>-<project>`.
 */
export function serviceAccountFor(args: IssueTokenArgs): { namespace: string; serviceAccount: string } {
  switch (args.role) {
    case "tenantOwner":
      return { namespace: `${args.tenant}-owner`, serviceAccount: "owner" };
    case "readOnly":
      return { namespace: `${args.tenant}-owner`, serviceAccount: "readonly" };
    case "projectDev":
      return { namespace: `${args.tenant}-${args.project}`, serviceAccount: "dev" };
    default: {
      const unknownRole: never = args.role;
      throw new Error(`unknown role ${String(unknownRole)}`);
    }
  }
}

export interface CommandDeps {
  kube: KubeClient;
  logger: Logger;
  /** Collects and reports usage now (usage collector's `collectNow`). */
  collectUsageNow?: () => Promise<{ reports: number; windowStart?: string; windowEnd?: string }>;
  /** Re-reads desired state and reconciles everything (e.g. enqueues every key). */
  resync?: () => Promise<void>;
  now?: () => Date;
}

const fail = (code: string, message: string): Reply => ({ ok: false, error: { code, message } });

function badArgs(error: z.core.$ZodError): Reply {
  const issue = error.issues[0];
  const field = issue?.path.join(".") || "args";
  return fail("KN-400", `${field}: ${issue?.message ?? "invalid"}`);
}

export function createCommandHandler(deps: CommandDeps): CommandHandler {
  const log = deps.logger.child({ component: "commands" });
  const now = deps.now ?? (() => new Date());

  async function issueToken(command: CommandBody): Promise<Reply> {
    const parsed = z.safeParse(IssueTokenArgs, command.args);
    if (!parsed.success) return badArgs(parsed.error);
    const args = parsed.data;
    if (args.role === "projectDev" && !args.project)
      return fail("KN-400", "project: required for role projectDev");
    const { namespace, serviceAccount } = serviceAccountFor(args);
    try {
      const { token, expiresAt } = await deps.kube.createToken(namespace, serviceAccount, args.ttlSeconds);
      // The token goes into the reply only; it is never logged and the Manager does not store it (DESIGN.md §4).
      log.info("token issued", {
        tenant: args.tenant,
        role: args.role,
        namespace,
        service_account: serviceAccount,
      });
      return { ok: true, result: { token, expiresAt, namespace, serviceAccount } };
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) {
        return fail(
          "KN-404",
          `ServiceAccount ${serviceAccount} in ${namespace} not found for tenant ${args.tenant}`,
        );
      }
      if (error instanceof KubeApiError && (error.status === 400 || error.status === 422)) {
        return fail("KN-400", `ttlSeconds: refused by the API server: ${error.message}`);
      }
      log.warn("token request failed", { tenant: args.tenant, namespace, err: error as Error });
      return fail("KN-503", `token request failed: ${(error as Error).message}`);
    }
  }

  async function collectUsage(): Promise<Reply> {
    if (!deps.collectUsageNow) return fail("KN-422", "collect-usage is not supported by this operator");
    try {
      return { ok: true, result: { ...(await deps.collectUsageNow()) } };
    } catch (error) {
      log.warn("collect-usage failed", { err: error as Error });
      return fail("KN-503", `usage collection failed: ${(error as Error).message}`);
    }
  }

  async function resync(): Promise<Reply> {
    if (!deps.resync) return fail("KN-422", "resync is not supported by this operator");
    try {
      await deps.resync();
      return { ok: true, result: {} };
    } catch (error) {
      log.warn("resync failed", { err: error as Error });
      return fail("KN-503", `resync failed: ${(error as Error).message}`);
    }
  }

  return async (command) => {
    // A command past its deadline is answered, not run: the Manager has already given up on it.
    if (Date.parse(command.deadline) < now().getTime()) {
      return fail("KN-504", `deadline ${command.deadline} passed before ${command.name} ran`);
    }
    switch (command.name) {
      case "issue-token":
        return issueToken(command);
      case "collect-usage":
        return collectUsage();
      case "resync":
        return resync();
      case "logs":
      case "cleanup":
        return fail("KN-422", `${command.name} is not supported yet`);
      default: {
        const unknownCommand: never = command.name;
        return fail("KN-422", `unknown command ${String(unknownCommand)}`);
      }
    }
  };
}
