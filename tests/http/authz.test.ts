/**
 * Authorization matrix: every operation × every role × {own tenant, foreign tenant, missing id} against the
 * expected table in authz-matrix.ts. A route in /openapi.json without a row fails; so does a row without a route.
 */
import { describe, expect, test } from "bun:test";
import type { Role } from "../../shared/api/models.ts";
import { ACCESS, BOOTSTRAP_OPERATIONS as BOOTSTRAP_IN_CODE } from "../../manager/http/authz.ts";
import {
  BOOTSTRAP_OPERATIONS,
  MATRIX,
  PRINCIPALS,
  type PrincipalName,
  PUBLIC_OPERATIONS,
  type Target,
} from "./authz-matrix.ts";
import { createTestManager, SAMPLE_SPEC, seedWorld, type TestManager } from "./harness.ts";

const SCOPES: Record<PrincipalName, { role: Role; tenant?: string; project?: string }> = {
  admin: { role: "admin" },
  ops: { role: "ops" },
  readOnly: { role: "readOnly" },
  owner: { role: "tenantOwner", tenant: "acme" },
  dev: { role: "projectDev", tenant: "acme", project: "web" },
  viewer: { role: "readOnly", tenant: "acme" },
};

const TARGET_IDS: Record<Target, { tenant: string; project: string; app: string; platform: string }> = {
  own: { tenant: "acme", project: "web", app: "site", platform: "spare" },
  foreign: { tenant: "globex", project: "web", app: "site", platform: "spare" },
  missing: { tenant: "nope", project: "nope", app: "nope", platform: "nope" },
};

let unique = 0;
const uniqueName = (prefix: string) => `${prefix}${++unique}`;

/** The body each operation is called with: valid, so only authorization and existence decide the outcome. */
function bodyFor(operationId: string, principal: PrincipalName, target: Target): unknown {
  switch (operationId) {
    case "issueToken": {
      const scope = SCOPES[principal];
      if (target === "own")
        return { role: "readOnly", tenant: scope.tenant, project: scope.project, ttlSeconds: 600 };
      return { role: "readOnly", tenant: target === "foreign" ? "globex" : "nope", ttlSeconds: 600 };
    }
    case "createCluster":
      return { name: uniqueName("c"), datacenter: "lab" };
    case "updateCluster":
      return { labels: { touched: "yes" } };
    case "createPlan":
    case "createPolicySet":
      return { name: uniqueName("p") };
    case "updatePlan":
    case "updatePolicySet":
      return { description: "touched" };
    case "createTenant":
      return { name: uniqueName("t"), clusters: ["dc1"] };
    case "updateTenant":
    case "updateProject":
      return { displayName: "Touched" };
    case "setTenantPlan":
      return { plan: "default" };
    case "createProject":
      return { name: uniqueName("p"), cluster: "dc1" };
    case "createApp":
      return { name: uniqueName("a"), spec: SAMPLE_SPEC };
    case "updateApp":
      return { labels: { touched: "yes" } };
    case "issueTenantKubeconfig":
      return { role: "readOnly", cluster: "dc1", ttlSeconds: 600 };
    case "issueProjectKubeconfig":
      return { role: "readOnly", ttlSeconds: 600 };
    case "rollbackApp":
      return { revision: 1 };
    case "deployApp":
    case "suspendApp":
    case "resumeApp":
      return {};
    default:
      return undefined;
  }
}

/** Fills a path template for a target; platform objects use the spare cluster/plan/policy set. */
function pathFor(template: string, operationId: string, target: Target): string {
  let ids = TARGET_IDS[target];
  if (target === "missing") {
    // Only the deepest name is missing; its parents are the caller's own (acme, web).
    if (template.includes("{app}")) ids = { ...TARGET_IDS.own, app: "nope" };
    else if (template.includes("{project}")) ids = { ...TARGET_IDS.own, project: "nope" };
  }
  let path = template
    .replace("{tenant}", ids.tenant)
    .replace("{project}", ids.project)
    .replace("{app}", ids.app)
    .replace("{cluster}", target === "missing" ? "nope" : "dc3")
    .replace("{name}", ids.platform);
  if (operationId === "diffApp") path += "?from=1&to=1";
  return path;
}

async function buildWorld(): Promise<TestManager> {
  const m = await createTestManager();
  const { admin } = await seedWorld(m);
  for (const [path, body] of [
    ["/api/v1/clusters", { name: "dc3", datacenter: "spare" }],
    ["/api/v1/plans", { name: "spare" }],
    ["/api/v1/policysets", { name: "spare" }],
  ] as const) {
    const res = await m.call("POST", path, { token: admin, body });
    expect(res.status).toBe(201);
  }
  return m;
}

const OUTCOME: Record<string, (status: number) => boolean> = {
  A: (status) => status >= 200 && status < 300,
  F: (status) => status === 403,
  N: (status) => status === 404,
  U: (status) => status === 422,
  O: (status) => status === 503,
};

describe("authorization matrix", async () => {
  const probe = await createTestManager();
  const doc = (await probe.call("GET", "/openapi.json")).body as {
    paths: Record<string, Record<string, { operationId: string }>>;
  };
  await probe.close();
  const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method: method.toUpperCase(),
      id: op.operationId,
    })),
  );

  test("every documented operation has a row in the expected table, and every row a route", () => {
    const documented = operations.map((o) => o.id).filter((id) => !PUBLIC_OPERATIONS.includes(id));
    // Every operation is either JWT-authorized (a MATRIX row) or one of the operator's bootstrap operations.
    expect(documented.filter((id) => !(id in MATRIX) && !BOOTSTRAP_OPERATIONS.includes(id))).toEqual([]);
    expect(documented.filter((id) => id in MATRIX && BOOTSTRAP_OPERATIONS.includes(id))).toEqual([]);
    expect(Object.keys(MATRIX).filter((id) => !documented.includes(id))).toEqual([]);
    expect(BOOTSTRAP_OPERATIONS.filter((id) => !documented.includes(id))).toEqual([]);
    expect(Object.keys(ACCESS).sort()).toEqual(Object.keys(MATRIX).sort());
    expect([...BOOTSTRAP_IN_CODE].sort() as string[]).toEqual([...BOOTSTRAP_OPERATIONS].sort());
  });

  for (const operation of operations.filter((o) => o.id in MATRIX)) {
    test.each([...PRINCIPALS])(`${operation.id} as %s`, async (principal) => {
      const m = await buildWorld();
      try {
        const scope = SCOPES[principal];
        const token = await m.token(scope.role, { tenant: scope.tenant, project: scope.project });
        const cells = MATRIX[operation.id]![principal];
        const failures: string[] = [];
        // missing first and own last, so a destructive success cannot hide another target's outcome
        for (const [index, target] of [
          [2, "missing"],
          [1, "foreign"],
          [0, "own"],
        ] as const) {
          const expected = cells[index]!;
          if (expected === "-") continue;
          const path = pathFor(operation.path, operation.id, target);
          const res = await m.call(operation.method, path, {
            token,
            body: bodyFor(operation.id, principal, target),
          });
          if (!OUTCOME[expected]!(res.status)) {
            failures.push(
              `${target}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`,
            );
          }
          if (expected !== "A") {
            // Refusals never reveal the foreign tenant's data.
            expect(JSON.stringify(res.body)).not.toContain("owner@globex");
          }
        }
        expect(failures).toEqual([]);
      } finally {
        await m.close();
      }
    });
  }
});

describe("lists never contain foreign rows", () => {
  test.each([
    ["owner", { role: "tenantOwner", tenant: "acme" }],
    ["viewer", { role: "readOnly", tenant: "acme" }],
    ["dev", { role: "projectDev", tenant: "acme", project: "web" }],
  ] as const)("%s", async (_name, scope) => {
    const m = await buildWorld();
    try {
      const admin = await m.token("admin");
      await m.call("POST", "/api/v1/tenants/acme/projects", {
        token: admin,
        body: { name: "api", cluster: "dc1" },
      });
      const token = await m.token(scope.role, scope);
      const tenants = await m.call("GET", "/api/v1/tenants", { token });
      expect(tenants.body.items.map((t: { name: string }) => t.name)).toEqual(["acme"]);
      const projects = await m.call("GET", "/api/v1/tenants/acme/projects", { token });
      const names = projects.body.items.map((p: { name: string }) => p.name);
      expect(names).toEqual("project" in scope ? ["web"] : ["api", "web"]);
      expect(JSON.stringify([tenants.body, projects.body])).not.toContain("globex");
    } finally {
      await m.close();
    }
  });
});
