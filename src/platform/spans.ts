// Spans the platform adds to what @microlabs/otel-cf-workers records (see tracing.ts): a span per store round trip
// carrying its tier, tenant and request id, queue sends, and job attempts joined to the trace of the request that
// enqueued them through a W3C traceparent in the message. Only @opentelemetry/api is used here: with no tracer
// provider registered (tracing off, or a Node script) every call is a no-op.
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  type Link,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

export { SpanKind };

const tracer = () => trace.getTracer("edge-data-platform");
const requestIdKey = createContextKey("edp.request_id");

/** Runs `fn` with the request id in the active context, so every span below it carries it. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  trace.getActiveSpan()?.setAttribute("edp.request_id", requestId);
  return context.with(context.active().setValue(requestIdKey, requestId), fn);
}

/** Sets attributes on the active span (the request's, a job's), e.g. the tenant once it is known. */
export function annotateSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/**
 * A child span around `fn`: ended when it settles, marked as an error when it throws. `parent` places it
 * under another trace's span (a job under the request that enqueued it); `links` point at related spans.
 */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
  options: { kind?: SpanKind; parent?: Context; links?: Link[] } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  const requestId = context.active().getValue(requestIdKey);
  const attrs = typeof requestId === "string" ? { "edp.request_id": requestId, ...attributes } : attributes;
  let span: Span;
  try {
    span = tracer().startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: attrs }, parent);
  } catch {
    // The tracing library's provider is isolate-wide, but it can only start spans inside an invocation it
    // instrumented (it keeps its configuration in the context): elsewhere (a Durable Object, an untraced
    // invocation in the same isolate) the work runs without a span.
    return fn();
  }
  // Links are added after the start: the library's tracer does not pass start-time links on.
  if (options.links?.length) span.addLinks(options.links);
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn();
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The active span's W3C traceparent, for a message that continues this trace elsewhere (a queued job). */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * The active context with the span a traceparent names (the enqueuing request's) as the parent. Extracted into
 * the active context, not the root one: the tracing library keeps its configuration there.
 */
export function contextOf(traceparent: string): Context {
  return propagation.extract(context.active(), { traceparent });
}

/** The span a link to the active span would name (the queue batch a job attempt ran in). */
export function linkToActive(): Link[] {
  const active = trace.getActiveSpan();
  return active ? [{ context: active.spanContext() }] : [];
}
