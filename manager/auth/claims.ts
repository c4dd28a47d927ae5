/**
 * @module manager/auth — REST authentication (DESIGN.md §4 "REST auth"): KubeNova access-token claims, the jose
 * signer and verifier (the only files that import jose), the development-secret loader and the issuing rules.
 *
 * This file: the claims a KubeNova access token carries, the role/scope rules every token must satisfy, and the
 * `Principal` the rest of the Manager sees after verification.
 */
import { z } from "zod";
import { dnsLabel, TenantName } from "../../shared/api/common.ts";
import { Role } from "../../shared/api/models.ts";

/** The only `token_use` value a KubeNova API accepts; refresh or ID tokens must never open the API. */
export const ACCESS_TOKEN_USE = "access";

/** Who is calling, as the route layer sees it after the token was verified. */
export interface Principal {
  subject: string;
  role: Role;
  /** Set for tenant- and project-scoped principals; `null` means global. */
  tenant: string | null;
  /** Set for project-scoped principals (implies `tenant`). */
  project: string | null;
  /** When the token stops being valid; `null` only for principals that did not come from a token. */
  expiresAt: Date | null;
  /** The token's `jti`, for audit and revocation. */
  tokenId: string | null;
}

/** A role with its (optional) scope, as requested for or carried by a token. */
export interface RoleScope {
  role: Role;
  tenant?: string | null | undefined;
  project?: string | null | undefined;
}

/**
 * Why a role/scope combination is not allowed, or `null` when it is. DESIGN.md §4: tenant-scoped roles carry the
 * tenant claim; admin and ops are global and must not carry a scope that a careless route could mistake for a limit.
 */
export function roleScopeProblem({ role, tenant, project }: RoleScope): string | null {
  const hasTenant = tenant !== undefined && tenant !== null;
  const hasProject = project !== undefined && project !== null;
  if (hasProject && !hasTenant) return "a project scope requires a tenant scope";
  switch (role) {
    case "admin":
    case "ops":
      return hasTenant || hasProject ? `role ${role} is global and must not carry a tenant or project` : null;
    case "tenantOwner":
      if (!hasTenant) return "role tenantOwner requires a tenant";
      return hasProject ? "role tenantOwner must not carry a project" : null;
    case "projectDev":
      return hasTenant && hasProject ? null : "role projectDev requires a tenant and a project";
    case "readOnly":
      return null; // global, tenant- or project-scoped
    default: {
      const unknownRole: never = role;
      return `unknown role ${String(unknownRole)}`;
    }
  }
}

const NumericDate = z.number().int().nonnegative();

/**
 * The claims set of a KubeNova access token. Registered claims follow RFC 7519 §4.1; `iss`, `aud`, `exp` and `nbf`
 * are checked by jose before this schema runs, so here they only have to be well-typed.
 */
export const TokenClaims = z
  .object({
    sub: z.string().min(1).max(256),
    role: Role,
    tenant: TenantName.optional(),
    project: dnsLabel(32).optional(),
    token_use: z.literal(ACCESS_TOKEN_USE),
    iat: NumericDate.optional(),
    nbf: NumericDate.optional(),
    exp: NumericDate,
    iss: z.string().optional(),
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    jti: z.string().min(1).max(128).optional(),
  })
  .superRefine((claims, context) => {
    const problem = roleScopeProblem(claims);
    if (problem !== null) context.addIssue({ code: "custom", message: problem, path: ["role"] });
  });
export type TokenClaims = z.infer<typeof TokenClaims>;

/** The `Principal` a verified claims set stands for. */
export function principalFromClaims(claims: TokenClaims): Principal {
  return {
    subject: claims.sub,
    role: claims.role,
    tenant: claims.tenant ?? null,
    project: claims.project ?? null,
    expiresAt: new Date(claims.exp * 1000),
    tokenId: claims.jti ?? null,
  };
}
