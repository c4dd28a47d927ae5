/**
 * @module manager/ui/app — the KubeNova dashboard: a dependency-free single-page app over the public REST API.
 * Hash routes (`#/clusters`, `#/tenants/{t}`, `#/tenants/{t}/projects/{p}/apps/{a}`, `#/events`); what a role
 * may change is decided from `GET /api/v1/me` (the API refuses the rest anyway).
 */
import { ApiError, api, getToken, seg, setToken, setUnauthorizedHandler } from "./api.js";
import { usageFigure } from "./chart.js";
import { ago, badge, formatTime, h, replace } from "./dom.js";

const STATUS_POLL_MS = 2000;

/** @typedef {{ subject: string, role: string, tenant: string | null, project: string | null, expiresAt: string | null }} Me */

/** @type {Me | null} */
let me = null;
/** Cleanups of the current view (timers); run before the next view renders. @type {Array<() => void>} */
let cleanups = [];
/** Bumped per render so late responses of a previous view are dropped. */
let renderSeq = 0;

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const who = /** @type {HTMLElement} */ (document.getElementById("who"));
const announcer = /** @type {HTMLElement} */ (document.getElementById("announcer"));

// What each role may do, mirroring manager/http/authz.ts (the API enforces it; this only hides controls).
const can = {
  seePlatform: () => !!me && ["admin", "ops", "readOnly"].includes(me.role) && me.tenant === null,
  createTenant: () => me?.role === "admin",
  operateApps: () => !!me && ["admin", "ops", "tenantOwner", "projectDev"].includes(me.role),
  seeTenantUsage: () => !!me && ["admin", "ops", "tenantOwner", "readOnly"].includes(me.role),
};

/** Says something to screen readers. @param {string} text */
function announce(text) {
  announcer.textContent = text;
}

/** @param {unknown} error */
function errorText(error) {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  return String(error);
}

/** An inline error box (role=alert). @param {unknown} error */
function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, errorText(error));
}

/** @param {string} title @param {...any} children */
function section(title, ...children) {
  return h("section", { "aria-label": title }, h("h2", {}, title), ...children);
}

/** @param {string[]} headers @param {Array<Array<any>>} rows @param {string} caption */
function table(caption, headers, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((x) => h("th", { scope: "col" }, x)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.length === 0
        ? h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "None"))
        : rows.map((cells) =>
            h(
              "tr",
              {},
              cells.map((c) => h("td", {}, c)),
            ),
          ),
    ),
  );
}

/** @param {Record<string, unknown>} obj */
function keyValues(obj) {
  const entries = Object.entries(obj ?? {});
  if (entries.length === 0) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "kv" },
    entries.map(([k, v]) =>
      h("li", {}, h("span", { class: "k" }, k), " ", Array.isArray(v) ? v.join(", ") : String(v)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Sign-in

/** @param {string} [message] */
function renderSignIn(message) {
  me = null;
  replace(nav);
  replace(who);
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "A KubeNova access token (kubenova token, or POST /api/v1/tokens).",
    ),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = /** @type {HTMLInputElement} */ (input).value.trim();
    if (!token) return;
    setToken(token);
    void start();
  });
  replace(main, form);
  document.title = "Sign in · KubeNova";
  input.focus();
}

setUnauthorizedHandler((error) => {
  setToken(null);
  stopView();
  renderSignIn(`You are signed out: the Manager refused the token (${error.message}). Sign in again.`);
});

function signOut() {
  setToken(null);
  stopView();
  location.hash = "";
  renderSignIn();
  announce("Signed out");
}

function renderChrome() {
  if (!me) return;
  const links = [
    can.seePlatform() ? ["#/clusters", "Clusters"] : null,
    ["#/tenants", "Tenants"],
    can.seePlatform() ? ["#/events", "Events"] : null,
  ].filter((x) => x !== null);
  const current = location.hash.split("/")[1] ?? "";
  replace(
    nav,
    h(
      "ul",
      {},
      links.map(([href, label]) =>
        h(
          "li",
          {},
          h(
            "a",
            { href, "aria-current": href === `#/${current}` ? "page" : null },
            /** @type {string} */ (label),
          ),
        ),
      ),
    ),
  );
  const scope = [me.tenant, me.project].filter(Boolean).join("/");
  replace(
    who,
    h(
      "span",
      { class: "identity" },
      "Signed in as ",
      h("strong", {}, me.subject),
      ` (${me.role}${scope ? ` in ${scope}` : ""})`,
    ),
    h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Views

function stopView() {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  renderSeq++;
}

/** @param {string} title @param {HTMLElement} content */
function show(title, content) {
  replace(main, h("h1", { tabindex: "-1", id: "page-title" }, title), content);
  document.title = `${title} · KubeNova`;
}

/** Loads a view's data; renders an error in place if it fails. @param {() => Promise<void>} work */
async function guarded(work) {
  const seq = renderSeq;
  try {
    await work();
  } catch (error) {
    if (seq !== renderSeq) return;
    if (error instanceof ApiError && error.status === 401) return; // the handler shows the sign-in
    replace(main, h("h1", {}, "Something went wrong"), errorBox(error));
  }
}

async function viewClusters() {
  const page = await api("GET", "/clusters?limit=200");
  show(
    "Clusters",
    table(
      "Registered clusters",
      ["Name", "Datacenter", "State", "Last seen", "Versions", "Capabilities"],
      page.items.map((/** @type {any} */ c) => [
        h("strong", {}, c.displayName ?? c.name),
        c.datacenter,
        h(
          "span",
          {},
          badge(c.status),
          c.statusReason ? h("span", { class: "muted" }, ` ${c.statusReason}`) : null,
        ),
        ago(c.lastSeenAt),
        keyValues(c.versions),
        keyValues(c.capabilities),
      ]),
    ),
  );
}

async function viewTenants() {
  const page = await api("GET", "/tenants?limit=200");
  const list = table(
    "Tenants",
    ["Name", "Plan", "Clusters", "Owners", "Created"],
    page.items.map((/** @type {any} */ t) => [
      h("a", { href: `#/tenants/${seg(t.name)}` }, t.name),
      t.plan ?? "—",
      t.clusters.join(", "),
      t.owners.join(", ") || "—",
      formatTime(t.createdAt),
    ]),
  );
  const content = h("div", {}, list);
  if (can.createTenant()) content.append(await createTenantForm());
  show("Tenants", content);
}

async function createTenantForm() {
  const [clusters, plans] = await Promise.all([
    api("GET", "/clusters?limit=200"),
    api("GET", "/plans?limit=200"),
  ]);
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const name = h("input", {
    id: "tenant-name",
    name: "name",
    required: true,
    pattern: "[a-z0-9]([a-z0-9\\-]*[a-z0-9])?",
    maxlength: 30,
  });
  const clusterSelect = h(
    "select",
    {
      id: "tenant-clusters",
      name: "clusters",
      multiple: true,
      required: true,
      size: Math.min(5, Math.max(2, clusters.items.length)),
    },
    clusters.items.map((/** @type {any} */ c) =>
      h("option", { value: c.name }, `${c.name} (${c.datacenter})`),
    ),
  );
  const plan = h(
    "select",
    { id: "tenant-plan", name: "plan" },
    h("option", { value: "" }, "No plan"),
    plans.items.map((/** @type {any} */ p) => h("option", { value: p.name }, p.name)),
  );
  const owners = h("input", {
    id: "tenant-owners",
    name: "owners",
    placeholder: "alice@example.com, bob@example.com",
  });
  const submit = h("button", { type: "submit" }, "Create tenant");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-tenant-title" },
    h("h2", { id: "create-tenant-title" }, "Create a tenant"),
    h("div", { class: "field" }, h("label", { for: "tenant-name" }, "Tenant name"), name),
    h("div", { class: "field" }, h("label", { for: "tenant-clusters" }, "Clusters"), clusterSelect),
    h("div", { class: "field" }, h("label", { for: "tenant-plan" }, "Plan"), plan),
    h(
      "div",
      { class: "field" },
      h("label", { for: "tenant-owners" }, "Owners (comma-separated, optional)"),
      owners,
    ),
    submit,
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = /** @type {Record<string, unknown>} */ ({
      name: /** @type {HTMLInputElement} */ (name).value.trim(),
      clusters: [.../** @type {HTMLSelectElement} */ (clusterSelect).selectedOptions].map((o) => o.value),
    });
    const planName = /** @type {HTMLSelectElement} */ (plan).value;
    if (planName) body.plan = planName;
    const ownerList = /** @type {HTMLInputElement} */ (owners).value
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean);
    if (ownerList.length > 0) body.owners = ownerList;
    submit.setAttribute("disabled", "");
    void api("POST", "/tenants", body)
      .then(async (tenant) => {
        await viewTenants();
        const done = `Tenant ${tenant.name} created.`;
        main.querySelector(".form-status")?.replaceChildren(h("p", { class: "ok" }, done));
        announce(done);
      })
      .catch((error) => {
        submit.removeAttribute("disabled");
        replace(status, errorBox(error));
      });
  });
  return form;
}

/** @param {string} tenant */
async function viewTenant(tenant) {
  const seq = renderSeq;
  const [info, projects] = await Promise.all([
    api("GET", `/tenants/${seg(tenant)}`),
    api("GET", `/tenants/${seg(tenant)}/projects?limit=200`),
  ]);
  const appLists = await Promise.all(
    projects.items.map((/** @type {any} */ p) =>
      api("GET", `/tenants/${seg(tenant)}/projects/${seg(p.name)}/apps?limit=200`),
    ),
  );
  if (seq !== renderSeq) return;
  const usage = h("div", {});
  const content = h(
    "div",
    {},
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Plan"),
      h("dd", {}, info.plan ?? "—"),
      h("dt", {}, "Clusters"),
      h("dd", {}, info.clusters.join(", ")),
      h("dt", {}, "Owners"),
      h("dd", {}, info.owners.join(", ") || "—"),
    ),
    section(
      "Projects and apps",
      table(
        `Projects of ${tenant}`,
        ["Project", "Cluster", "Namespace", "Apps"],
        projects.items.map((/** @type {any} */ p, /** @type {number} */ i) => [
          p.name,
          p.cluster,
          h("code", {}, p.namespace),
          h(
            "ul",
            { class: "inline" },
            (appLists[i]?.items ?? []).map((/** @type {any} */ a) =>
              h(
                "li",
                {},
                h(
                  "a",
                  { href: `#/tenants/${seg(tenant)}/projects/${seg(p.name)}/apps/${seg(a.name)}` },
                  a.name,
                ),
                ` r${a.revision}`,
                a.suspended ? [" ", badge("suspended")] : null,
              ),
            ),
          ),
        ]),
      ),
    ),
    can.seeTenantUsage() ? section("Usage", usageControls(tenant, usage), usage) : null,
    section(
      "Recent events",
      await eventsTable(`/tenants/${seg(tenant)}/events?limit=20`, `Recent events of ${tenant}`),
    ),
  );
  show(`Tenant ${tenant}`, content);
}

const DAY_MS = 86_400_000;

/** @param {Date} d */
const isoDay = (d) => d.toISOString().slice(0, 10);

/** @param {string} tenant @param {HTMLElement} target */
function usageControls(tenant, target) {
  const today = new Date();
  const granularity = h(
    "select",
    { id: "usage-granularity" },
    h("option", { value: "day" }, "Day"),
    h("option", { value: "hour" }, "Hour"),
  );
  const from = h("input", {
    id: "usage-from",
    type: "date",
    value: isoDay(new Date(today.getTime() - 6 * DAY_MS)),
    required: true,
  });
  const to = h("input", { id: "usage-to", type: "date", value: isoDay(today), required: true });
  const form = h(
    "form",
    { class: "usage-controls", "aria-label": "Usage period" },
    h("div", { class: "field" }, h("label", { for: "usage-granularity" }, "Granularity"), granularity),
    h("div", { class: "field" }, h("label", { for: "usage-from" }, "From (UTC)"), from),
    h("div", { class: "field" }, h("label", { for: "usage-to" }, "To (UTC, inclusive)"), to),
    h("button", { type: "submit" }, "Show usage"),
  );
  const load = async () => {
    const fromValue = /** @type {HTMLInputElement} */ (from).value;
    const toValue = /** @type {HTMLInputElement} */ (to).value;
    const toExclusive = new Date(Date.parse(`${toValue}T00:00:00Z`) + DAY_MS).toISOString();
    const query = new URLSearchParams({
      granularity: /** @type {HTMLSelectElement} */ (granularity).value,
      from: `${fromValue}T00:00:00Z`,
      to: toExclusive,
    });
    replace(target, h("p", { class: "muted" }, "Loading usage…"));
    try {
      const report = await api("GET", `/tenants/${seg(tenant)}/usage?${query}`);
      replace(target, usageFigure(report));
    } catch (error) {
      replace(target, errorBox(error));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  void load();
  return form;
}

/** @param {string} path @param {string} caption */
async function eventsTable(path, caption) {
  const page = await api("GET", path);
  return table(
    caption,
    ["When", "Type", "Reason", "Message", "Cluster", "Tenant", "Object"],
    page.items.map((/** @type {any} */ e) => [
      ago(e.at),
      badge(e.type),
      e.reason,
      e.message,
      e.cluster ?? "—",
      e.tenant ?? "—",
      e.object ? [e.object.kind, e.object.namespace, e.object.name].filter(Boolean).join(" ") : "—",
    ]),
  );
}

async function viewEvents() {
  show("Events", await eventsTable("/events?limit=50", "Recent events across the platform"));
}

/** @param {string} tenant @param {string} project @param {string} name */
async function viewApp(tenant, project, name) {
  const base = `/tenants/${seg(tenant)}/projects/${seg(project)}/apps/${seg(name)}`;
  const seq = renderSeq;
  const statusBox = h("div", {
    id: "app-status",
    class: "card",
    "aria-live": "polite",
    "aria-atomic": "true",
  });
  const infoBox = h("div", {});
  const revisionsBox = h("div", {});
  const actionStatus = h("div", { class: "form-status", "aria-live": "polite", tabindex: "-1" });

  const renderStatus = (/** @type {any} */ status) => {
    const detail = status.report?.detail ?? {};
    const services = Array.isArray(detail.services) ? detail.services : [];
    replace(
      statusBox,
      h("h2", {}, "Live status"),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Phase"),
        h("dd", { class: "phase" }, badge(status.phase ?? "Unknown")),
        h("dt", {}, "KubeVela phase"),
        h("dd", {}, detail.velaPhase ?? "—"),
        h("dt", {}, "Services"),
        h(
          "dd",
          {},
          services.length === 0
            ? "—"
            : h(
                "ul",
                { class: "inline" },
                services.map((/** @type {any} */ sv) =>
                  h(
                    "li",
                    {},
                    `${sv.name} `,
                    badge(sv.healthy ? "healthy" : "unhealthy"),
                    sv.message ? ` ${sv.message}` : "",
                  ),
                ),
              ),
        ),
        h("dt", {}, "Observed revision"),
        h("dd", {}, status.observedRevision ?? "—"),
        h("dt", {}, "Message"),
        h("dd", {}, status.report?.message ?? "—"),
        h("dt", {}, "Reported"),
        h("dd", {}, ago(status.updatedAt)),
      ),
    );
  };

  const refreshStatus = async () => {
    try {
      const status = await api("GET", `${base}/status`);
      if (seq === renderSeq) renderStatus(status);
    } catch (error) {
      if (seq === renderSeq && !(error instanceof ApiError && error.status === 401))
        replace(statusBox, errorBox(error));
    }
  };

  /** @param {string} label @param {() => Promise<string>} action */
  const act = async (label, action) => {
    replace(actionStatus, h("p", { class: "muted" }, `${label}…`));
    try {
      const done = await action();
      await refreshAll();
      replace(actionStatus, h("p", { class: "ok" }, done));
      announce(done);
    } catch (error) {
      replace(actionStatus, errorBox(error));
    }
    // The pressed button may be gone (the table is redrawn): keep keyboard users next to the outcome.
    actionStatus.focus();
  };

  const refreshAll = async () => {
    const [app, revisions] = await Promise.all([api("GET", base), api("GET", `${base}/revisions?limit=50`)]);
    if (seq !== renderSeq) return;
    const operate = can.operateApps();
    replace(
      infoBox,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Cluster"),
        h("dd", {}, app.cluster),
        h("dt", {}, "Namespace"),
        h("dd", {}, h("code", {}, app.namespace)),
        h("dt", {}, "Latest revision"),
        h("dd", {}, app.revision),
        h("dt", {}, "Deployed revision"),
        h("dd", {}, app.deployedRevision ?? "—"),
        h("dt", {}, "Workflow"),
        h("dd", {}, app.suspended ? badge("suspended") : "running"),
      ),
      operate
        ? h(
            "div",
            { class: "actions" },
            app.suspended
              ? h(
                  "button",
                  {
                    type: "button",
                    onclick: () =>
                      void act("Resuming", async () => {
                        await api("POST", `${base}/resume`);
                        return "Workflow resumed.";
                      }),
                  },
                  "Resume",
                )
              : h(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    onclick: () =>
                      void act("Suspending", async () => {
                        await api("POST", `${base}/suspend`);
                        return "Workflow suspended.";
                      }),
                  },
                  "Suspend",
                ),
          )
        : null,
    );
    replace(
      revisionsBox,
      table(
        `Revisions of ${name}, newest first`,
        ["Revision", "Created", "By", "Note", ...(operate ? ["Action"] : [])],
        revisions.items.map((/** @type {any} */ r) => [
          h(
            "span",
            {},
            `r${r.revision}`,
            r.revision === app.deployedRevision ? [" ", badge("deployed")] : null,
          ),
          formatTime(r.createdAt),
          r.createdBy,
          r.note ?? "—",
          ...(operate
            ? [
                r.revision === app.revision
                  ? h("span", { class: "muted" }, "latest")
                  : h(
                      "button",
                      {
                        type: "button",
                        onclick: () =>
                          void act(`Rolling back to revision ${r.revision}`, async () => {
                            const updated = await api("POST", `${base}/rollback`, { revision: r.revision });
                            return `Rolled back to revision ${r.revision}: revision ${updated.revision} is deployed.`;
                          }),
                      },
                      `Roll back to revision ${r.revision}`,
                    ),
              ]
            : []),
        ]),
      ),
    );
  };

  await Promise.all([refreshAll(), refreshStatus()]);
  if (seq !== renderSeq) return;
  const timer = setInterval(() => void refreshStatus(), STATUS_POLL_MS);
  cleanups.push(() => clearInterval(timer));
  show(
    `App ${tenant}/${project}/${name}`,
    h(
      "div",
      {},
      h("p", {}, h("a", { href: `#/tenants/${seg(tenant)}` }, `← Tenant ${tenant}`)),
      statusBox,
      section("App", infoBox, actionStatus),
      section("Revisions", revisionsBox),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Routing

async function route() {
  stopView();
  if (!me) return;
  renderChrome();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [first, tenant, sub, project, sub2, app] = parts;
  replace(main, h("p", { class: "muted", role: "status" }, "Loading…"));
  await guarded(async () => {
    if (first === "clusters" && can.seePlatform()) return viewClusters();
    if (first === "events" && can.seePlatform()) return viewEvents();
    if (first === "tenants" && tenant && sub === "projects" && project && sub2 === "apps" && app)
      return viewApp(tenant, project, app);
    if (first === "tenants" && tenant) return viewTenant(tenant);
    if (first === "tenants") return viewTenants();
    location.hash = can.seePlatform()
      ? "#/clusters"
      : me?.tenant
        ? `#/tenants/${seg(me.tenant)}`
        : "#/tenants";
  });
  const title = document.getElementById("page-title");
  if (title && document.activeElement === document.body) title.focus();
}

async function start() {
  if (!getToken()) {
    renderSignIn();
    return;
  }
  try {
    me = await api("GET", "/me");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      setToken(null);
      renderSignIn(`Sign-in failed: ${errorText(error)}`);
    }
    return;
  }
  announce(`Signed in as ${me?.subject}`);
  await route();
}

window.addEventListener("hashchange", () => void route());
void start();
