/**
 * The OpenTelemetry SDK set-up for a process entry point (manager, operator): the only file importing the SDK.
 * Library code uses `@opentelemetry/api` (shared/tracing.ts) and stays a no-op until this registers a provider.
 * NOTES.md: under Bun, sdk-trace + exporter-trace-otlp-http + context-async-hooks work; BatchSpanProcessor takes
 * `{ exporter }`.
 */
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { tracingRegistered } from "./tracing.ts";

export interface Telemetry {
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

/**
 * Registers a global tracer provider: OTLP/HTTP to `otlpEndpoint` (batched), and/or an `exporter` given by a test
 * (exported synchronously). With neither, nothing is registered and tracing stays off.
 */
export function setupTelemetry(options: {
  serviceName: string;
  otlpEndpoint?: string | null;
  exporter?: SpanExporter;
}): Telemetry | null {
  const processors: SpanProcessor[] = [];
  if (options.otlpEndpoint) {
    const url = `${options.otlpEndpoint.replace(/\/+$/, "")}/v1/traces`;
    processors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) }));
  }
  if (options.exporter) processors.push(new SimpleSpanProcessor({ exporter: options.exporter }));
  if (processors.length === 0) return null;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const provider = new TracerProvider({ spanProcessors: processors });
  trace.setGlobalTracerProvider(provider);
  tracingRegistered();
  return {
    shutdown: () => provider.shutdown(),
    forceFlush: () => provider.forceFlush(),
  };
}
