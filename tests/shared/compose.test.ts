/** Platform rules merged into what clusters run (manager/desired/compose.ts), as tables. */
import { describe, expect, test } from "bun:test";
import { mergePlatformRules, platformRules } from "../../manager/desired/compose.ts";
import type { PlanRow, PolicySetRow } from "../../manager/store/store.ts";

const plan = (traits: PlanRow["traits"], policies: PlanRow["policies"] = []): PlanRow => ({
  name: "p",
  displayName: null,
  description: null,
  quotas: {},
  limitRange: null,
  allowLoadBalancers: false,
  traits,
  policies,
  createdAt: "",
  updatedAt: "",
  version: 1,
});

const set = (name: string, traits: PolicySetRow["traits"]): PolicySetRow => ({
  name,
  description: null,
  traits,
  policies: [],
  allowedComponentTypes: null,
  createdAt: "",
  updatedAt: "",
  version: 1,
});

describe("platform rules", () => {
  test("later policy sets override the plan's trait of the same type", () => {
    const rules = platformRules(plan([{ type: "scaler", properties: { replicas: 1 } }]), [
      set("a", [{ type: "scaler", properties: { replicas: 3 } }]),
      set("b", [{ type: "labels", properties: { team: "x" } }]),
    ]);
    expect(rules.traits).toEqual([
      { type: "scaler", properties: { replicas: 3 } },
      { type: "labels", properties: { team: "x" } },
    ]);
  });

  test.each([
    ["no rules leave the spec alone", [], [], undefined, undefined],
    [
      "a platform trait replaces the app's trait of that type",
      [{ type: "scaler", properties: { replicas: 1 } }],
      [],
      [
        { type: "gateway", properties: { domain: "x" } },
        { type: "scaler", properties: { replicas: 1 } },
      ],
      undefined,
    ],
    [
      "platform policies are added and win by name",
      [],
      [{ name: "topology", type: "topology", properties: { clusters: ["local"] } }],
      [
        { type: "gateway", properties: { domain: "x" } },
        { type: "scaler", properties: { replicas: 5 } },
      ],
      [
        { name: "own", type: "override" },
        { name: "topology", type: "topology", properties: { clusters: ["local"] } },
      ],
    ],
  ] as const)("%s", (_title, traits, policies, expectedTraits, expectedPolicies) => {
    const spec = {
      components: [
        {
          name: "web",
          type: "webservice",
          traits: [
            { type: "gateway", properties: { domain: "x" } },
            { type: "scaler", properties: { replicas: 5 } },
          ],
        },
      ],
      policies: [
        { name: "own", type: "override" },
        { name: "topology", type: "topology", properties: { clusters: ["mine"] } },
      ],
    };
    const merged = mergePlatformRules(spec, [...traits], [...policies]);
    expect(merged.components[0]!.traits).toEqual(
      structuredClone(expectedTraits ?? spec.components[0]!.traits) as never,
    );
    expect(merged.policies).toEqual(structuredClone(expectedPolicies ?? spec.policies) as never);
    // the input is never mutated
    expect(spec.components[0]!.traits[1]).toEqual({ type: "scaler", properties: { replicas: 5 } });
  });
});
