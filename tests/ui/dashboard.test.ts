/**
 * The dashboard at /ui, driven in headless Chromium through playwright-core against a real Manager app served
 * on loopback: sign in, clusters, create a tenant, watch an app's status change, roll back, see a usage chart;
 * a readOnly user sees no mutating controls (and the API refuses them anyway). Screenshots go to
 * test-artifacts/ui/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { uuidv7 } from "../../shared/ids.ts";
import { createTestManager, SAMPLE_SPEC, seedWorld, type TestManager } from "../http/harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = "test-artifacts/ui";
const APP_PATH = "/api/v1/tenants/acme/projects/web/apps/site";

/** The text a user sees in a locator's elements. */
// biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property.
const visibleText = (locator: Locator) => locator.innerText();

describe("dashboard assets (no browser needed)", () => {
  test("/ui is served with a strict CSP and loads nothing from another origin", async () => {
    const m = await createTestManager();
    try {
      const page = await m.app.request("/ui");
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      const csp = page.headers.get("content-security-policy") ?? "";
      for (const directive of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
      ])
        expect(csp).toContain(directive);
      const html = await page.text();
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
      expect(html).toContain('src="/ui/app.js"');
      for (const [file, type] of [
        ["app.js", "javascript"],
        ["api.js", "javascript"],
        ["chart.js", "javascript"],
        ["dom.js", "javascript"],
        ["styles.css", "text/css"],
      ] as const) {
        const asset = await m.app.request(`/ui/${file}`);
        expect(asset.status).toBe(200);
        expect(asset.headers.get("content-type")).toContain(type);
        expect(await asset.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      }
      expect((await m.app.request("/ui/secrets.txt")).status).toBe(404);
    } finally {
      await m.close();
    }
  });
});

if (!existsSync(CHROMIUM)) {
  console.warn(
    `\n${"!".repeat(100)}\n!!! ${CHROMIUM} is missing: the dashboard browser tests are SKIPPED.\n` +
      `!!! Install it with: apt-get install -y chromium   (.ci/run does this)\n${"!".repeat(100)}\n`,
  );
  test.skip(`dashboard in headless Chromium — SKIPPED: ${CHROMIUM} is not installed`, () => {});
} else {
  describe("dashboard in headless Chromium", () => {
    let m: TestManager;
    let server: ReturnType<typeof Bun.serve>;
    let browser: Browser;
    let baseUrl: string;
    let dc1Id: string;
    /** Moves the Manager's clock (token expiry) without touching the browser's. */
    let clockOffsetMs = 0;

    beforeAll(async () => {
      mkdirSync(ARTIFACTS, { recursive: true });
      m = await createTestManager({ now: () => new Date(Date.now() + clockOffsetMs) });
      await seedWorld(m);
      dc1Id = (await m.store.clusters.get("dc1"))!.id;
      server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: m.app.fetch });
      baseUrl = `http://127.0.0.1:${server.port}`;
      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop(true);
      await m?.close();
    });

    /** A fresh browser context whose page problems (script errors, CSP violations, failed loads) are collected. */
    async function openPage(): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(8000);
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
      page.on("console", (message) => {
        // 401/403/409 responses the tests provoke on purpose are logged by Chromium as failed loads.
        if (message.type() === "error" && !/status of 40[139] /.test(message.text()))
          problems.push(`console: ${message.text()}`);
      });
      await page.goto(`${baseUrl}/ui`);
      return { context, page, problems };
    }

    async function signIn(page: Page, token: string) {
      await page.getByLabel("API token").fill(token);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("button", { name: "Sign out" }).waitFor();
    }

    const shot = (page: Page, name: string) =>
      page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });

    async function reportStatus(generation: number, phase: string, detail: Record<string, unknown>) {
      await m.store.statusMirror.upsert({
        clusterId: dc1Id,
        kind: "app",
        key: "acme/web/site",
        observedGeneration: generation,
        body: { phase, revision: 2, detail },
        updatedAt: new Date().toISOString(),
      });
    }

    test("admin: sign in, clusters, create a tenant, live app status, roll back, usage chart", async () => {
      const admin = await m.token("admin");
      // Revision 2 exists before the page opens, so revision 1 is a rollback target.
      const patched = await m.call("PATCH", APP_PATH, {
        token: admin,
        body: {
          spec: { components: [{ ...SAMPLE_SPEC.components[0], properties: { image: "nginx:1.28" } }] },
        },
      });
      expect(patched.status).toBe(200);
      expect(patched.body.revision).toBe(2);
      // Three days of hourly usage: 2, 3 and 4 reports of 250 millicores and 3 pods.
      const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
      let reports = 0;
      for (const [daysAgo, hours] of [
        [2, 2],
        [1, 3],
        [0, 4],
      ] as const) {
        for (let hour = 0; hour < hours; hour++) {
          const start = today - daysAgo * 86_400_000 + hour * 3_600_000;
          const metrics = {
            cpuRequestMillicores: 250,
            memoryRequestBytes: 2 ** 28,
            storageBytes: 0,
            loadBalancers: 0,
            pods: 3,
            namespaces: 2,
            applications: 1,
            quotaViolations: 0,
          };
          await m.store.usage.insert({
            id: uuidv7(),
            clusterId: dc1Id,
            tenant: "acme",
            windowStart: new Date(start).toISOString(),
            windowEnd: new Date(start + 3_600_000).toISOString(),
            metrics,
            byProject: { web: metrics },
            adjustment: false,
            receivedAt: new Date().toISOString(),
          });
          reports++;
        }
      }
      await m.store.events.insert({
        id: uuidv7(),
        clusterId: dc1Id,
        tenant: "acme",
        at: new Date().toISOString(),
        type: "Warning",
        reason: "QuotaExceeded",
        message: "pods quota of acme-apps reached",
        object: { kind: "ResourceQuota", namespace: "acme-apps", name: "kubenova" },
      });

      const { context, page, problems } = await openPage();
      try {
        // Sign in → the clusters table.
        await signIn(page, admin);
        await page.getByRole("heading", { name: "Clusters", level: 1 }).waitFor();
        expect(await visibleText(page.locator("#who"))).toContain("admin");
        const clusterRows = page.locator("main table tbody tr");
        expect(await clusterRows.count()).toBe(2);
        const clusterText = await visibleText(page.locator("main table"));
        for (const text of ["dc1", "fra", "dc2", "ams", "pending_bootstrap", "never"])
          expect(clusterText).toContain(text);
        await shot(page, "01-clusters");

        // Create a tenant through the form.
        await page.getByRole("link", { name: "Tenants" }).click();
        await page.getByRole("heading", { name: "Tenants", level: 1 }).waitFor();
        await page.getByLabel("Tenant name").fill("initech");
        await page.getByLabel("Clusters").selectOption(["dc1", "dc2"]);
        await page.getByLabel("Plan").selectOption("default");
        await page.getByRole("button", { name: "Create tenant" }).click();
        await page.locator("main").getByText("Tenant initech created.").waitFor();
        await page.getByRole("link", { name: "initech" }).waitFor();
        const created = await m.call("GET", "/api/v1/tenants/initech", { token: admin });
        expect(created.status).toBe(200);
        expect(created.body.clusters).toEqual(["dc1", "dc2"]);
        expect(created.body.plan).toBe("default");
        // The API's refusal is shown: the same name again is a conflict.
        await page.getByLabel("Tenant name").fill("initech");
        await page.getByLabel("Clusters").selectOption(["dc1"]);
        await page.getByRole("button", { name: "Create tenant" }).click();
        await page.getByRole("alert").filter({ hasText: "KN-409" }).waitFor();
        await shot(page, "02-tenants");

        // Tenant acme → usage chart with one bar per day and the totals in the text alternative.
        await page.getByRole("link", { name: "acme" }).click();
        await page.getByRole("heading", { name: "Tenant acme" }).waitFor();
        const cpuChart = page.locator('svg.chart[data-metric="cpuRequestMillicores"]');
        await cpuChart.waitFor();
        expect(await cpuChart.locator("rect.bar").count()).toBe(3);
        expect(await page.locator('svg.chart[data-metric="pods"] rect.bar').count()).toBe(3);
        const barValues = await cpuChart
          .locator("rect.bar")
          .evaluateAll((bars) => bars.map((b) => Number(b.getAttribute("data-value"))));
        expect(barValues).toEqual([500, 750, 1000]);
        const summary = await visibleText(page.locator(".usage-summary"));
        expect(summary).toContain(`${(250 * reports).toLocaleString("en")} millicore-hours of CPU`);
        expect(summary).toContain(`${3 * reports} pod-hours`);
        expect(await cpuChart.getAttribute("aria-labelledby")).toBeTruthy();
        expect(await cpuChart.locator("desc").textContent()).toContain("3 day buckets");
        await page.getByText("Usage as a table").click();
        expect(await visibleText(page.locator(".usage-table tfoot"))).toContain(String(3 * reports));
        expect(await visibleText(page.getByRole("region", { name: "Recent events" }))).toContain(
          "QuotaExceeded",
        );
        // Hourly granularity: one bar per reported hour.
        await page.getByLabel("Granularity").selectOption("hour");
        await page.getByRole("button", { name: "Show usage" }).click();
        await page
          .locator('svg.chart[data-metric="cpuRequestMillicores"] rect.bar')
          .nth(reports - 1)
          .waitFor();
        expect(await page.locator('svg.chart[data-metric="cpuRequestMillicores"] rect.bar').count()).toBe(
          reports,
        );
        await page.getByLabel("Granularity").selectOption("day");
        await page.getByRole("button", { name: "Show usage" }).click();
        await page.locator(".usage-summary", { hasText: "3 day buckets" }).waitFor();
        await shot(page, "03-tenant-usage");

        // The app: its status changes on screen as the cluster reports.
        await reportStatus(1, "Applying", { velaPhase: "runningWorkflow", services: [], suspended: false });
        await page.getByRole("link", { name: "site" }).click();
        const phase = page.locator("#app-status .phase");
        await phase.filter({ hasText: "Applying" }).waitFor();
        expect(await page.locator("#app-status").getAttribute("aria-live")).toBe("polite");
        await shot(page, "04-app-applying");
        await reportStatus(2, "Deployed", {
          velaPhase: "running",
          services: [{ name: "frontend", healthy: true, message: null }],
          suspended: false,
        });
        await phase.filter({ hasText: "Deployed" }).waitFor({ timeout: 6000 });
        const statusText = await visibleText(page.locator("#app-status"));
        expect(statusText).toContain("running");
        expect(statusText).toContain("frontend");
        expect(statusText).toContain("healthy");

        // Roll back to revision 1: a new revision 3 is listed and deployed.
        expect(await page.locator("main table tbody tr").count()).toBe(2);
        await page.getByRole("button", { name: "Roll back to revision 1" }).click();
        await page.locator("main").getByText("Rolled back to revision 1: revision 3 is deployed.").waitFor();
        const revisions = page.locator("main table tbody tr");
        expect(await revisions.count()).toBe(3);
        expect(await visibleText(revisions.first())).toContain("r3");
        expect(await visibleText(revisions.first())).toContain("deployed");
        const app = await m.call("GET", APP_PATH, { token: admin });
        expect(app.body.revision).toBe(3);
        expect(app.body.spec).toEqual(SAMPLE_SPEC);
        await shot(page, "05-app-rolled-back");

        // Keyboard only, after a reload (the token survives in sessionStorage): focus starts on the page's
        // heading, Tab reaches the Suspend button, Enter presses it.
        await page.reload();
        await phase.filter({ hasText: "Deployed" }).waitFor();
        const focused = () => page.evaluate(() => document.activeElement?.textContent ?? "");
        // Focus moves to the heading once the page has loaded its data; on a busy machine that takes a moment.
        await page.waitForFunction(
          () => document.activeElement?.textContent === "App acme/web/site",
          undefined,
          {
            timeout: 10_000,
          },
        );
        for (let i = 0; i < 30 && (await focused()) !== "Suspend"; i++) await page.keyboard.press("Tab");
        expect(await focused()).toBe("Suspend");
        await page.keyboard.press("Enter");
        await page.locator("main").getByText("Workflow suspended.").waitFor();
        await page.getByRole("button", { name: "Resume" }).waitFor();
        expect((await m.call("GET", APP_PATH, { token: admin })).body.suspended).toBe(true);

        // Platform events page.
        await page.getByRole("link", { name: "Events" }).click();
        await page.getByRole("heading", { name: "Events", level: 1 }).waitFor();
        expect(await visibleText(page.locator("main table"))).toContain("QuotaExceeded");

        // Signing out forgets the token.
        await page.getByRole("button", { name: "Sign out" }).click();
        await page.getByLabel("API token").waitFor();
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 20_000);

    test("readOnly: everything visible, no mutating controls; the API refuses anyway", async () => {
      const readOnly = await m.token("readOnly");
      const { context, page, problems } = await openPage();
      try {
        await signIn(page, readOnly);
        await page.getByRole("heading", { name: "Clusters", level: 1 }).waitFor();
        await page.getByRole("link", { name: "Tenants" }).click();
        await page.getByRole("link", { name: "acme" }).waitFor();
        expect(await page.getByRole("button", { name: "Create tenant" }).count()).toBe(0);
        expect(await page.getByLabel("Tenant name").count()).toBe(0);
        await page.getByRole("link", { name: "acme" }).click();
        await page.locator('svg.chart[data-metric="pods"]').waitFor();
        await page.getByRole("link", { name: "site" }).click();
        await page.locator("#app-status .phase").waitFor();
        await page.getByRole("region", { name: "Revisions" }).locator("tbody tr").first().waitFor();
        expect(await page.getByRole("button", { name: /Roll back/ }).count()).toBe(0);
        expect(await page.getByRole("button", { name: /Suspend|Resume/ }).count()).toBe(0);
        await shot(page, "06-readonly-app");
        const refused = await m.call("POST", `${APP_PATH}/rollback`, {
          token: readOnly,
          body: { revision: 1 },
        });
        expect(refused.status).toBe(403);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 20_000);

    test("a refused or expired token sends the user back to sign-in with a clear message", async () => {
      const { context, page } = await openPage();
      try {
        await page.getByLabel("API token").fill("not-a-token");
        await page.getByRole("button", { name: "Sign in" }).click();
        const alert = page.getByRole("alert");
        await alert.waitFor();
        expect(await visibleText(alert)).toContain("refused the token");
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
        // A token that expires while the page is open: the next call answers 401 → sign-in again.
        await signIn(page, await m.token("ops", { ttlSeconds: 600 }));
        await page.getByRole("heading", { name: "Clusters", level: 1 }).waitFor();
        clockOffsetMs = 3_600_000;
        await page.getByRole("link", { name: "Tenants" }).click();
        await page.getByRole("alert").filter({ hasText: "Sign in again" }).waitFor();
        expect(await page.getByLabel("API token").isVisible()).toBe(true);
        await shot(page, "07-signed-out");
      } finally {
        clockOffsetMs = 0;
        await context.close();
      }
    }, 20_000);
  });
}
