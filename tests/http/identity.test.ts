/** Token issuance limits and empty-body operations. */
import { expect, test } from "bun:test";
import { createTestManager, seedWorld } from "./harness.ts";

test("only admins mint tokens for another subject; the default TTL never outlives the caller", async () => {
  const m = await createTestManager();
  try {
    await seedWorld(m);
    const owner = await m.token("tenantOwner", { tenant: "acme", subject: "alice", ttlSeconds: 900 });
    const forged = await m.call("POST", "/api/v1/tokens", {
      token: owner,
      body: { subject: "admin", role: "readOnly", tenant: "acme" },
    });
    expect(forged.status).toBe(403);
    expect(forged.body.error.details[0].path).toBe("subject");

    const own = await m.call("POST", "/api/v1/tokens", {
      token: owner,
      body: { role: "readOnly", tenant: "acme" },
    });
    expect(own.status).toBe(201);
    const lifetime = Date.parse(own.body.expiresAt) - Date.now();
    expect(lifetime).toBeLessThanOrEqual(900_000);
    expect(lifetime).toBeGreaterThan(800_000);
    const me = await m.call("GET", "/api/v1/me", { token: own.body.token });
    expect(me.body).toMatchObject({ subject: "alice", role: "readOnly", tenant: "acme" });

    const admin = await m.token("admin");
    const forBob = await m.call("POST", "/api/v1/tokens", {
      token: admin,
      body: { subject: "bob", role: "tenantOwner", tenant: "acme" },
    });
    expect(forBob.status).toBe(201);
    expect((await m.call("GET", "/api/v1/me", { token: forBob.body.token })).body.subject).toBe("bob");
  } finally {
    await m.close();
  }
});

test.each(["", "   "])("an operation taking no input accepts an empty JSON body (%p)", async (rawBody) => {
  const m = await createTestManager();
  try {
    const { admin } = await seedWorld(m);
    const res = await m.call("POST", "/api/v1/tenants/acme/projects/web/apps/site/suspend", {
      token: admin,
      rawBody,
      headers: { "content-type": "application/json", "content-length": String(rawBody.length) },
    });
    expect(res.status).toBe(200);
    expect(res.body.suspended).toBe(true);
    const text = await m.call("POST", "/api/v1/tenants/acme/projects/web/apps/site/resume", {
      token: admin,
      rawBody: "resume please",
      headers: { "content-type": "text/plain" },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe("KN-415");
  } finally {
    await m.close();
  }
});
