/**
 * `/openapi.json` (OpenAPI 3.1) and `/docs`, an API reference page whose script the Manager serves itself, so
 * it works offline and from the single binary (NOTES.md: the reference packages default to a CDN).
 */
import { Scalar } from "@scalar/hono-api-reference";
import type { AppServices, ManagerApp } from "../context.ts";

const SCRIPT_PATH = "/docs/scalar.js";
let scalarScript: Promise<string> | null = null;

function loadScalarScript(): Promise<string> {
  // Loaded on first use: 4 MB that most processes never need. The static path keeps it in `bun build --compile`.
  // @ts-expect-error: a text import of a plain script has no type declarations.
  scalarScript ??= import("../../../node_modules/@scalar/api-reference/dist/browser/standalone.js", {
    with: { type: "text" },
  }).then((module: { default: string }) => module.default);
  return scalarScript;
}

export function openApiInfo(version: string) {
  return {
    openapi: "3.1.0",
    info: {
      title: "KubeNova API",
      version,
      description:
        "Federated multi-datacenter CaaS/PaaS control plane. Every error is `{ error: { code, message, requestId, details? } }`.",
    },
    servers: [{ url: "/" }],
  };
}

export function registerDocsRoutes(app: ManagerApp, services: AppServices): void {
  app.get("/openapi.json", (c) => c.json(app.getOpenAPI31Document(openApiInfo(services.options.version))));
  app.get(SCRIPT_PATH, async (c) => {
    c.header("Content-Type", "application/javascript; charset=utf-8");
    c.header("Cache-Control", "public, max-age=86400");
    return c.body(await loadScalarScript());
  });
  app.get("/docs", Scalar({ url: "/openapi.json", cdn: SCRIPT_PATH, pageTitle: "KubeNova API" }));
}
