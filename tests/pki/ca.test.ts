/** The cluster CA: server certificates with SANs, client certificates from CSRs, refusals, real TLS handshakes. */
import { describe, expect, test } from "bun:test";
import { once } from "node:events";
import tls from "node:tls";
import { KubeNovaError } from "../../shared/errors.ts";
import {
  certificateInfo,
  createCsr,
  exportPrivateKeyPem,
  generateKeyPair,
  renewalTime,
} from "../../shared/pki.ts";
import { createCertificateAuthority, loadCertificateAuthority } from "../../manager/pki/ca.ts";

const CLUSTER = "01a20029-0000-7000-8000-000000000001";

async function clientIdentity(ca: Awaited<ReturnType<typeof createCertificateAuthority>>, cn = CLUSTER) {
  const keys = await generateKeyPair();
  const csrPem = await createCsr({ commonName: cn, keys });
  const issued = await ca.signClientCsr({ csrPem, clusterId: CLUSTER, lifetimeSeconds: 3600 });
  return { ...issued, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

describe("certificate authority", () => {
  test("a CSR becomes a client certificate with CN = cluster id and the requested lifetime", async () => {
    const ca = await createCertificateAuthority();
    const issued = await clientIdentity(ca);
    const info = await certificateInfo(issued.certificatePem);
    expect(info.subjectCommonName).toBe(CLUSTER);
    expect(info.issuerCommonName).toBe("KubeNova Cluster CA");
    const lifetime = info.notAfter.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(3500_000);
    expect(lifetime).toBeLessThanOrEqual(3600_000);
  });

  test.each([
    ["garbage", async () => "not a csr"],
    [
      "a CSR for another cluster",
      async () => createCsr({ commonName: "someone-else", keys: await generateKeyPair() }),
    ],
  ])("%s is refused with KN-400 naming csr", async (_name, make) => {
    const ca = await createCertificateAuthority();
    const csrPem = await make();
    const error = await ca.signClientCsr({ csrPem, clusterId: CLUSTER, lifetimeSeconds: 60 }).catch((e) => e);
    expect(error).toBeInstanceOf(KubeNovaError);
    expect(error.code).toBe("KN-400");
    expect(error.message).toStartWith("csr:");
  });

  test("a reloaded CA keeps signing under the same certificate", async () => {
    const ca = await createCertificateAuthority();
    const again = await loadCertificateAuthority({
      certificatePem: ca.certificatePem,
      privateKeyPem: await ca.exportPrivateKeyPem(),
    });
    expect(again.certificatePem).toBe(ca.certificatePem);
    const issued = await clientIdentity(again);
    expect((await certificateInfo(issued.certificatePem)).issuerCommonName).toBe("KubeNova Cluster CA");
  });

  test("mutual TLS: the server certificate verifies for its SAN and the client CN reaches the server", async () => {
    const ca = await createCertificateAuthority();
    const server = await ca.issueServerCertificate({
      commonName: "kubenova-broker",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1"],
      lifetimeDays: 1,
    });
    const client = await clientIdentity(ca);
    const peers: string[] = [];
    const listener = tls.createServer(
      {
        cert: server.certificatePem,
        key: server.privateKeyPem,
        ca: ca.certificatePem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        peers.push(String(socket.getPeerCertificate().subject.CN));
        socket.end("ok");
      },
    );
    listener.listen(0, "127.0.0.1");
    await once(listener, "listening");
    const port = (listener.address() as { port: number }).port;
    try {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        ca: ca.certificatePem,
        cert: client.certificatePem,
        key: client.privateKeyPem,
      });
      await once(socket, "secureConnect");
      expect(socket.authorized).toBe(true);
      socket.resume();
      await once(socket, "end");
      expect(peers).toEqual([CLUSTER]);
      socket.destroy();
      // A client certificate from another CA is refused by the handshake.
      const stranger = await clientIdentity(await createCertificateAuthority());
      const refused = tls.connect({
        host: "127.0.0.1",
        port,
        ca: ca.certificatePem,
        cert: stranger.certificatePem,
        key: stranger.privateKeyPem,
      });
      const outcome = await Promise.race([
        once(refused, "error").then(() => "error"),
        once(refused, "close").then(() => "closed"),
      ]);
      expect(["error", "closed"]).toContain(outcome);
      expect(peers).toEqual([CLUSTER]);
      refused.destroy();
    } finally {
      listener.close();
    }
  });

  test("renewal falls between 70% and 90% of the lifetime", () => {
    const from = new Date(0);
    const to = new Date(1000_000);
    expect(renewalTime(from, to, () => 0).getTime()).toBe(700_000);
    expect(renewalTime(from, to, () => 1).getTime()).toBe(900_000);
  });
});
