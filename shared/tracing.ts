/**
 * @module shared/tracing — OpenTelemetry through `@opentelemetry/api` only (DESIGN.md §8). A W3C `traceparent`
 * rides in the MQTT envelope, in the change log and on the objects the operator writes, so one trace runs from an
 * API call through the operator's apply and back to the status report. Without an SDK registered (the default),
 * every call here is a cheap no-op.
 */
import {
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from "@opentelemetry/api";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export const tracer = () => trace.getTracer("kubenova");

/**
 * Whether an SDK registered a tracer provider (shared/telemetry-sdk.ts says so). Until then a span with no remote
 * parent is the API's no-op span, handed out without starting one: a request's span otherwise cost a few µs of
 * the API's hot path for nothing.
 */
let providerRegistered = false;
const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export function tracingRegistered(): void {
  providerRegistered = true;
}

/** Whether spans are recorded: a hot path with no remote parent can skip building a span's name and options. */
export function tracingEnabled(): boolean {
  return providerRegistered;
}

/** The `traceparent` of a span (default: the active one); undefined when nothing is being traced. */
export function traceparentOf(span: Span | undefined = trace.getActiveSpan()): string | undefined {
  const ctx = span?.spanContext();
  if (!ctx || !trace.isSpanContextValid(ctx)) return undefined;
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, "0")}`;
}

/** A context whose parent is the remote span a `traceparent` names (the active context when there is none). */
export function contextFrom(traceparent: string | undefined): Context {
  const match = traceparent?.match(TRACEPARENT);
  if (!match) return context.active();
  return trace.setSpanContext(context.active(), {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
  });
}

/** Runs `fn` in a span (child of `parent` when given), recording failures; the span ends with `fn`. */
export async function inSpan<T>(
  name: string,
  options: {
    parent?: string | undefined;
    kind?: SpanKind;
    attributes?: Record<string, string | number | boolean>;
  },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  // A remote parent still flows through the no-op tracer (its traceparent is passed on), so only the rest is cut.
  if (!providerRegistered && !options.parent) return fn(NO_SPAN);
  const parent = options.parent ? contextFrom(options.parent) : context.active();
  return tracer().startActiveSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    },
    parent,
    async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** A span that only marks a moment (e.g. a report committed), child of `parent`. */
export function markSpan(
  name: string,
  parent: string | undefined,
  attributes: Record<string, string | number> = {},
): void {
  if (!parent) return;
  tracer().startSpan(name, { attributes }, contextFrom(parent)).end();
}

export { SpanKind };
