import { describe, expect, test } from "bun:test";
import type { Principal } from "../../manager/auth/claims.ts";
import { canIssue, isWithinScope, roleRank, type TokenIssueRequest } from "../../manager/auth/roles.ts";
import type { Role } from "../../shared/api/models.ts";

const NOW = new Date("2031-01-01T00:00:00Z");
const inOneDay = new Date(NOW.getTime() + 24 * 3600 * 1000);

function principal(role: Role, tenant: string | null = null, project: string | null = null): Principal {
  return { subject: `${role}-caller`, role, tenant, project, expiresAt: inOneDay, tokenId: "jti" };
}

const admin = principal("admin");
const ops = principal("ops");
const owner = principal("tenantOwner", "acme");
const dev = principal("projectDev", "acme", "web");
const globalReader = principal("readOnly");
const tenantReader = principal("readOnly", "acme");
const projectReader = principal("readOnly", "acme", "web");

const req = (role: Role, tenant?: string, project?: string, ttlSeconds = 3600): TokenIssueRequest => ({
  role,
  tenant,
  project,
  ttlSeconds,
});

describe("canIssue", () => {
  test.each([
    // admin: anything valid
    ["admin", admin, req("admin"), true],
    ["admin", admin, req("ops"), true],
    ["admin", admin, req("tenantOwner", "globex"), true],
    ["admin", admin, req("projectDev", "globex", "api"), true],
    ["admin", admin, req("readOnly", "globex"), true],
    ["admin", admin, req("tenantOwner"), false], // invalid scope for the role
    ["admin", admin, req("admin", "acme"), false],
    // ops: ops or global readOnly
    ["ops", ops, req("ops"), true],
    ["ops", ops, req("readOnly"), true],
    ["ops", ops, req("admin"), false],
    ["ops", ops, req("tenantOwner", "acme"), false],
    ["ops", ops, req("readOnly", "acme"), false],
    // tenantOwner: own tenant only
    ["tenantOwner", owner, req("tenantOwner", "acme"), true],
    ["tenantOwner", owner, req("projectDev", "acme", "web"), true],
    ["tenantOwner", owner, req("readOnly", "acme"), true],
    ["tenantOwner", owner, req("readOnly", "acme", "web"), true],
    ["tenantOwner", owner, req("tenantOwner", "globex"), false],
    ["tenantOwner", owner, req("projectDev", "globex", "web"), false],
    ["tenantOwner", owner, req("readOnly"), false],
    ["tenantOwner", owner, req("ops"), false],
    ["tenantOwner", owner, req("admin"), false],
    // projectDev: own tenant + project only
    ["projectDev", dev, req("projectDev", "acme", "web"), true],
    ["projectDev", dev, req("readOnly", "acme", "web"), true],
    ["projectDev", dev, req("projectDev", "acme", "api"), false],
    ["projectDev", dev, req("readOnly", "acme"), false],
    ["projectDev", dev, req("tenantOwner", "acme"), false],
    ["projectDev", dev, req("projectDev", "globex", "web"), false],
    // readOnly: readOnly at the same or narrower scope
    ["global readOnly", globalReader, req("readOnly"), true],
    ["global readOnly", globalReader, req("readOnly", "acme"), true],
    ["global readOnly", globalReader, req("readOnly", "acme", "web"), true],
    ["global readOnly", globalReader, req("projectDev", "acme", "web"), false],
    ["tenant readOnly", tenantReader, req("readOnly", "acme"), true],
    ["tenant readOnly", tenantReader, req("readOnly", "acme", "web"), true],
    ["tenant readOnly", tenantReader, req("readOnly"), false],
    ["tenant readOnly", tenantReader, req("readOnly", "globex"), false],
    ["project readOnly", projectReader, req("readOnly", "acme", "web"), true],
    ["project readOnly", projectReader, req("readOnly", "acme"), false],
    ["project readOnly", projectReader, req("readOnly", "acme", "api"), false],
  ] as const)("%s issuing %o → %p", (_name, caller, request, allowed) => {
    const decision = canIssue(caller, request, NOW);
    expect(decision.ok).toBe(allowed);
    if (!decision.ok) expect(decision.reason.length).toBeGreaterThan(0);
  });

  test("nobody, not even admin, may issue a token outliving their own", () => {
    const dayInSeconds = 24 * 3600;
    for (const caller of [admin, ops, owner, dev, globalReader]) {
      const role = caller.role === "tenantOwner" ? "readOnly" : caller.role;
      const request = req(role, caller.tenant ?? undefined, caller.project ?? undefined, dayInSeconds);
      expect(canIssue(caller, request, NOW)).toEqual({ ok: true });
      const longer = { ...request, ttlSeconds: dayInSeconds + 1 };
      expect(canIssue(caller, longer, NOW)).toEqual({
        ok: false,
        reason: "the requested token would outlive the caller's own token",
      });
    }
  });

  test("an expired caller may issue nothing; an unbounded caller is limited only by the request", () => {
    const later = new Date(inOneDay.getTime() + 1000);
    expect(canIssue(admin, req("readOnly", undefined, undefined, 60), later).ok).toBe(false);
    const unbounded = { ...admin, expiresAt: null };
    expect(canIssue(unbounded, req("readOnly", undefined, undefined, 90 * 24 * 3600), NOW).ok).toBe(true);
  });

  test.each([0, -1, 1.5, Number.NaN])("ttlSeconds %p is refused", (ttlSeconds) => {
    expect(canIssue(admin, req("readOnly", undefined, undefined, ttlSeconds), NOW).ok).toBe(false);
  });
});

describe("isWithinScope", () => {
  test.each([
    [admin, {}, true],
    [admin, { tenant: "globex", project: "x" }, true],
    [ops, { tenant: "globex" }, true],
    [globalReader, { tenant: "globex" }, true],
    [globalReader, {}, true],
    [owner, { tenant: "acme" }, true],
    [owner, { tenant: "acme", project: "web" }, true],
    [owner, { tenant: "globex" }, false],
    [owner, {}, false],
    [owner, { tenant: null }, false],
    [tenantReader, { tenant: "acme", project: "api" }, true],
    [tenantReader, { tenant: "globex" }, false],
    [dev, { tenant: "acme", project: "web" }, true],
    [dev, { tenant: "acme", project: "api" }, false],
    [dev, { tenant: "acme" }, false],
    [dev, { tenant: "globex", project: "web" }, false],
    [projectReader, { tenant: "acme", project: "web" }, true],
    [projectReader, { tenant: "acme", project: null }, false],
  ] as const)("%o sees %o → %p", (who, target, expected) => {
    expect(isWithinScope(who, target)).toBe(expected);
  });
});

test("roleRank orders roles by power", () => {
  const ranked = (["readOnly", "admin", "projectDev", "ops", "tenantOwner"] as const).toSorted(
    (a, b) => roleRank(b) - roleRank(a),
  );
  expect(ranked).toEqual(["admin", "ops", "tenantOwner", "projectDev", "readOnly"]);
});
