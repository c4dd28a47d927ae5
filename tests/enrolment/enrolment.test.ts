/**
 * Cluster enrolment over real HTTP handlers and real crypto (DESIGN.md §4): the bootstrap token is shown once,
 * unlocks the install manifests and exactly one enrolment; renewal needs proof of the current identity; revocation
 * and deletion end it.
 */
import "reflect-metadata";
import { describe, expect, test } from "bun:test";
import * as x509 from "@peculiar/x509";
import { parseAllDocuments } from "yaml";
import { createCertificateAuthority } from "../../manager/pki/ca.ts";
import {
  isClusterAllowed,
  markClusterConnected,
  markClusterOffline,
} from "../../manager/services/enrolment.ts";
import { createRenewalProof, enroll, renew } from "../../shared/enrolment-client.ts";
import { certificateInfo, createCsr, generateKeyPair, importPrivateKeyPem } from "../../shared/pki.ts";
import { expectError } from "../http/expect-error.ts";
import { createTestManager, type TestManager } from "../http/harness.ts";
import { bearer, enrolWithToken, register, registerAndEnrol } from "./helpers.ts";

async function verifiesAgainst(certificatePem: string, caPem: string): Promise<boolean> {
  const cert = new x509.X509Certificate(certificatePem);
  const ca = new x509.X509Certificate(caPem);
  return cert.verify({ publicKey: await ca.publicKey.export(), signatureOnly: true });
}

/** A manager whose clock the test moves. */
async function managerWithClock() {
  let now = Date.now();
  const m = await createTestManager({ now: () => new Date(now) });
  return { m, advance: (ms: number) => (now += ms), now: () => new Date(now) };
}

async function renewCall(
  m: TestManager,
  path: string,
  options: {
    clusterId: string;
    sub?: string;
    certificate: string;
    key: CryptoKey;
    now?: Date;
    csrFor?: string;
  },
) {
  const newKeys = await generateKeyPair();
  const csr = await createCsr({ commonName: options.csrFor ?? options.clusterId, keys: newKeys });
  const proof = await createRenewalProof({
    clusterId: options.sub ?? options.clusterId,
    currentCertPem: options.certificate,
    currentKey: options.key,
    csrPem: csr,
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    res: await m.call("POST", `/api/v1/clusters/${path}/renew`, { body: { csr, proof } }),
    csr,
    proof,
    newKeys,
  };
}

describe("registration and the bootstrap token", () => {
  test("registration answers the token once, with install instructions; only its hash is stored", async () => {
    const m = await createTestManager();
    const { clusterId, token, body } = await register(m, "dc1");
    expect(token).toMatch(/^knb_[A-Za-z0-9_-]{43}$/);
    expect(body.cluster).toMatchObject({ name: "dc1", status: "pending_bootstrap", revokedAt: null });
    expect(body.bootstrap.installUrl).toBe("https://manager.test/api/v1/clusters/dc1/install.yaml");
    expect(body.bootstrap.instructions.kubectl).toContain(token);
    expect(body.bootstrap.instructions.helm).toContain(clusterId);
    expect(Date.parse(body.bootstrap.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    const admin = await m.token("admin");
    const again = await m.call("GET", "/api/v1/clusters/dc1", { token: admin });
    expect(JSON.stringify(again.body)).not.toContain(token);
    const hash = new Bun.CryptoHasher("sha256").update(token).digest("hex");
    expect((await m.store.bootstrapTokens.get(hash))?.clusterId).toBe(clusterId);
    const audit = await m.store.audit.list({}, { limit: 20 });
    expect(JSON.stringify(audit)).not.toContain(token);
    await m.close();
  });

  test("a minted token replaces the unused one", async () => {
    const m = await createTestManager();
    const { token: first } = await register(m, "dc1");
    const minted = await m.call("POST", "/api/v1/clusters/dc1/bootstrap-token", {
      token: await m.token("ops"),
    });
    expect(minted.status).toBe(201);
    const second = minted.body.bootstrap.token as string;
    expect(second).not.toBe(first);
    expectError(
      await m.call("GET", "/api/v1/clusters/dc1/install.yaml", { headers: bearer(first) }),
      401,
      "KN-401",
    );
    expect(
      (await m.call("GET", "/api/v1/clusters/dc1/install.yaml", { headers: bearer(second) })).status,
    ).toBe(200);
    await m.close();
  });
});

describe("install.yaml", () => {
  test("with the token: the operator's manifests, and the cluster moves to bootstrapping", async () => {
    const m = await createTestManager();
    const { clusterId, token } = await register(m, "dc1", { capsuleProxyUrl: "https://proxy.dc1.example" });
    const res = await m.app.request("/api/v1/clusters/dc1/install.yaml", { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/yaml");
    const docs = parseAllDocuments(await res.text()).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual([
      "Namespace",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "Secret",
      "NovaClusterConfig",
      "PersistentVolumeClaim",
      "Deployment",
    ]);
    expect(docs[1].metadata.name).toBe("novaclusterconfigs.kubenova.io");
    expect(docs[2].metadata.name).toBe("novatenants.kubenova.io");
    const secret = docs.find((d) => d.kind === "Secret");
    expect(secret.stringData.token).toBe(token);
    const deployment = docs.find((d) => d.kind === "Deployment");
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const container = pod.containers[0];
    expect(container.image).toBe("kubenova/kubenova:test");
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      NOVA_MANAGER_URL: "https://manager.test",
      NOVA_CLUSTER_ID: clusterId,
      TARGET_STORAGE_CLASS: "",
      TARGET_LB_ANNOTATIONS: "",
      NOVA_CAPS_PROX_URL: "https://proxy.dc1.example",
      NOVA_BOOTSTRAP_TOKEN: { secretKeyRef: { name: "kubenova-bootstrap", key: "token" } },
      NOVA_DATA_DIR: "/var/lib/kubenova",
    });
    const rules = docs.find((d) => d.kind === "ClusterRole").rules as Array<{
      apiGroups: string[];
      resources: string[];
    }>;
    const granted = rules.flatMap((r) => r.resources.map((res) => `${r.apiGroups[0]}/${res}`));
    for (const needed of [
      "/namespaces",
      "/serviceaccounts/token",
      "capsule.clastix.io/tenants",
      "capsule.clastix.io/capsuleconfigurations",
      "core.oam.dev/applications",
      "kubenova.io/novatenants",
      "networking.k8s.io/networkpolicies",
      "coordination.k8s.io/leases",
    ]) {
      expect(granted).toContain(needed);
    }
    expect((await m.store.clusters.get("dc1"))?.status).toBe("bootstrapping");
    // The token is not burnt by fetching the manifests: the operator enrols with it next.
    expect(
      (await m.call("GET", `/api/v1/clusters/${clusterId}/install.yaml`, { headers: bearer(token) })).status,
    ).toBe(200);
    await m.close();
  });

  test("a JWT, no token, another cluster's token, garbage, or an expired token → 401", async () => {
    const t = await managerWithClock();
    const { m } = t;
    const { token } = await register(m, "dc1");
    const { token: other } = await register(m, "dc2");
    const admin = await m.token("admin");
    const path = "/api/v1/clusters/dc1/install.yaml";
    for (const headers of [
      bearer(admin),
      {},
      bearer(other),
      bearer(`knb_${"A".repeat(43)}`),
      { authorization: `Basic ${token}` },
    ]) {
      expectError(await m.call("GET", path, { headers }), 401, "KN-401");
    }
    expectError(
      await m.call("GET", "/api/v1/clusters/nope/install.yaml", { headers: bearer(token) }),
      401,
      "KN-401",
    );
    expect((await m.call("GET", path, { headers: bearer(token) })).status).toBe(200);
    t.advance(3601_000);
    expectError(await m.call("GET", path, { headers: bearer(token) }), 401, "KN-401");
    await m.close();
  });
});

describe("enrol", () => {
  test("a valid CSR → a client certificate with CN = cluster id that verifies against caBundle", async () => {
    const m = await createTestManager();
    const e = await registerAndEnrol(m, "dc1");
    expect(e.body).toMatchObject({ clusterId: e.clusterId, brokerUrl: "mqtts://broker.test:8883" });
    const info = await certificateInfo(e.certificate);
    expect(info.subjectCommonName).toBe(e.clusterId);
    expect(await verifiesAgainst(e.certificate, e.caBundle)).toBe(true);
    expect(e.body.expiresAt).toBe(info.notAfter.toISOString());
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    const renewAt = Date.parse(String(e.body.renewAfter)) - info.notBefore.getTime();
    expect(renewAt / lifetime).toBeGreaterThanOrEqual(0.7);
    expect(renewAt / lifetime).toBeLessThanOrEqual(0.9);
    expect((await m.store.clusters.get("dc1"))?.status).toBe("bootstrapping");
    const records = await m.store.clusterCertificates.listForCluster(e.clusterId);
    expect(records).toHaveLength(1);
    expect(records[0]?.fingerprint).toBe(info.fingerprint256);
    expect(await isClusterAllowed(m.services, e.clusterId, { serial: info.serialNumber })).toBe(true);
    await m.close();
  });

  test("the same token again → 401 (burnt), never 500", async () => {
    const m = await createTestManager();
    const e = await registerAndEnrol(m, "dc1");
    const again = await enrolWithToken(m, "dc1", e.clusterId, e.token);
    expectError(again.res, 401, "KN-401");
    await m.close();
  });

  test("two racing enrolments with one token: exactly one certificate", async () => {
    const m = await createTestManager();
    const { clusterId, token } = await register(m, "dc1");
    const results = await Promise.all([1, 2, 3].map(() => enrolWithToken(m, "dc1", clusterId, token)));
    expect(results.map((r) => r.res.status).sort()).toEqual([200, 401, 401]);
    expect(await m.store.clusterCertificates.listForCluster(clusterId)).toHaveLength(1);
    await m.close();
  });

  test("a CSR with another CN → 400 naming csr, and the token still works afterwards", async () => {
    const m = await createTestManager();
    const { clusterId, token } = await register(m, "dc1");
    const wrong = await enrolWithToken(m, "dc1", "someone-else", token);
    expectError(wrong.res, 400, "KN-400", "csr");
    expectError(
      await m.call("POST", "/api/v1/clusters/dc1/enroll", {
        headers: bearer(token),
        body: { csr: "garbage" },
      }),
      400,
      "KN-400",
    );
    expect((await enrolWithToken(m, "dc1", clusterId, token)).res.status).toBe(200);
    await m.close();
  });

  test("an expired token, another cluster's token or a JWT → 401", async () => {
    const t = await managerWithClock();
    const { m } = t;
    const a = await register(m, "dc1");
    const b = await register(m, "dc2");
    expectError((await enrolWithToken(m, "dc1", a.clusterId, b.token)).res, 401, "KN-401");
    expectError((await enrolWithToken(m, "dc1", a.clusterId, await m.token("admin"))).res, 401, "KN-401");
    t.advance(3601_000);
    expectError((await enrolWithToken(m, "dc1", a.clusterId, a.token)).res, 401, "KN-401");
    await m.close();
  });
});

describe("renewal over the current identity", () => {
  test("the client helpers over real HTTP: enroll, then renew with a proof → a new certificate", async () => {
    const m = await createTestManager();
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: m.app.fetch });
    try {
      const { clusterId, token } = await register(m, "dc1");
      const managerUrl = `http://127.0.0.1:${server.port}`;
      const keys = await generateKeyPair();
      const first = await enroll({ managerUrl, clusterId, bootstrapToken: token, keys });
      const newKeys = await generateKeyPair();
      const second = await renew({
        managerUrl,
        clusterId,
        currentCertPem: first.certificate,
        currentKey: keys.privateKey,
        newKeys,
      });
      const a = await certificateInfo(first.certificate);
      const b = await certificateInfo(second.certificate);
      expect(b.subjectCommonName).toBe(clusterId);
      expect(b.serialNumber).not.toBe(a.serialNumber);
      expect(await verifiesAgainst(second.certificate, second.caBundle)).toBe(true);
      // The new certificate certifies the new key.
      const certKey = await new x509.X509Certificate(second.certificate).publicKey.export();
      const spki = async (k: CryptoKey) =>
        Buffer.from(await crypto.subtle.exportKey("spki", k)).toString("hex");
      expect(await spki(certKey)).toBe(await spki(newKeys.publicKey));
      expect(await m.store.clusterCertificates.listForCluster(clusterId)).toHaveLength(2);
      // The enrolment error surfaces as a typed error: the token is burnt.
      await expect(enroll({ managerUrl, clusterId, bootstrapToken: token, keys })).rejects.toMatchObject({
        status: 401,
        code: "KN-401",
      });
    } finally {
      await server.stop(true);
      await m.close();
    }
  });

  test("an expired certificate → 401", async () => {
    const t = await managerWithClock();
    const e = await registerAndEnrol(t.m, "dc1");
    t.advance(31 * 86400_000);
    const { res } = await renewCall(t.m, "dc1", {
      clusterId: e.clusterId,
      certificate: e.certificate,
      key: e.keys.privateKey,
      now: t.now(),
    });
    expectError(res, 401, "KN-401");
    await t.m.close();
  });

  test("a self-signed certificate with the right CN → 401", async () => {
    const m = await createTestManager();
    const e = await registerAndEnrol(m, "dc1");
    const forged = await createCertificateAuthority({ commonName: e.clusterId });
    const key = await importPrivateKeyPem(await forged.exportPrivateKeyPem());
    const { res } = await renewCall(m, "dc1", {
      clusterId: e.clusterId,
      certificate: forged.certificatePem,
      key,
    });
    expectError(res, 401, "KN-401");
    await m.close();
  });

  test("a certificate from another Manager's CA with the right CN → 401", async () => {
    const m = await createTestManager();
    const e = await registerAndEnrol(m, "dc1");
    const otherCa = await createCertificateAuthority();
    const keys = await generateKeyPair();
    const issued = await otherCa.signClientCsr({
      csrPem: await createCsr({ commonName: e.clusterId, keys }),
      clusterId: e.clusterId,
      lifetimeSeconds: 3600,
    });
    const { res } = await renewCall(m, "dc1", {
      clusterId: e.clusterId,
      certificate: issued.certificatePem,
      key: keys.privateKey,
    });
    expectError(res, 401, "KN-401");
    await m.close();
  });

  test("another cluster's certificate → 401, whatever the sub says", async () => {
    const m = await createTestManager();
    const a = await registerAndEnrol(m, "dc1");
    const b = await registerAndEnrol(m, "dc2");
    for (const sub of [a.clusterId, b.clusterId]) {
      const { res } = await renewCall(m, "dc1", {
        clusterId: a.clusterId,
        sub,
        csrFor: a.clusterId,
        certificate: b.certificate,
        key: b.keys.privateKey,
      });
      expectError(res, 401, "KN-401");
    }
    await m.close();
  });

  test("a tampered signature, a swapped CSR, a stale proof, or a key that is not the certificate's → 401", async () => {
    const t = await managerWithClock();
    const { m } = t;
    const e = await registerAndEnrol(m, "dc1");
    const base = { clusterId: e.clusterId, certificate: e.certificate, key: e.keys.privateKey, now: t.now() };
    const { csr, proof } = await renewCall(m, "dc1", base).then((r) => {
      expect(r.res.status).toBe(200);
      return r;
    });
    const parts = proof.split(".");
    const sig = Buffer.from(parts[2]!, "base64url");
    sig[10] = sig[10]! ^ 0xff;
    const tampered = `${parts[0]}.${parts[1]}.${sig.toString("base64url")}`;
    expectError(
      await m.call("POST", "/api/v1/clusters/dc1/renew", { body: { csr, proof: tampered } }),
      401,
      "KN-401",
    );
    const otherCsr = await createCsr({ commonName: e.clusterId, keys: await generateKeyPair() });
    expectError(
      await m.call("POST", "/api/v1/clusters/dc1/renew", { body: { csr: otherCsr, proof } }),
      401,
      "KN-401",
    );
    expectError(
      await m.call("POST", "/api/v1/clusters/dc1/renew", { body: { csr, proof: "a.b.c" } }),
      401,
      "KN-401",
    );
    const stranger = await generateKeyPair();
    expectError((await renewCall(m, "dc1", { ...base, key: stranger.privateKey })).res, 401, "KN-401");
    t.advance(10 * 60_000);
    expectError(await m.call("POST", "/api/v1/clusters/dc1/renew", { body: { csr, proof } }), 401, "KN-401");
    await m.close();
  });
});

describe("revocation", () => {
  test("revoke → renewal refused, isClusterAllowed false, presence ignored; re-enrolment restores it", async () => {
    const m = await createTestManager();
    const revoked: string[] = [];
    m.services.enrolment!.onClusterRevoked = (id) => {
      revoked.push(id);
    };
    const e = await registerAndEnrol(m, "dc1");
    expect(await markClusterConnected(m.services, e.clusterId, new Date())).toBe(true);
    expect((await m.store.clusters.get("dc1"))?.status).toBe("connected");
    const ops = await m.token("ops");
    const res = await m.call("POST", "/api/v1/clusters/dc1/revoke", { token: ops });
    expect(res.status).toBe(200);
    expect(res.body.revokedAt).not.toBeNull();
    expect(revoked).toEqual([e.clusterId]);
    expect(await isClusterAllowed(m.services, e.clusterId)).toBe(false);
    const serial = (await certificateInfo(e.certificate)).serialNumber;
    expect(await isClusterAllowed(m.services, e.clusterId, { serial })).toBe(false);
    expect(await markClusterConnected(m.services, e.clusterId, new Date())).toBe(false);
    const renewal = await renewCall(m, "dc1", {
      clusterId: e.clusterId,
      certificate: e.certificate,
      key: e.keys.privateKey,
    });
    expectError(renewal.res, 401, "KN-401");

    // Re-enrolment: a fresh token, a new key; the old certificate stays revoked.
    const minted = await m.call("POST", "/api/v1/clusters/dc1/bootstrap-token", { token: ops });
    const again = await enrolWithToken(m, e.clusterId, e.clusterId, minted.body.bootstrap.token);
    expect(again.res.status).toBe(200);
    expect((await m.store.clusters.get("dc1"))?.revokedAt).toBeNull();
    expect(await isClusterAllowed(m.services, e.clusterId)).toBe(true);
    expect(await isClusterAllowed(m.services, e.clusterId, { serial })).toBe(false);
    const fresh = (await certificateInfo(again.res.body.certificate)).serialNumber;
    expect(await isClusterAllowed(m.services, e.clusterId, { serial: fresh })).toBe(true);
    await m.close();
  });

  test("deleting a cluster revokes it and tells the broker", async () => {
    const m = await createTestManager();
    const revoked: string[] = [];
    m.services.enrolment!.onClusterRevoked = async (id) => {
      revoked.push(id);
    };
    const e = await registerAndEnrol(m, "dc1");
    const res = await m.call("DELETE", "/api/v1/clusters/dc1", { token: await m.token("admin") });
    expect(res.status).toBe(204);
    expect(revoked).toEqual([e.clusterId]);
    expect(await isClusterAllowed(m.services, e.clusterId)).toBe(false);
    const records = await m.store.clusterCertificates.listForCluster(e.clusterId);
    expect(records.every((r) => r.revokedAt !== null)).toBe(true);
    await m.close();
  });

  test("presence: connected then offline with lastSeenAt; a late older event does not win", async () => {
    const m = await createTestManager();
    const e = await registerAndEnrol(m, "dc1");
    const t0 = new Date("2030-01-01T00:00:00.000Z");
    expect(await markClusterConnected(m.services, e.clusterId, t0)).toBe(true);
    expect(await markClusterOffline(m.services, e.clusterId, new Date(t0.getTime() + 1000))).toBe(true);
    expect(await markClusterConnected(m.services, e.clusterId, t0)).toBe(false);
    const row = await m.store.clusters.get("dc1");
    expect(row).toMatchObject({ status: "offline", lastSeenAt: "2030-01-01T00:00:01.000Z" });
    expect(await markClusterConnected(m.services, "no-such-id", t0)).toBe(false);
    await m.close();
  });
});
