/**
 * A process hosting several simulated operators with the real link code (enrolment, mTLS client, outbox, acks):
 * each enqueues `REPORTS` unique hourly usage reports at once, then the process waits until every outbox is
 * empty — i.e. the Manager acknowledged every report after committing it — and exits 0.
 * Input (env): MANAGER_URL, OPERATORS (JSON [{ clusterId, token }]), REPORTS, DATA_DIR.
 */
import "reflect-metadata";
import { join } from "node:path";
import { createOperatorLink } from "../../operator/link/link.ts";
import { openOutbox } from "../../operator/link/outbox.ts";
import { enroll } from "../../shared/enrolment-client.ts";
import { createLogger } from "../../shared/logger.ts";
import { exportPrivateKeyPem, generateKeyPair } from "../../shared/pki.ts";

const operators = JSON.parse(process.env.OPERATORS ?? "[]") as Array<{ clusterId: string; token: string }>;
const reports = Number(process.env.REPORTS ?? 200);
const dataDir = process.env.DATA_DIR ?? "/tmp";
const logger = createLogger({ level: "warn", sink: (line) => process.stderr.write(`${line}\n`) });
const hour = 3_600_000;
const base = Math.floor(Date.now() / hour) * hour;

const links = await Promise.all(
  operators.map(async ({ clusterId, token }, index) => {
    const keys = await generateKeyPair();
    const identity = await enroll({
      managerUrl: process.env.MANAGER_URL!,
      clusterId,
      bootstrapToken: token,
      keys,
    });
    const keyPem = await exportPrivateKeyPem(keys.privateKey);
    const outbox = openOutbox({ path: join(dataDir, `outbox-${index}.db`), maxRows: 100_000 });
    let revision = 0;
    const link = createOperatorLink({
      clusterId,
      brokerUrl: identity.brokerUrl,
      tls: () => ({ caPem: identity.caBundle, certPem: identity.certificate, keyPem }),
      outbox,
      applier: { apply: async () => undefined, applySnapshot: async () => undefined },
      revisions: {
        get: async () => revision,
        set: async (r) => {
          revision = r;
        },
      },
      commands: async () => ({ ok: true }),
      hello: async () => ({ operatorVersion: "sim", kubernetesVersion: null, capabilities: {} }),
      logger,
      heartbeatIntervalMs: 1000,
      resendAfterMs: 1000,
      maxInFlight: 32,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    for (let i = 0; i < reports; i++) {
      const start = base - (i + 1) * hour;
      const pods = (index % 7) + (i % 5) + 1;
      link.report("usage", {
        tenant: "acme",
        windowStart: new Date(start).toISOString(),
        windowEnd: new Date(start + hour).toISOString(),
        metrics: {
          cpuRequestMillicores: 100 * pods,
          memoryRequestBytes: 0,
          storageBytes: 0,
          loadBalancers: 0,
          pods,
          namespaces: 1,
          applications: 0,
          quotaViolations: 0,
        },
        byProject: {},
      });
    }
    link.start();
    return { link, outbox };
  }),
);

const deadline = Date.now() + 120_000;
while (links.some(({ outbox }) => outbox.stats().pending > 0)) {
  if (Date.now() > deadline) {
    process.stderr.write(`gave up: ${links.map(({ outbox }) => outbox.stats().pending).join(",")} pending\n`);
    for (const { link } of links) process.stderr.write(`${JSON.stringify(link.stats())}\n`);
    process.exit(1);
  }
  await Bun.sleep(100);
}
for (const { link, outbox } of links) {
  await link.stop();
  outbox.close();
}
process.stdout.write("all acknowledged\n");
process.exit(0);
