// OpenTelemetry traces. @microlabs/otel-cf-workers instruments the Worker's handlers (a span per request, queue
// batch and cron run; every outgoing fetch, which is every Neon and Upstash round trip, as a child span) and gives
// the isolate a context manager. This module turns it on per environment, adds R2 spans (the library has no R2
// instrumentation) and exports through an exporter bounded in time whose drops are counted; spans.ts adds the
// platform's own spans. With OTEL_EXPORTER_URL unset nothing is instrumented and those spans are no-ops.
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { __unwrappedFetch, BatchTraceSpanProcessor, instrument, type ResolveConfigFn } from "@microlabs/otel-cf-workers";
import type { Env } from "./env";
import { withSpan } from "./spans";

/** Per isolate: spans exported and spans dropped (endpoint down, hung or refusing). */
const counters = { sent: 0, dropped: 0 };
export const traceCounters = () => ({ ...counters });

/**
 * OTLP/HTTP JSON exporter with a deadline. The library's exporter waits on a hung endpoint for as long as the
 * runtime lets waitUntil run; this one gives up after TELEMETRY_TIMEOUT_MS and counts the spans it dropped.
 */
class BoundedOtlpExporter implements SpanExporter {
  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly timeoutMs: number,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const body = new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans));
    __unwrappedFetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/json", ...this.headers },
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
    })
      .then(async (response) => {
        await response.body?.cancel();
        if (!response.ok) throw new Error(`OTLP endpoint answered ${response.status}`);
        counters.sent += spans.length;
        done({ code: ExportResultCode.SUCCESS });
      })
      .catch(() => {
        // Counted here and reported by /health. The library is told the export is done: it would only log a line per
        // failed batch, and a line per request while the collector is down is the kind of cost this must not add.
        counters.dropped += spans.length;
        done({ code: ExportResultCode.SUCCESS });
      });
  }

  async shutdown(): Promise<void> {}
}

/** `key=value,key2=value2` (OTEL_EXPORTER_OTLP_HEADERS), values URL-decoded. */
export function parseOtlpHeaders(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? "").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}

/**
 * The library's processor keeps one state object per trace id for the isolate's life; a long-lived isolate would
 * grow without bound. Once a trace's spans are flushed at the end of an invocation, its state is dropped (a span of
 * that trace started later, such as a job attempt in another invocation, starts a fresh state).
 */
class PrunedTraceSpanProcessor extends BatchTraceSpanProcessor {
  override async forceFlush(traceId?: string): Promise<void> {
    await super.forceFlush(traceId);
    const traces = (this as unknown as { traces: Record<string, { unexportedSpans: unknown[]; inprogressSpans: Set<string> }> }).traces;
    for (const [id, state] of Object.entries(traces)) {
      if ((traceId === undefined || id === traceId) && state.inprogressSpans.size === 0 && state.unexportedSpans.length === 0) delete traces[id];
    }
  }
}

const processors = new Map<string, PrunedTraceSpanProcessor>();

const traceConfig =
  (parse: (raw: unknown) => Env): ResolveConfigFn =>
  (rawEnv) => {
    const env = parse(rawEnv);
    const key = `${env.OTEL_EXPORTER_URL}|${env.OTEL_EXPORTER_HEADERS ?? ""}|${env.TELEMETRY_TIMEOUT_MS}`;
    let processor = processors.get(key);
    if (!processor) {
      processor = new PrunedTraceSpanProcessor(new BoundedOtlpExporter(env.OTEL_EXPORTER_URL!, parseOtlpHeaders(env.OTEL_EXPORTER_HEADERS), env.TELEMETRY_TIMEOUT_MS));
      processors.set(key, processor);
    }
    return {
      spanProcessors: processor,
      service: { name: "edge-data-platform" },
      // Head sampling by ratio; the library's default tail sampler keeps every trace whose root span failed.
      sampling: { headSampler: { ratio: env.OTEL_SAMPLE_RATIO, acceptRemote: false } },
      // Stores and providers need no trace context from us; it would only tell third parties our ids.
      fetch: { includeTraceContext: false },
      handlers: { fetch: { acceptTraceContext: false } },
    };
  };

const bucketMethods = new Set(["get", "put", "head", "delete", "list"]);

/** R2 has no instrumentation in the library: each bucket call becomes a content-tier span naming its key. */
function tracedBucket(bucket: object): object {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      if (typeof prop !== "string" || !bucketMethods.has(prop)) return value.bind(target);
      return (...args: unknown[]) =>
        withSpan(`content ${prop}`, { "edp.tier": "content", ...(typeof args[0] === "string" ? { "edp.r2.key": args[0] } : {}) }, () =>
          Promise.resolve(value.apply(target, args)),
        );
    },
  });
}

/** The environment a traced invocation sees: the same bindings, the bucket wrapped; one per raw env (parseEnv caches by it). */
const tracedEnvs = new WeakMap<object, object>();
function tracedEnv(env: object): object {
  let wrapped = tracedEnvs.get(env);
  if (!wrapped) {
    const bucket = (env as { CONTENT_BUCKET?: unknown }).CONTENT_BUCKET;
    wrapped = typeof bucket === "object" && bucket !== null ? { ...env, CONTENT_BUCKET: tracedBucket(bucket) } : env;
    tracedEnvs.set(env, wrapped);
  }
  return wrapped;
}

interface Handler {
  fetch(request: Request, env: object, ctx?: ExecutionContext): Response | Promise<Response>;
  queue(batch: MessageBatch<unknown>, env: object, ctx?: ExecutionContext): Promise<void>;
  scheduled(controller: ScheduledController, env: object, ctx?: ExecutionContext): Promise<void>;
}

/**
 * The handler, traced when its environment names an OTLP endpoint and untouched otherwise (the check is per
 * invocation, so one bundle serves both; a call without an ExecutionContext, which only tests make, is never
 * traced). The library's initialisation is once per isolate.
 */
export function traced<H extends Handler>(handler: H, parse: (raw: unknown) => Env): H {
  type Instrumented = Required<Pick<ExportedHandler<object>, "fetch" | "queue" | "scheduled">>;
  const instrumented = instrument({ ...handler } as unknown as Instrumented, traceConfig(parse)) as Instrumented;
  const on = (env: unknown, ctx: ExecutionContext | undefined): ctx is ExecutionContext =>
    ctx !== undefined && Boolean((env as { OTEL_EXPORTER_URL?: unknown } | null)?.OTEL_EXPORTER_URL);
  return {
    ...handler,
    fetch: (request: Request, env: object, ctx?: ExecutionContext) =>
      on(env, ctx) ? instrumented.fetch(request as Parameters<Instrumented["fetch"]>[0], tracedEnv(env), ctx) : handler.fetch(request, env, ctx),
    queue: (batch: MessageBatch<unknown>, env: object, ctx?: ExecutionContext) =>
      on(env, ctx) ? instrumented.queue(batch, tracedEnv(env), ctx) : handler.queue(batch, env, ctx),
    scheduled: (controller: ScheduledController, env: object, ctx?: ExecutionContext) =>
      on(env, ctx) ? instrumented.scheduled(controller, tracedEnv(env), ctx) : handler.scheduled(controller, env, ctx),
  };
}
