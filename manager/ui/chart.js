/**
 * @module manager/ui/chart — usage bar charts drawn as SVG by hand (no chart library, no CDN), each with a text
 * alternative: the SVG has a title and a description, and the same numbers are in a table.
 */
import { formatNumber, h, s } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { top: 16, right: 16, bottom: 44, left: 72 };
const MAX_X_LABELS = 8;

let nextId = 0;

/** The smallest 1/2/5 × 10^k at or above `value` (a readable axis maximum). @param {number} value */
export function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

/** @param {string} iso @param {string} granularity */
export function bucketLabel(iso, granularity) {
  const date = iso.slice(0, 10);
  if (granularity === "hour") return `${date.slice(5)} ${iso.slice(11, 13)}:00`;
  if (granularity === "month") return date.slice(0, 7);
  return date.slice(5);
}

/**
 * @typedef {{ start: string, end: string, records: number, metrics: Record<string, number> }} Bucket
 * @typedef {{ key: string, label: string, unit: string }} Metric
 */

/**
 * One bar chart of one metric over the buckets.
 * @param {{ buckets: Bucket[], granularity: string, metric: Metric }} options
 * @returns {SVGElement}
 */
export function barChart({ buckets, granularity, metric }) {
  const id = `chart-${++nextId}`;
  const values = buckets.map((b) => b.metrics[metric.key] ?? 0);
  const max = niceCeiling(Math.max(0, ...values));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const band = plotWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(1, band * 0.7);
  const y = (/** @type {number} */ v) => MARGIN.top + plotHeight - (v / max) * plotHeight;
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);

  const ticks = [0, max / 2, max].map((tick) =>
    s(
      "g",
      { class: "tick" },
      s("line", { x1: MARGIN.left - 4, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick), class: "grid" }),
      s("text", { x: MARGIN.left - 8, y: y(tick) + 4, "text-anchor": "end" }, formatNumber(tick)),
    ),
  );
  const every = Math.ceil(buckets.length / MAX_X_LABELS);
  const bars = buckets.map((bucket, i) => {
    const value = values[i] ?? 0;
    const x = MARGIN.left + i * band + (band - barWidth) / 2;
    const label = bucketLabel(bucket.start, granularity);
    return s(
      "g",
      {},
      s(
        "rect",
        {
          class: "bar",
          x,
          y: y(value),
          width: barWidth,
          height: Math.max(0, MARGIN.top + plotHeight - y(value)),
          "data-value": value,
        },
        s("title", {}, `${label}: ${formatNumber(value)} ${metric.unit}`),
      ),
      i % every === 0
        ? s(
            "text",
            {
              class: "x-label",
              x: x + barWidth / 2,
              y: HEIGHT - MARGIN.bottom + 16,
              "text-anchor": "middle",
            },
            label,
          )
        : null,
    );
  });

  return s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      "data-metric": metric.key,
    },
    s("title", { id: `${id}-title` }, `${metric.label} per ${granularity}`),
    s(
      "desc",
      { id: `${id}-desc` },
      `${buckets.length} ${granularity} buckets; total ${formatNumber(total)} ${metric.unit}, peak ${formatNumber(peak)}.`,
    ),
    ticks,
    s("line", {
      class: "axis",
      x1: MARGIN.left,
      x2: WIDTH - MARGIN.right,
      y1: MARGIN.top + plotHeight,
      y2: MARGIN.top + plotHeight,
    }),
    s("line", {
      class: "axis",
      x1: MARGIN.left,
      x2: MARGIN.left,
      y1: MARGIN.top,
      y2: MARGIN.top + plotHeight,
    }),
    bars,
    s(
      "text",
      { class: "axis-title", x: MARGIN.left + plotWidth / 2, y: HEIGHT - 6, "text-anchor": "middle" },
      `${granularity === "hour" ? "Hour" : granularity === "month" ? "Month" : "Day"} (UTC)`,
    ),
    s(
      "text",
      {
        class: "axis-title",
        x: 14,
        y: MARGIN.top + plotHeight / 2,
        "text-anchor": "middle",
        transform: `rotate(-90 14 ${MARGIN.top + plotHeight / 2})`,
      },
      metric.unit,
    ),
  );
}

export const USAGE_METRICS = /** @type {Metric[]} */ ([
  { key: "cpuRequestMillicores", label: "CPU requests", unit: "millicore-hours" },
  { key: "pods", label: "Pods", unit: "pod-hours" },
]);

/**
 * The usage section's body for one report: a summary sentence, one chart per metric and the data as a table.
 * @param {{ buckets: Bucket[], granularity: string, totals: Record<string, number>, from: string, to: string }} report
 */
export function usageFigure(report) {
  const { buckets, granularity, totals } = report;
  const lastDay = new Date(Date.parse(report.to) - 1).toISOString().slice(0, 10);
  const summary = `Total from ${report.from.slice(0, 10)} to ${lastDay}: ${USAGE_METRICS.map((m) =>
    `${formatNumber(totals[m.key] ?? 0)} ${m.unit} ${m.key === "pods" ? "" : "of CPU"}`.trim(),
  ).join(", ")} in ${buckets.length} ${granularity} buckets.`;
  if (buckets.length === 0) {
    return h(
      "div",
      { class: "usage" },
      h("p", { class: "usage-summary" }, "No usage reported in this period."),
    );
  }
  return h(
    "div",
    { class: "usage" },
    h("p", { class: "usage-summary" }, summary),
    h(
      "div",
      { class: "charts" },
      USAGE_METRICS.map((metric) =>
        h(
          "figure",
          {},
          barChart({ buckets, granularity, metric }),
          h("figcaption", {}, `${metric.label} (${metric.unit})`),
        ),
      ),
    ),
    h(
      "details",
      {},
      h("summary", {}, "Usage as a table"),
      h(
        "table",
        { class: "usage-table" },
        h("caption", {}, `Usage per ${granularity} (UTC)`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Start"),
            USAGE_METRICS.map((m) => h("th", { scope: "col" }, `${m.label} (${m.unit})`)),
          ),
        ),
        h(
          "tbody",
          {},
          buckets.map((b) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, bucketLabel(b.start, granularity)),
              USAGE_METRICS.map((m) => h("td", {}, formatNumber(b.metrics[m.key] ?? 0))),
            ),
          ),
        ),
        h(
          "tfoot",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "row" }, "Total"),
            USAGE_METRICS.map((m) => h("td", {}, formatNumber(totals[m.key] ?? 0))),
          ),
        ),
      ),
    ),
  );
}
