/**
 * @module manager/ui/dom — a tiny element builder for the dashboard. Text is always set as text (never parsed
 * as HTML), so nothing the API returns can inject markup.
 */

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Attrs
 */

/** @param {Element} el @param {Attrs} attrs */
function applyAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.replace(/^on/, ""), value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
}

/** @param {Element} el @param {Child[]} children */
function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * An HTML element: `h("button", { type: "button", onclick }, "Save")`.
 * @param {string} tag @param {Attrs} [attrs] @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, /** @type {Child[]} */ (children));
  return el;
}

/**
 * An SVG element.
 * @param {string} tag @param {Attrs} [attrs] @param {...(Child | Child[])} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  applyAttrs(el, attrs);
  append(el, /** @type {Child[]} */ (children));
  return el;
}

/** Replaces an element's children. @param {Element} el @param {...(Child | Child[])} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, /** @type {Child[]} */ (children));
}

/** @param {string | null | undefined} iso */
export function formatTime(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

/** "3 min ago" style age, with the exact time as the tooltip. @param {string | null | undefined} iso */
export function ago(iso) {
  if (!iso) return h("span", {}, "never");
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const text =
    seconds < 60
      ? `${seconds} s ago`
      : seconds < 3600
        ? `${Math.round(seconds / 60)} min ago`
        : seconds < 86400
          ? `${Math.round(seconds / 3600)} h ago`
          : `${Math.round(seconds / 86400)} d ago`;
  return h("time", { datetime: iso, title: formatTime(iso) }, text);
}

const NUMBER = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

/** @param {number} n */
export function formatNumber(n) {
  return NUMBER.format(n);
}

/**
 * A status badge; `tone` picks the colour class, the text always says the state (colour is never the only cue).
 * @param {string} text
 */
export function badge(text) {
  const tone =
    {
      connected: "ok",
      Deployed: "ok",
      deployed: "ok",
      running: "ok",
      healthy: "ok",
      Applying: "busy",
      Pending: "busy",
      bootstrapping: "busy",
      pending_bootstrap: "busy",
      stale: "warn",
      Drifted: "warn",
      suspended: "warn",
      Warning: "warn",
      offline: "bad",
      certificate_expired: "bad",
      error: "bad",
      Error: "bad",
      unhealthy: "bad",
    }[text] ?? "neutral";
  return h("span", { class: `badge badge-${tone}` }, text);
}
