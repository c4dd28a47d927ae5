/**
 * Issue 9, time: clock skew, hour boundaries, late and future usage, and certificates that run out — all through
 * the real channel (embedded broker over mTLS, real operator links, the Manager's ingest; tests/sync/fixtures.ts).
 *
 * 1. Skew: the ingest accepts a usage window starting 9 minutes in the future and quarantines one starting 11
 *    minutes ahead ("future"); an envelope `sentAt` 10 minutes off either way changes nothing.
 * 2. Hour boundaries: `windowStart = …T09:59:59.999Z` is hour 09, `…T10:00:00.000Z` is hour 10 — in
 *    `aggregate(…, "hour")`, in the stored rows and in `GET /api/v1/tenants/{t}/usage`, also when the operator
 *    writes the instant with an offset.
 * 3. Late reports: too old (window ended > 35 d ago) is quarantined ("too_old"), a window ended 3 days ago (past
 *    the 48 h close) is stored as an adjustment row, a broken window is quarantined ("bad_window"); all acked.
 * 4. Certificates with a 3 s lifetime: the broker ends the session at expiry, presence says
 *    `certificate_expired` (its only certificate row has expired), the link cannot reconnect with it; a renewed
 *    certificate (new key, new row) connects again and presence returns to `connected`.
 */
import "reflect-metadata";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../manager/http/app.ts";
import { normalizeSerial } from "../../manager/pki/proof-of-possession.ts";
import { aggregate } from "../../manager/services/usage.ts";
import type { UsageRow } from "../../manager/store/store.ts";
import { createOperatorLink, type OperatorLink } from "../../operator/link/link.ts";
import { openOutbox } from "../../operator/link/outbox.ts";
import { uuidv7 } from "../../shared/ids.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { makeEnvelope } from "../../shared/messages.ts";
import { certificateInfo, createCsr, exportPrivateKeyPem, generateKeyPair } from "../../shared/pki.ts";
import { zeroUsage } from "../../shared/usage.ts";
import { createTestManager } from "../http/harness.ts";
import { createSyncWorld, type SyncWorld, waitFor } from "../sync/fixtures.ts";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function world(): Promise<SyncWorld> {
  const w = await createSyncWorld();
  cleanups.push(() => w.close());
  return w;
}

const metrics = (pods: number) => ({ ...zeroUsage(), pods });
const usage = (tenant: string, start: Date | string, end: Date | string, pods = 1) => ({
  tenant,
  windowStart: typeof start === "string" ? start : start.toISOString(),
  windowEnd: typeof end === "string" ? end : end.toISOString(),
  metrics: metrics(pods),
  byProject: {},
});

async function usageRows(w: SyncWorld, clusterId: string): Promise<UsageRow[]> {
  return (await w.store.usage.list({ clusterId }, { limit: 500 })).items;
}
async function quarantined(w: SyncWorld, clusterId: string) {
  return (await w.store.usageQuarantine.list({ clusterId }, { limit: 500 })).items;
}

describe("clock skew", () => {
  test("usage 9 min in the future is accepted, 11 min is quarantined as future; sentAt ±10 min is irrelevant", async () => {
    const w = await world();
    const cluster = await w.addCluster("skewed");
    const op = await w.operator(cluster.id);
    await waitFor("connected", () => op.link.stats().connected);
    const now = Date.now();
    const ahead9 = op.link.report(
      "usage",
      usage("acme", new Date(now + 9 * MINUTE), new Date(now + 69 * MINUTE)),
    );
    const ahead11 = op.link.report(
      "usage",
      usage("acme", new Date(now + 11 * MINUTE), new Date(now + 71 * MINUTE)),
    );
    // An operator whose clock is 10 min off writes that into `sentAt`: enqueue such envelopes as its link would.
    const skewedSentAt: string[] = [];
    for (const [i, skewMs] of [-10 * MINUTE, 10 * MINUTE].entries()) {
      const id = uuidv7();
      const start = new Date(Math.floor(now / HOUR) * HOUR - (i + 2) * HOUR);
      const envelope = makeEnvelope({
        id,
        kind: "usage",
        clusterId: cluster.id,
        sentAt: new Date(now + skewMs),
        body: usage("acme", start, new Date(start.getTime() + HOUR)),
      });
      op.outbox.enqueue({ id, channel: "usage", reportClass: "usage", payload: JSON.stringify(envelope) });
      skewedSentAt.push(id);
    }
    await waitFor("every report acked", () => op.outbox.stats().pending === 0);

    const rows = await usageRows(w, cluster.id);
    expect(rows.map((r) => r.id).sort()).toEqual([ahead9, ...skewedSentAt].sort());
    expect(rows.every((r) => !r.adjustment)).toBe(true);
    const held = await quarantined(w, cluster.id);
    expect(held.map((q) => [q.id, q.reason])).toEqual([[ahead11, "future"]]);
    expect(w.channel.ingest.stats()).toMatchObject({ committed: 4, quarantined: 1, adjustments: 0 });
  });
});

describe("hour boundaries", () => {
  test("…T09:59:59.999Z is hour 09 and …T10:00:00.000Z hour 10: aggregate, stored rows and the HTTP report agree", async () => {
    const w = await world();
    const cluster = await w.addCluster("dc1");
    const m = await createTestManager();
    cleanups.push(() => m.close());
    const app = createApp({ ...m.services, store: w.channel.store });
    const admin = await m.token("admin");
    const created = await app.request("/api/v1/tenants", {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "acme", owners: ["owner@acme"], clusters: ["dc1"] }),
    });
    expect(created.status).toBe(201);

    // An hour boundary 3 hours ago: recent enough to be neither future nor late.
    const boundary = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const iso = (ms: number) => new Date(ms).toISOString();
    const before = boundary - 1; // hh-1:59:59.999
    const op = await w.operator(cluster.id);
    const reports = [
      // The last millisecond of the previous hour, in UTC and written with a +02:00 offset (another tenant: the
      // window key is unique per cluster + tenant + start, and both spellings are the same instant).
      { tenant: "acme", start: iso(before), pods: 1 },
      { tenant: "other", start: offsetIso(before, 120), pods: 2 },
      { tenant: "acme", start: iso(boundary), pods: 10 },
      { tenant: "other", start: offsetIso(boundary, -330), pods: 20 },
    ];
    for (const r of reports) {
      const startMs = Date.parse(r.start);
      op.link.report("usage", usage(r.tenant, r.start, iso(startMs + HOUR), r.pods));
    }
    await waitFor("every report acked", () => op.outbox.stats().pending === 0);

    const rows = await usageRows(w, cluster.id);
    // Stored normalized to UTC, so the offset spellings compare and range-filter like the others.
    expect(rows.map((r) => [r.tenant, r.windowStart]).sort()).toEqual(
      [
        ["acme", iso(before)],
        ["acme", iso(boundary)],
        ["other", iso(before)],
        ["other", iso(boundary)],
      ].sort(),
    );
    const hours = aggregate(rows, "hour").buckets.map((b) => [b.start, b.records, b.metrics.pods]);
    expect(hours).toEqual([
      [iso(boundary - HOUR), 2, 3],
      [iso(boundary), 2, 30],
    ]);
    expect(iso(before).endsWith(":59:59.999Z")).toBe(true);

    const report = async (from: number, to: number) => {
      const query = `from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}&granularity=hour`;
      const res = await app.request(`/api/v1/tenants/acme/usage?${query}`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        records: number;
        buckets: Array<{ start: string; end: string; records: number; metrics: { pods: number } }>;
      };
    };
    const both = await report(boundary - HOUR, boundary + HOUR);
    expect(both.buckets.map((b) => [b.start, b.end, b.records, b.metrics.pods])).toEqual([
      [iso(boundary - HOUR), iso(boundary), 1, 1],
      [iso(boundary), iso(boundary + HOUR), 1, 10],
    ]);
    // `to` is exclusive and `from` inclusive, to the millisecond.
    expect((await report(boundary - HOUR, boundary)).buckets.map((b) => b.metrics.pods)).toEqual([1]);
    expect((await report(boundary, boundary + HOUR)).buckets.map((b) => b.metrics.pods)).toEqual([10]);
    expect((await report(before + 1, boundary + 1)).buckets.map((b) => b.metrics.pods)).toEqual([10]);
    expect((await report(before, boundary)).buckets.map((b) => b.metrics.pods)).toEqual([1]);
  });
});

/** `ms` written in local time at `offsetMinutes` from UTC, e.g. `2031-01-01T11:59:59.999+02:00`. */
function offsetIso(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * MINUTE).toISOString().slice(0, -1);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

describe("late and future reports", () => {
  test("too old and broken windows are quarantined with a reason, late-but-in-age ones are adjustments, all acked", async () => {
    const w = await world();
    const cluster = await w.addCluster("late");
    const op = await w.operator(cluster.id);
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    const window = (startMs: number, tenant = "acme") =>
      usage(tenant, new Date(startMs), new Date(startMs + HOUR));
    const ids = {
      fresh: op.link.report("usage", window(hour - 2 * HOUR)),
      // Ended 40 h ago: late but within the 48 h close: an ordinary row.
      late40h: op.link.report("usage", window(hour - 41 * HOUR)),
      // Ended ~3 days ago: the period is closed, the row is an adjustment.
      late3d: op.link.report("usage", window(hour - 3 * DAY)),
      // Ended 34 days ago: still within the 35 d age, an adjustment.
      late34d: op.link.report("usage", window(hour - 34 * DAY)),
      tooOld: op.link.report("usage", window(hour - 36 * DAY)),
      future: op.link.report("usage", window(hour + 2 * HOUR)),
      farFuture: op.link.report("usage", window(hour + 400 * DAY)),
      backwards: op.link.report("usage", usage("acme", new Date(hour - HOUR), new Date(hour - 2 * HOUR))),
      tooLong: op.link.report("usage", usage("acme", new Date(hour - 3 * DAY), new Date(hour - HOUR))),
    };
    await waitFor("every report acked", () => op.outbox.stats().pending === 0);

    const rows = new Map((await usageRows(w, cluster.id)).map((r) => [r.id, r.adjustment]));
    expect(Object.fromEntries(rows)).toEqual({
      [ids.fresh]: false,
      [ids.late40h]: false,
      [ids.late3d]: true,
      [ids.late34d]: true,
    });
    const held = Object.fromEntries((await quarantined(w, cluster.id)).map((q) => [q.id, q.reason]));
    expect(held).toEqual({
      [ids.tooOld]: "too_old",
      [ids.future]: "future",
      [ids.farFuture]: "future",
      [ids.backwards]: "bad_window",
      [ids.tooLong]: "bad_window",
    });
    expect(w.channel.ingest.stats()).toMatchObject({
      committed: 9,
      quarantined: 5,
      adjustments: 2,
      duplicates: 0,
    });
  });
});

describe("certificate expiry and renewal", () => {
  test("a 3 s certificate: kicked at expiry, certificate_expired, renewed identity connects again", async () => {
    const w = await world();
    const cluster = await w.addCluster("short-lived");
    const dir = await mkdtemp(join(tmpdir(), "kn-time-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    /** Issues a certificate the way enrolment does and records its row in `clusterCertificates`. */
    const enrol = async (lifetimeSeconds: number) => {
      const keys = await generateKeyPair();
      const csrPem = await createCsr({ commonName: cluster.id, keys });
      const issued = await w.pki.ca.signClientCsr({ csrPem, clusterId: cluster.id, lifetimeSeconds });
      const info = await certificateInfo(issued.certificatePem);
      await w.store.clusterCertificates.insert({
        serial: normalizeSerial(info.serialNumber),
        clusterId: cluster.id,
        fingerprint: info.fingerprint256,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        issuedAt: new Date().toISOString(),
        revokedAt: null,
      });
      return {
        certPem: issued.certificatePem,
        keyPem: await exportPrivateKeyPem(keys.privateKey),
        notAfter: info.notAfter,
      };
    };

    let identity = await enrol(3);
    const outbox = openOutbox({ path: join(dir, "outbox.db"), maxRows: 1000 });
    const link: OperatorLink = createOperatorLink({
      clusterId: cluster.id,
      brokerUrl: `mqtts://127.0.0.1:${w.broker.port}`,
      // Read at every connect: the renewed certificate is used from the next connection on.
      tls: () => ({ caPem: w.pki.ca.certificatePem, certPem: identity.certPem, keyPem: identity.keyPem }),
      outbox,
      applier: { apply: async () => {}, applySnapshot: async () => {} },
      revisions: { get: async () => 0, set: async () => {} },
      commands: async () => ({ ok: true }),
      hello: async () => ({ operatorVersion: "test", kubernetesVersion: null, capabilities: {} }),
      logger: createMemoryLogger("warn"),
      heartbeatIntervalMs: 200,
      flushIntervalMs: 20,
      resendAfterMs: 500,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    cleanups.push(async () => {
      await link.stop();
      outbox.close();
    });
    const status = async () => (await w.store.clusters.getById(cluster.id))?.status;
    link.start();
    await waitFor("connected", async () => (await status()) === "connected");
    const firstReport = link.report(
      "usage",
      usage("acme", new Date(Date.now() - 2 * HOUR), new Date(Date.now() - HOUR)),
    );
    await waitFor("the report acked before expiry", () => outbox.stats().pending === 0);

    await waitFor(
      "the broker to end the session at expiry",
      () => w.broker.metrics.connections.disconnected["certificate-expired"] === 1,
      6_000,
    );
    // Not before the certificate's notAfter (X.509 has 1 s resolution; the broker arms a timer for it).
    expect(Date.now()).toBeGreaterThanOrEqual(identity.notAfter.getTime());
    await waitFor("presence certificate_expired", async () => (await status()) === "certificate_expired");
    expect(w.channel.presence.stateOf(cluster.id)).toBe("certificate_expired");

    // With the expired certificate the link keeps failing the TLS handshake; the state does not move.
    const failuresBefore = w.broker.metrics.connections.tlsHandshakeFailures;
    await waitFor(
      "reconnect attempts refused",
      () => w.broker.metrics.connections.tlsHandshakeFailures > failuresBefore + 2,
    );
    expect(await status()).toBe("certificate_expired");
    expect(link.stats().connected).toBe(false);
    const held = link.report(
      "usage",
      usage("acme", new Date(Date.now() - 3 * HOUR), new Date(Date.now() - 2 * HOUR)),
    );
    expect(outbox.stats().pending).toBe(1);

    // Renewal: a new key and certificate, recorded like enrolment records it; the next connect uses it.
    identity = await enrol(3600);
    await waitFor(
      "connected again with the renewed certificate",
      async () => (await status()) === "connected",
    );
    await waitFor("the report held while expired is delivered", () => outbox.stats().pending === 0);
    const rows = await usageRows(w, cluster.id);
    expect(rows.map((r) => r.id).sort()).toEqual([firstReport, held].sort());
    expect(w.broker.metrics.connections.disconnected["certificate-expired"]).toBe(1);
    expect((await w.store.clusterCertificates.listForCluster(cluster.id)).length).toBe(2);
  }, 20_000);
});
