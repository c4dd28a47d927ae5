/** Shared steps of the enrolment tests: register a cluster, enrol it with a fresh key pair. */
import { expect } from "bun:test";
import { createCsr, generateKeyPair } from "../../shared/pki.ts";
import type { TestManager } from "../http/harness.ts";

export interface Enrolled {
  clusterId: string;
  name: string;
  token: string;
  keys: CryptoKeyPair;
  certificate: string;
  caBundle: string;
  body: Record<string, unknown>;
}

export async function register(
  m: TestManager,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<{ clusterId: string; token: string; body: any }> {
  const admin = await m.token("admin");
  const res = await m.call("POST", "/api/v1/clusters", {
    token: admin,
    body: { name, datacenter: "fra", ...extra },
  });
  expect(res.status).toBe(201);
  return { clusterId: res.body.cluster.id, token: res.body.bootstrap.token, body: res.body };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export async function enrolWithToken(
  m: TestManager,
  path: string,
  clusterId: string,
  token: string,
  keys?: CryptoKeyPair,
) {
  const pair = keys ?? (await generateKeyPair());
  const csr = await createCsr({ commonName: clusterId, keys: pair });
  const res = await m.call("POST", `/api/v1/clusters/${path}/enroll`, {
    headers: bearer(token),
    body: { csr },
  });
  return { res, keys: pair };
}

export async function registerAndEnrol(m: TestManager, name: string): Promise<Enrolled> {
  const { clusterId, token } = await register(m, name);
  const { res, keys } = await enrolWithToken(m, name, clusterId, token);
  expect(res.status).toBe(200);
  return {
    clusterId,
    name,
    token,
    keys,
    certificate: res.body.certificate,
    caBundle: res.body.caBundle,
    body: res.body,
  };
}
