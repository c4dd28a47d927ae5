/** Events reported by clusters: newest first, per tenant (never another tenant's) and platform-wide by cluster. */
import { expect, test } from "bun:test";
import { uuidv7 } from "../../shared/ids.ts";
import { createTestManager, seedWorld } from "./harness.ts";

test("tenant and platform event lists", async () => {
  const m = await createTestManager();
  try {
    const { admin } = await seedWorld(m);
    const dc1 = (await m.store.clusters.get("dc1"))!.id;
    const dc2 = (await m.store.clusters.get("dc2"))!.id;
    const event = (tenant: string | null, clusterId: string, minute: number, reason: string) =>
      m.store.events.insert({
        id: uuidv7(),
        clusterId,
        tenant,
        at: new Date(Date.UTC(2026, 10, 21, 10, minute)).toISOString(),
        type: reason === "QuotaExceeded" ? "Warning" : "Normal",
        reason,
        message: `${reason} in ${tenant ?? "the cluster"}`,
        object: null,
      });
    await event("acme", dc1, 1, "Scheduled");
    await event("acme", dc2, 3, "QuotaExceeded");
    await event("globex", dc1, 2, "Scheduled");
    await event(null, dc1, 4, "AddonReady");

    const owner = await m.token("tenantOwner", { tenant: "acme" });
    const mine = await m.call("GET", "/api/v1/tenants/acme/events", { token: owner });
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((e: { reason: string; cluster: string }) => [e.reason, e.cluster])).toEqual([
      ["QuotaExceeded", "dc2"],
      ["Scheduled", "dc1"],
    ]);
    expect(JSON.stringify(mine.body)).not.toContain("globex");
    expect((await m.call("GET", "/api/v1/tenants/globex/events", { token: owner })).status).toBe(404);

    const platform = await m.call("GET", "/api/v1/events?cluster=dc1", { token: admin });
    expect(platform.body.items.map((e: { reason: string }) => e.reason)).toEqual([
      "AddonReady",
      "Scheduled",
      "Scheduled",
    ]);
    expect((await m.call("GET", "/api/v1/events", { token: owner })).status).toBe(403);
  } finally {
    await m.close();
  }
});
