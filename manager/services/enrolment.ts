/**
 * Cluster enrolment and identity (DESIGN.md §4): one-time bootstrap tokens, the install manifests they unlock,
 * CSR signing into client certificates (CN = cluster id), renewal over the current identity, revocation, and the
 * hooks the broker integration uses (`isClusterAllowed`, `markClusterConnected/Offline`, `onClusterRevoked`).
 *
 * Revocation: `clusters.revokedAt` is set and every certificate of the cluster is marked revoked; unused bootstrap
 * tokens are deleted. The row stays (history, tenants' placement). It can connect again only after re-enrolment:
 * an admin mints a fresh bootstrap token and the operator enrols with a new CSR, which clears `revokedAt`. Deleting
 * a cluster revokes its certificates as well (services/clusters.ts).
 */
import type { ManagerConfig } from "../../shared/config.ts";
import { errors, KubeNovaError } from "../../shared/errors.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { certificateInfo, renewalTime } from "../../shared/pki.ts";
import { buildInstallManifests, type KubeManifest, renderInstallYaml } from "../install/manifests.ts";
import type { CertificateAuthority } from "../pki/ca.ts";
import { normalizeSerial, sha256Hex, verifyRenewalProof } from "../pki/proof-of-possession.ts";
import type { ClusterRow, StoreTx } from "../store/store.ts";
import { type Actor, audit, nowIso, type ServiceDeps } from "./context.ts";

export const BOOTSTRAP_TOKEN_PREFIX = "knb_";
const BOOTSTRAP_TOKEN = /^knb_[A-Za-z0-9_-]{43}$/;

/** The Manager settings enrolment depends on, taken from ManagerConfig once. */
export interface EnrolmentSettings {
  /** Where operators and users reach the API (config.publicUrl). */
  managerUrl: string;
  /** The broker URL handed to operators (config.mqtt.publicUrl). */
  brokerUrl: string;
  bootstrapTokenTtlSeconds: number;
  clientCertLifetimeSeconds: number;
  operatorImage: string;
}

export function enrolmentSettingsFromConfig(config: ManagerConfig): EnrolmentSettings {
  return {
    managerUrl: config.publicUrl,
    brokerUrl: config.mqtt.externalUrl ?? config.mqtt.publicUrl,
    bootstrapTokenTtlSeconds: config.pki.bootstrapTokenTtlSeconds,
    clientCertLifetimeSeconds: config.pki.clientCertLifetimeSeconds,
    operatorImage: config.operatorImage,
  };
}

export interface EnrolmentDeps {
  ca: CertificateAuthority;
  settings: EnrolmentSettings;
  /**
   * Called after a cluster is revoked or deleted, once its rows say so; the broker kicks the session. Set it after
   * construction if the broker starts later. Its errors are logged, never propagated.
   */
  onClusterRevoked?: ((clusterId: string) => void | Promise<void>) | undefined;
  /** Jitter source for `renewAfter` (tests pin it). */
  random?: () => number;
}

export type EnrolmentServiceDeps = ServiceDeps & { enrolment: EnrolmentDeps };

export interface BootstrapInfo {
  token: string;
  expiresAt: string;
  installUrl: string;
  instructions: { kubectl: string; helm: string };
}

export interface IssuedIdentity {
  clusterId: string;
  certificate: string;
  caBundle: string;
  brokerUrl: string;
  renewAfter: string;
  expiresAt: string;
}

const unauthenticated = (
  message = "the bootstrap token is invalid, expired, already used or not this cluster's",
) => new KubeNovaError("KN-401", message);

function newToken(): string {
  return `${BOOTSTRAP_TOKEN_PREFIX}${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}`;
}

export function installUrlOf(settings: EnrolmentSettings, clusterName: string): string {
  return `${settings.managerUrl}/api/v1/clusters/${encodeURIComponent(clusterName)}/install.yaml`;
}

function bootstrapInfo(settings: EnrolmentSettings, cluster: ClusterRow, token: string, expiresAt: string) {
  const installUrl = installUrlOf(settings, cluster.name);
  return {
    token,
    expiresAt,
    installUrl,
    instructions: {
      kubectl: `curl -fsSL -H "Authorization: Bearer ${token}" ${installUrl} | kubectl apply --server-side --field-manager=kubenova -f -`,
      helm:
        "helm upgrade --install kubenova-operator charts/operator --namespace kubenova-system --create-namespace" +
        ` --set managerUrl=${settings.managerUrl} --set clusterId=${cluster.id} --set bootstrapToken=${token}`,
    },
  } satisfies BootstrapInfo;
}

/**
 * A fresh bootstrap token for the cluster, stored only as its SHA-256; the cluster's unused tokens are deleted
 * in the same transaction, so only the newest one works.
 */
export async function issueBootstrapToken(
  tx: StoreTx,
  deps: EnrolmentServiceDeps,
  cluster: ClusterRow,
): Promise<BootstrapInfo> {
  const token = newToken();
  const now = deps.clock();
  const expiresAt = new Date(
    now.getTime() + deps.enrolment.settings.bootstrapTokenTtlSeconds * 1000,
  ).toISOString();
  await tx.bootstrapTokens.deleteUnused(cluster.id);
  await tx.bootstrapTokens.insert({
    tokenHash: await sha256Hex(token),
    clusterId: cluster.id,
    createdAt: now.toISOString(),
    expiresAt,
    usedAt: null,
  });
  return bootstrapInfo(deps.enrolment.settings, cluster, token, expiresAt);
}

/** `POST /clusters/{cluster}/bootstrap-token`: a new token, the old unused ones invalidated. */
export async function mintBootstrapToken(
  deps: EnrolmentServiceDeps,
  actor: Actor,
  name: string,
): Promise<{ cluster: ClusterRow; bootstrap: BootstrapInfo }> {
  return deps.store.transaction(async (tx) => {
    const cluster = await tx.clusters.get(name);
    if (!cluster) throw errors.notFound("cluster", name);
    const bootstrap = await issueBootstrapToken(tx, deps, cluster);
    await audit(tx, deps, actor, {
      action: "cluster.bootstrapToken",
      resource: `clusters/${name}`,
      details: { expiresAt: bootstrap.expiresAt },
    });
    return { cluster, bootstrap };
  });
}

/** The bootstrap routes name a cluster by id (what the operator knows) or by name (what the user sees). */
async function clusterByIdOrName(deps: ServiceDeps, key: string): Promise<ClusterRow | null> {
  return (await deps.store.clusters.getById(key)) ?? (await deps.store.clusters.get(key));
}

/**
 * Checks `Authorization: Bearer knb_…` for this cluster without burning the token. Every failure — no header, a
 * JWT, an unknown, expired, used or other cluster's token, an unknown cluster — is the same KN-401.
 */
export async function authenticateBootstrapToken(
  deps: EnrolmentServiceDeps,
  clusterKey: string,
  authorization: string | undefined,
): Promise<{ cluster: ClusterRow; tokenHash: string }> {
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match) throw unauthenticated("a bootstrap token is required (Authorization: Bearer knb_…)");
  const token = match[1]!;
  if (!BOOTSTRAP_TOKEN.test(token)) {
    throw unauthenticated("this operation takes the cluster's bootstrap token (knb_…), not an API token");
  }
  const tokenHash = await sha256Hex(token);
  const [row, cluster] = await Promise.all([
    deps.store.bootstrapTokens.get(tokenHash),
    clusterByIdOrName(deps, clusterKey),
  ]);
  if (
    !row ||
    !cluster ||
    row.clusterId !== cluster.id ||
    row.usedAt !== null ||
    Date.parse(row.expiresAt) <= deps.clock().getTime()
  ) {
    throw unauthenticated();
  }
  return { cluster, tokenHash };
}

/** A service-to-service audit record: the actor is the cluster's operator, not an API principal. */
async function auditAsCluster(
  tx: StoreTx,
  deps: ServiceDeps,
  cluster: ClusterRow,
  requestId: string,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  await tx.audit.insert({
    id: uuidv7(),
    at: nowIso(deps),
    actor: `cluster:${cluster.id}`,
    role: "operator",
    action,
    resource: `clusters/${cluster.name}`,
    tenant: null,
    requestId,
    details,
  });
}

function bootstrapping(cluster: ClusterRow): ClusterRow {
  return cluster.status === "pending_bootstrap" ? { ...cluster, status: "bootstrapping" } : cluster;
}

/** `GET /clusters/{cluster}/install.yaml`: the operator's manifests; moves `pending_bootstrap → bootstrapping`. */
export async function installManifestFor(
  deps: EnrolmentServiceDeps,
  clusterKey: string,
  authorization: string | undefined,
  requestId: string,
): Promise<string> {
  const { cluster } = await authenticateBootstrapToken(deps, clusterKey, authorization);
  const token = authorization!.trim().split(/\s+/)[1]!;
  const yaml = renderInstallYaml(operatorManifests(deps.enrolment.settings, cluster, token));
  if (cluster.status === "pending_bootstrap") {
    await deps.store.transaction(async (tx) => {
      const current = await tx.clusters.getById(cluster.id);
      if (current?.status !== "pending_bootstrap") return;
      await tx.clusters.update(bootstrapping({ ...current, updatedAt: nowIso(deps) }), {
        expectedVersion: current.version,
      });
      await auditAsCluster(tx, deps, cluster, requestId, "cluster.installManifest", {});
    });
  }
  return yaml;
}

export function operatorManifests(
  settings: EnrolmentSettings,
  cluster: ClusterRow,
  token: string,
): KubeManifest[] {
  return buildInstallManifests({
    cluster,
    managerUrl: settings.managerUrl,
    operatorImage: settings.operatorImage,
    bootstrapToken: token,
    // Per-cluster placement hints ride on the cluster's labels until they get their own fields.
    targetStorageClass: cluster.labels["kubenova.io/storage-class"] ?? "",
    targetLbAnnotations: cluster.labels["kubenova.io/lb-annotations"] ?? "",
  });
}

async function issueIdentity(
  deps: EnrolmentServiceDeps,
  cluster: ClusterRow,
  csrPem: string,
): Promise<{
  identity: IssuedIdentity;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}> {
  const issued = await deps.enrolment.ca.signClientCsr({
    csrPem,
    clusterId: cluster.id,
    lifetimeSeconds: deps.enrolment.settings.clientCertLifetimeSeconds,
  });
  const info = await certificateInfo(issued.certificatePem);
  return {
    identity: {
      clusterId: cluster.id,
      certificate: issued.certificatePem,
      caBundle: deps.enrolment.ca.certificatePem,
      brokerUrl: deps.enrolment.settings.brokerUrl,
      renewAfter: renewalTime(info.notBefore, info.notAfter, deps.enrolment.random).toISOString(),
      expiresAt: info.notAfter.toISOString(),
    },
    serial: normalizeSerial(info.serialNumber),
    fingerprint: info.fingerprint256,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
  };
}

function checkCsrField(csr: unknown): string {
  if (typeof csr !== "string" || csr.length === 0) {
    throw errors.badRequest("csr: a PEM-encoded PKCS#10 request is required", [
      { path: "csr", message: "required" },
    ]);
  }
  return csr;
}

/**
 * `POST /clusters/{cluster}/enroll`: signs the CSR and burns the token. The token is checked first (KN-401), the
 * CSR next (KN-400, token kept), and burnt atomically with the certificate record, so a racing second use loses.
 */
export async function enrollCluster(
  deps: EnrolmentServiceDeps,
  clusterKey: string,
  authorization: string | undefined,
  input: { csr: string },
  requestId: string,
): Promise<IssuedIdentity> {
  const { cluster, tokenHash } = await authenticateBootstrapToken(deps, clusterKey, authorization);
  const issued = await issueIdentity(deps, cluster, checkCsrField(input.csr));
  await deps.store.transaction(async (tx) => {
    const at = nowIso(deps);
    const burnt = await tx.bootstrapTokens.consume(tokenHash, at);
    if (!burnt || burnt.clusterId !== cluster.id) throw unauthenticated();
    const current = await tx.clusters.getById(cluster.id);
    if (!current) throw unauthenticated();
    await tx.clusterCertificates.insert({
      serial: issued.serial,
      clusterId: cluster.id,
      fingerprint: issued.fingerprint,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      issuedAt: at,
      revokedAt: null,
    });
    // Re-enrolment is how a revoked cluster comes back (module doc).
    await tx.clusters.update(
      { ...bootstrapping(current), revokedAt: null, statusReason: null, updatedAt: at },
      { expectedVersion: current.version },
    );
    await auditAsCluster(tx, deps, cluster, requestId, "cluster.enroll", {
      serial: issued.serial,
      notAfter: issued.identity.expiresAt,
      reEnrolment: current.revokedAt !== null,
    });
  });
  deps.logger.info("cluster enrolled", { cluster: cluster.id, name: cluster.name, serial: issued.serial });
  return issued.identity;
}

/**
 * `POST /clusters/{cluster}/renew`: a new certificate over the current identity. The proof must verify
 * (proof-of-possession.ts), and the presented certificate must be one this Manager recorded for the cluster, not
 * revoked, for a cluster that is not revoked. The older certificate stays valid until it expires, so the operator
 * can switch over without a gap.
 */
export async function renewClusterCertificate(
  deps: EnrolmentServiceDeps,
  clusterKey: string,
  input: { csr: string; proof: string },
  requestId: string,
): Promise<IssuedIdentity> {
  const cluster = await clusterByIdOrName(deps, clusterKey);
  if (!cluster) throw new KubeNovaError("KN-401", "renewal proof refused: unknown cluster");
  const csr = checkCsrField(input.csr);
  const proof = await verifyRenewalProof({
    proof: typeof input.proof === "string" ? input.proof : "",
    csrPem: csr,
    clusterId: cluster.id,
    caCertificatePem: deps.enrolment.ca.certificatePem,
    now: deps.clock(),
  });
  const record = await deps.store.clusterCertificates.get(proof.serial);
  if (!record || record.clusterId !== cluster.id || record.fingerprint !== proof.fingerprint) {
    throw new KubeNovaError(
      "KN-401",
      "renewal proof refused: the certificate is not on record for this cluster",
    );
  }
  if (record.revokedAt !== null || cluster.revokedAt !== null) {
    throw new KubeNovaError("KN-401", "renewal proof refused: the certificate has been revoked");
  }
  const issued = await issueIdentity(deps, cluster, csr);
  await deps.store.transaction(async (tx) => {
    const current = await tx.clusters.getById(cluster.id);
    if (!current || current.revokedAt !== null) {
      throw new KubeNovaError("KN-401", "renewal proof refused: the cluster has been revoked");
    }
    await tx.clusterCertificates.insert({
      serial: issued.serial,
      clusterId: cluster.id,
      fingerprint: issued.fingerprint,
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      issuedAt: nowIso(deps),
      revokedAt: null,
    });
    await auditAsCluster(tx, deps, cluster, requestId, "cluster.renew", {
      previousSerial: proof.serial,
      serial: issued.serial,
      notAfter: issued.identity.expiresAt,
    });
  });
  return issued.identity;
}

/** Tells the broker (if it listens) that a cluster lost its identity; never throws. */
export async function notifyClusterRevoked(
  deps: Pick<ServiceDeps, "logger"> & { enrolment?: EnrolmentDeps | undefined },
  clusterId: string,
): Promise<void> {
  try {
    await deps.enrolment?.onClusterRevoked?.(clusterId);
  } catch (error) {
    deps.logger.error("revocation hook failed", { cluster: clusterId, err: error as Error });
  }
}

/** `POST /clusters/{cluster}/revoke`: see the module doc for what revocation means. */
export async function revokeCluster(
  deps: EnrolmentServiceDeps,
  actor: Actor,
  name: string,
): Promise<ClusterRow> {
  const revoked = await deps.store.transaction(async (tx) => {
    const current = await tx.clusters.get(name);
    if (!current) throw errors.notFound("cluster", name);
    const at = nowIso(deps);
    const certificates = await tx.clusterCertificates.revokeForCluster(current.id, at);
    const tokens = await tx.bootstrapTokens.deleteUnused(current.id);
    const updated = await tx.clusters.update(
      {
        ...current,
        revokedAt: current.revokedAt ?? at,
        status: "offline",
        statusReason: "revoked: re-enrol with a new bootstrap token to reconnect",
        updatedAt: at,
      },
      { expectedVersion: current.version },
    );
    await audit(tx, deps, actor, {
      action: "cluster.revoke",
      resource: `clusters/${name}`,
      details: { certificates, bootstrapTokens: tokens },
    });
    return updated;
  });
  await notifyClusterRevoked(deps, revoked.id);
  return revoked;
}

/**
 * For the broker's authenticate hook: the cluster exists and is not revoked; with `serial`, that certificate is
 * also one the CA issued to this cluster and is not revoked.
 */
export async function isClusterAllowed(
  deps: Pick<ServiceDeps, "store">,
  clusterId: string,
  options: { serial?: string } = {},
): Promise<boolean> {
  const cluster = await deps.store.clusters.getById(clusterId);
  if (!cluster || cluster.revokedAt !== null) return false;
  if (options.serial === undefined) return true;
  const certificate = await deps.store.clusterCertificates.get(normalizeSerial(options.serial));
  return certificate !== null && certificate.clusterId === clusterId && certificate.revokedAt === null;
}

async function setPresence(
  deps: Pick<ServiceDeps, "store">,
  clusterId: string,
  status: "connected" | "offline",
  at: Date,
): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const current = await deps.store.clusters.getById(clusterId);
    if (!current || current.revokedAt !== null) return false;
    const lastSeenAt = at.toISOString();
    // An older presence event arriving late must not overwrite a newer one.
    if (current.lastSeenAt !== null && current.lastSeenAt > lastSeenAt) return false;
    try {
      await deps.store.clusters.update(
        { ...current, status, statusReason: null, lastSeenAt },
        { expectedVersion: current.version },
      );
      return true;
    } catch (error) {
      if (!(error instanceof KubeNovaError && error.code === "KN-412")) throw error;
    }
  }
  return false;
}

/** The broker integration: a session of this cluster came up. Returns false for unknown or revoked clusters. */
export function markClusterConnected(deps: Pick<ServiceDeps, "store">, clusterId: string, at: Date) {
  return setPresence(deps, clusterId, "connected", at);
}

/** The broker integration: the session ended (last will or disconnect). */
export function markClusterOffline(deps: Pick<ServiceDeps, "store">, clusterId: string, at: Date) {
  return setPresence(deps, clusterId, "offline", at);
}
