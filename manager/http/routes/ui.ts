/**
 * The dashboard at `/ui`: a static single-page app (manager/ui) that talks to the public API with the user's
 * token. The files are embedded as text so the single binary serves them; the routes are public because the
 * page holds no data, and they stay out of the OpenAPI document.
 */
import apiJs from "../../ui/api.js" with { type: "text" };
import appJs from "../../ui/app.js" with { type: "text" };
import chartJs from "../../ui/chart.js" with { type: "text" };
import domJs from "../../ui/dom.js" with { type: "text" };
import indexHtml from "../../ui/index.html" with { type: "text" };
import stylesCss from "../../ui/styles.css" with { type: "text" };
import { KubeNovaError } from "../../../shared/errors.ts";
import type { ManagerApp } from "../context.ts";

/** Only the Manager's own origin; no inline script or style, no framing. */
export const DASHBOARD_CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const JS = "application/javascript; charset=utf-8";
const ASSETS: Record<string, { body: string; type: string }> = {
  "app.js": { body: appJs, type: JS },
  "api.js": { body: apiJs, type: JS },
  "chart.js": { body: chartJs, type: JS },
  "dom.js": { body: domJs, type: JS },
  "styles.css": { body: stylesCss, type: "text/css; charset=utf-8" },
};

export function registerUiRoutes(app: ManagerApp): void {
  app.get("/ui", (c) => {
    c.header("Content-Type", "text/html; charset=utf-8");
    c.header("Content-Security-Policy", DASHBOARD_CSP);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("Cache-Control", "no-cache");
    return c.body(indexHtml);
  });
  app.get("/ui/:file", (c) => {
    const file = c.req.param("file");
    const asset = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!asset) throw new KubeNovaError("KN-404", `no dashboard file ${file}`);
    c.header("Content-Type", asset.type);
    c.header("X-Content-Type-Options", "nosniff");
    // Revalidated on every load: a Manager upgrade must not leave a stale script next to a new API.
    c.header("Cache-Control", "no-cache");
    return c.body(asset.body);
  });
}
