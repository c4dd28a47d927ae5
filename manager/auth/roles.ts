/**
 * Who may issue which token (`POST /api/v1/tokens`) and which tenant/project a principal may see. Both are pure
 * functions of the principal so every route applies the same rules (DESIGN.md §4: no object-level gaps).
 */
import type { Role } from "../../shared/api/models.ts";
import { type Principal, roleScopeProblem } from "./claims.ts";

/** Power of a role, highest first. Useful for display and sorting; authority decisions use `canIssue`. */
export const ROLE_RANK: Readonly<Record<Role, number>> = {
  admin: 50,
  ops: 40,
  tenantOwner: 30,
  projectDev: 20,
  readOnly: 10,
};

export function roleRank(role: Role): number {
  return ROLE_RANK[role];
}

export interface TokenIssueRequest {
  role: Role;
  tenant?: string | undefined;
  project?: string | undefined;
  ttlSeconds: number;
}

export type IssueDecision = { ok: true } | { ok: false; reason: string };

export interface ScopeTarget {
  tenant?: string | null | undefined;
  project?: string | null | undefined;
}

const deny = (reason: string): IssueDecision => ({ ok: false, reason });

/** Roles each caller role may hand out, before scope is considered. */
const ISSUABLE: Readonly<Record<Role, readonly Role[]>> = {
  admin: ["admin", "ops", "tenantOwner", "projectDev", "readOnly"],
  ops: ["ops", "readOnly"],
  tenantOwner: ["tenantOwner", "projectDev", "readOnly"],
  projectDev: ["projectDev", "readOnly"],
  readOnly: ["readOnly"],
};

/**
 * Whether `caller` may issue the requested token: the role must be one the caller's role may grant, the scope the
 * same as or narrower than the caller's (ops may grant only global tokens), the role/scope combination valid, and
 * the token must not outlive the caller's own (`expiresAt`; `null` means the caller's lifetime is unbounded).
 */
export function canIssue(
  caller: Principal,
  request: TokenIssueRequest,
  now: Date = new Date(),
): IssueDecision {
  const problem = roleScopeProblem(request);
  if (problem !== null) return deny(problem);
  if (!Number.isSafeInteger(request.ttlSeconds) || request.ttlSeconds <= 0) {
    return deny("ttlSeconds must be a positive integer");
  }
  if (!ISSUABLE[caller.role].includes(request.role)) {
    return deny(`role ${caller.role} may not issue ${request.role} tokens`);
  }
  if (caller.role === "ops" && (request.tenant !== undefined || request.project !== undefined)) {
    return deny("role ops may issue only global tokens");
  }
  if (!isWithinScope(caller, request)) {
    return deny("the requested scope is outside the caller's own scope");
  }
  if (caller.expiresAt !== null && now.getTime() + request.ttlSeconds * 1000 > caller.expiresAt.getTime()) {
    return deny("the requested token would outlive the caller's own token");
  }
  return { ok: true };
}

/**
 * Whether a principal may see something at `target` scope. admin, ops and global readOnly see every tenant;
 * a tenant-scoped principal sees only its tenant; a project-scoped one only its project. A target without a tenant
 * (a global object such as a cluster) is outside every tenant scope, and a tenant-level target (no project) is
 * outside every project scope: routes that want to show such objects to scoped principals decide that explicitly.
 */
export function isWithinScope(principal: Principal, target: ScopeTarget): boolean {
  if (principal.role === "admin" || principal.role === "ops") return true;
  if (principal.tenant === null) return true; // global readOnly
  if (target.tenant === undefined || target.tenant === null || target.tenant !== principal.tenant)
    return false;
  if (principal.project === null) return true;
  return target.project !== undefined && target.project !== null && target.project === principal.project;
}
