/** A self-signed client certificate (not issued by any CA the broker trusts). */
import * as x509 from "@peculiar/x509";
import { EC_ALGORITHM, exportPrivateKeyPem, generateKeyPair } from "../../shared/pki.ts";
import type { ClientIdentity } from "./fixtures.ts";

export async function selfSignedIdentity(cn: string): Promise<ClientIdentity> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: [{ CN: [cn] }],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { certificatePem: cert.toString("pem"), privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}
