import { afterEach, describe, expect, test } from "bun:test";
import { type Harness, k8s, rejection, startHarness } from "./testing.ts";

let h: Harness;
afterEach(async () => {
  await h.server.close();
});

type Obj = Record<string, unknown>;
type Cause = { reason: string; field: string; message: string };

function tenant(spec: Obj, name = "acme"): k8s.KubernetesObject {
  return {
    apiVersion: "capsule.clastix.io/v1beta2",
    kind: "Tenant",
    metadata: { name },
    spec,
  } as k8s.KubernetesObject;
}

function app(spec: unknown, name = "shop"): k8s.KubernetesObject {
  return {
    apiVersion: "core.oam.dev/v1beta1",
    kind: "Application",
    metadata: { name, namespace: "default" },
    spec,
  } as k8s.KubernetesObject;
}

async function causesOf(p: Promise<unknown>): Promise<{ message: string; causes: Cause[] }> {
  const r = await rejection(p);
  expect(r.code).toBe(422);
  expect(r.body.reason).toBe("Invalid");
  return { message: String(r.body.message), causes: (r.body.details as { causes: Cause[] }).causes };
}

describe("Capsule Tenant v1beta2 against the real CRD schema", () => {
  test("a valid tenant is accepted with the schema's defaults applied", async () => {
    h = await startHarness();
    const created = (await h.objects.create(
      tenant({
        owners: [{ kind: "ServiceAccount", name: "system:serviceaccount:acme-owner:owner" }],
        ingressOptions: {},
      }),
    )) as unknown as { spec: Obj & { owners: Obj[]; ingressOptions: Obj } };
    expect(created.spec.cordoned).toBe(false);
    expect(created.spec.preventDeletion).toBe(false);
    expect(created.spec.owners[0]?.clusterRoles).toEqual(["admin", "capsule-namespace-deleter"]);
    expect(created.spec.ingressOptions.hostnameCollisionScope).toBe("Disabled");
  });

  test("an owner kind outside the enum is 422 Unsupported value at spec.owners[0].kind", async () => {
    h = await startHarness();
    const { message, causes } = await causesOf(
      h.objects.create(tenant({ owners: [{ kind: "Robot", name: "r2" }] })),
    );
    expect(causes).toEqual([
      {
        reason: "FieldValueNotSupported",
        field: "spec.owners[0].kind",
        message: 'Unsupported value: "Robot": supported values: "User", "Group", "ServiceAccount"',
      },
    ]);
    expect(message).toBe(
      'Tenant.capsule.clastix.io "acme" is invalid: spec.owners[0].kind: Unsupported value: "Robot": supported values: "User", "Group", "ServiceAccount"',
    );
  });

  test("an owner without the required name is 422 Required value", async () => {
    h = await startHarness();
    const { causes } = await causesOf(h.objects.create(tenant({ owners: [{ kind: "User" }] })));
    expect(causes).toEqual([
      { reason: "FieldValueRequired", field: "spec.owners[0].name", message: "Required value" },
    ]);
  });

  test("wrong types and bounds are 422 at the exact fields", async () => {
    h = await startHarness();
    const { causes } = await causesOf(
      h.objects.create(
        tenant({
          cordoned: "yes",
          namespaceOptions: { quota: 0 },
          rules: [{ quota: [{ name: "Not_Valid" }] }],
        }),
      ),
    );
    expect(causes.map((c) => [c.field, c.reason])).toEqual([
      ["spec.cordoned", "FieldValueInvalid"],
      ["spec.namespaceOptions.quota", "FieldValueInvalid"],
      ["spec.rules[0].quota[0].name", "FieldValueInvalid"],
    ]);
    expect(causes[0]?.message).toBe(
      'Invalid value: "string": spec.cordoned in body must be of type boolean: "string"',
    );
    expect(causes[1]?.message).toBe(
      "Invalid value: 0: spec.namespaceOptions.quota in body should be greater than or equal to 1",
    );
    expect(causes[2]?.message).toContain("should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'");
  });

  test("unknown fields are pruned, or rejected with fieldValidation=Strict", async () => {
    h = await startHarness();
    const created = (await h.objects.create(tenant({ notAField: 1, owners: [] }))) as unknown as {
      spec: Obj;
    };
    expect(created.spec.notAField).toBeUndefined();
    const strict = await fetch(
      `${h.server.url}/apis/capsule.clastix.io/v1beta2/tenants?fieldValidation=Strict`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${h.server.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(tenant({ bogus: true }, "strict")),
      },
    );
    expect(strict.status).toBe(400);
    expect(((await strict.json()) as Obj).message).toContain('unknown field "spec.bogus"');
  });

  test("the status subresource is validated against the status schema", async () => {
    h = await startHarness();
    await h.objects.create(tenant({}));
    const custom = h.kc.makeApiClient(k8s.CustomObjectsApi);
    const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
    const bad = await rejection(
      custom.patchClusterCustomObjectStatus(
        {
          group: "capsule.clastix.io",
          version: "v1beta2",
          plural: "tenants",
          name: "acme",
          body: { status: { state: "Sleeping", size: 0, conditions: [] } },
        },
        merge,
      ),
    );
    expect(bad.code).toBe(422);
    expect((bad.body.details as { causes: Cause[] }).causes[0]?.field).toBe("status.state");
    const ok = (await custom.patchClusterCustomObjectStatus(
      {
        group: "capsule.clastix.io",
        version: "v1beta2",
        plural: "tenants",
        name: "acme",
        body: { status: { state: "Active", size: 2, conditions: [] } },
      },
      merge,
    )) as { status: Obj };
    expect(ok.status.size).toBe(2);
  });
});

describe("KubeVela Application v1beta1 against the real CRD schema", () => {
  test("a valid application is accepted and unknown component properties are preserved", async () => {
    h = await startHarness();
    const created = (await h.objects.create(
      app({
        components: [
          { name: "web", type: "webservice", properties: { image: "nginx", anything: { nested: true } } },
        ],
      }),
    )) as unknown as { spec: { components: Obj[] }; metadata: { generation: number } };
    expect(created.spec.components[0]?.properties).toEqual({ image: "nginx", anything: { nested: true } });
    expect(created.metadata.generation).toBe(1);
  });

  test("missing spec.components is 422 Required value", async () => {
    h = await startHarness();
    const { causes } = await causesOf(h.objects.create(app({ workflow: {} })));
    expect(causes).toEqual([
      { reason: "FieldValueRequired", field: "spec.components", message: "Required value" },
    ]);
  });

  test("a component without type is 422 at spec.components[0].type", async () => {
    h = await startHarness();
    const { causes } = await causesOf(h.objects.create(app({ components: [{ name: "web" }] })));
    expect(causes).toEqual([
      { reason: "FieldValueRequired", field: "spec.components[0].type", message: "Required value" },
    ]);
  });

  test("components of the wrong type is 422 FieldValueInvalid", async () => {
    h = await startHarness();
    const { causes } = await causesOf(h.objects.create(app({ components: "web" })));
    expect(causes).toEqual([
      {
        reason: "FieldValueInvalid",
        field: "spec.components",
        message: 'Invalid value: "string": spec.components in body must be of type array: "string"',
      },
    ]);
  });

  test("updates are validated too", async () => {
    h = await startHarness();
    await h.objects.create(app({ components: [{ name: "web", type: "webservice" }] }));
    const merge = k8s.PatchStrategy.MergePatch;
    const r = await rejection(
      h.objects.patch(
        app({ components: [{ name: "web", type: 7 }] }),
        undefined,
        undefined,
        undefined,
        undefined,
        merge,
      ),
    );
    expect(r.code).toBe(422);
    expect((r.body.details as { causes: Cause[] }).causes[0]?.field).toBe("spec.components[0].type");
  });
});
