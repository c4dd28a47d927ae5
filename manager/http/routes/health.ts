/** `/healthz` (the process answers) and `/readyz` (the store is reachable and fully migrated). */
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { isKubeNovaError } from "../../../shared/errors.ts";
import type { AppServices, ManagerApp } from "../context.ts";
import { json } from "./shared.ts";

const Health = z.object({ status: z.literal("ok"), version: z.string() }).meta({ id: "Health" });
const Readiness = z
  .object({
    status: z.enum(["ready", "not_ready"]),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), message: z.string().optional() })),
  })
  .meta({ id: "Readiness" });

export function registerHealthRoutes(app: ManagerApp, services: AppServices): void {
  app.openapi(
    createRoute({
      operationId: "metrics",
      method: "get",
      path: "/metrics",
      tags: ["health"],
      summary: "Prometheus metrics (text exposition format)",
      responses: {
        200: { description: "Metrics", content: { "text/plain": { schema: z.string() } } },
        404: {
          description: "Metrics are not enabled in this process",
          content: { "text/plain": { schema: z.string() } },
        },
      },
    }),
    async (c) => {
      if (!services.metrics) return c.text("metrics are not enabled", 404);
      c.header("Content-Type", services.metrics.contentType);
      return c.text(await services.metrics.render(), 200);
    },
  );

  app.openapi(
    createRoute({
      operationId: "healthz",
      method: "get",
      path: "/healthz",
      tags: ["health"],
      summary: "Liveness: the process serves requests",
      responses: { 200: json(Health, "Alive") },
    }),
    (c) => c.json({ status: "ok" as const, version: services.options.version }, 200),
  );

  app.openapi(
    createRoute({
      operationId: "readyz",
      method: "get",
      path: "/readyz",
      tags: ["health"],
      summary: "Readiness: the store answers and every migration is applied",
      responses: { 200: json(Readiness, "Ready"), 503: json(Readiness, "Not ready") },
    }),
    async (c) => {
      const checks: Record<string, { ok: boolean; message?: string }> = {};
      try {
        await services.store.ping();
        checks.store = { ok: true };
        const status = await services.store.migrationStatus();
        checks.migrations =
          status.current === status.latest
            ? { ok: true }
            : { ok: false, message: `schema at ${status.current}, expected ${status.latest}` };
      } catch (error) {
        const message = isKubeNovaError(error) ? error.message : "store unreachable";
        checks.store = { ok: false, message };
        c.get("logger").warn("readiness check failed", { err: error as Error });
      }
      const ready = Object.values(checks).every((check) => check.ok);
      return ready
        ? c.json({ status: "ready" as const, checks }, 200)
        : c.json({ status: "not_ready" as const, checks }, 503);
    },
  );
}
