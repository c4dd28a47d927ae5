import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type RenderContext, renderChart, renderTemplate } from "./render.ts";

const ctx: RenderContext = {
  values: {
    name: "demo",
    enabled: true,
    off: false,
    empty: "",
    list: [{ port: 53 }],
    map: { a: "yes" },
    n: 3,
  },
  release: { name: "rel", namespace: "ns" },
  chart: { name: "c", version: "0.1.0", appVersion: "0.1.0" },
};
const render = (source: string) => renderTemplate("t.yaml", source, ctx);

describe("the thin template renderer", () => {
  test.each([
    ["{{ .Values.name }}", "demo"],
    ["{{ .Values.name | quote }}", '"demo"'],
    ["{{ quote .Values.n }}", '"3"'],
    ["{{ .Release.Namespace }}/{{ .Release.Name }}/{{ .Release.Service }}", "ns/rel/Helm"],
    ["{{ .Chart.Name }}-{{ .Chart.Version }}", "c-0.1.0"],
    ["a:{{- toYaml .Values.map | nindent 2 }}", 'a:\n  a: "yes"'],
    ["l:{{- toYaml .Values.list | nindent 2 }}", "l:\n  - port: 53"],
    ["x\n{{- if .Values.enabled }}\ny\n{{- end }}\n", "x\ny\n"],
    ["x\n{{- if .Values.off }}\ny\n{{- else }}\nz\n{{- end }}\n", "x\nz\n"],
    ["{{ if .Values.empty }}set{{ else }}unset{{ end }}", "unset"],
    ["{{ if not .Values.empty }}unset{{ end }}", "unset"],
    ["{{ if .Values.list }}items{{ end }}", "items"],
    ["a {{- /* a comment */ -}} b", "ab"],
  ])("%j renders %j", (source, expected) => {
    expect(render(source)).toBe(expected);
  });

  test.each([
    ['{{ include "x" . }}', /unsupported action/],
    ["{{ range .Values.list }}x{{ end }}", /unsupported action/],
    ["{{ with .Values.map }}x{{ end }}", /unsupported action/],
    ["{{ $x := 1 }}", /unsupported action/],
    ['{{ .Values.name | default "x" }}', /unsupported pipeline/],
    ["{{ .Values.name | upper }}", /unsupported function upper/],
    ["{{ tpl .Values.name . }}", /unsupported action/],
    ["{{ .Values.missing }}", /\.Values\.missing is not set: declare it in values\.yaml/],
    ["{{ .Values.map.missing }}", /\.Values\.map\.missing is not set/],
    ["{{ .Values.map }}", /use toYaml/],
    ["{{ .Capabilities.KubeVersion }}", /unsupported reference/],
    ["{{ if .Values.enabled }}x", /has no \{\{ end \}\}/],
    ["x{{ end }}", /unexpected \{\{ end \}\}/],
    ["{{ if .Values.off }}a{{ else if .Values.enabled }}b{{ end }}", /unsupported action/],
  ])("%j throws", (source, message) => {
    expect(() => render(source)).toThrow(message);
  });

  test("a chart with a helpers file or a template outside the subset fails to render", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "chart-"));
    writeFileSync(path.join(dir, "Chart.yaml"), "apiVersion: v2\nname: t\nversion: 0.1.0\nappVersion: '1'\n");
    writeFileSync(path.join(dir, "values.yaml"), "name: x\n");
    writeFileSync(path.join(dir, "values.schema.json"), '{"type":"object"}');
    const templates = path.join(dir, "templates");
    mkdirSync(templates);
    writeFileSync(path.join(templates, "_helpers.tpl"), '{{ define "x" }}{{ end }}');
    expect(() => renderChart(dir, { release: { name: "r", namespace: "n" } })).toThrow(/no helpers/);
    rmSync(path.join(templates, "_helpers.tpl"));
    writeFileSync(path.join(templates, "cm.yaml"), "kind: ConfigMap\nname: {{ .Values.name | lower }}\n");
    expect(() => renderChart(dir, { release: { name: "r", namespace: "n" } })).toThrow(
      /unsupported function lower/,
    );
  });
});
