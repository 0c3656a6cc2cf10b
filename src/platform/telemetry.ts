// The out-of-band component (the sixth): a log sink for security, forensic and system records, and a product-event
// sink speaking PostHog's capture API. Both are fire-and-forget from the callers' point of view: records are buffered
// per services context, posted once from waitUntil after the work that produced them, bounded in count and time, and a
// sink that is down or hangs only increments a drop counter (reported by /health and a warning line). Nothing here
// ever throws to a caller or holds up a response.
//
// Why not a library: the PostHog SDKs for edge runtimes (posthog-node, posthog-js-lite) keep their own timers,
// retries and unbounded queues per client, which a Worker isolate would have to flush and could not bound per
// request; the capture API itself is one documented POST (`/batch/`), and a log drain is one JSON POST.
import type { Env } from "./env";
import type { Logger } from "./logger";

/** Categories of the security and forensic log (ARCHITECTURE: external logging), plus mirrored system events. */
export const forensicCategories = [
  "auth_failure",
  "permission_refused",
  "api_key_used",
  "api_key_revoked",
  "erasure_requested",
  "operator_action",
  "content_access",
  "system_event",
] as const;
export type ForensicCategory = (typeof forensicCategories)[number];

export interface ProductEvent {
  event: string;
  tenantId: string | null;
  /** Who did it: a user id (never an address). Absent, the tenant is the distinct id. */
  distinctId?: string | null;
  properties?: Record<string, string | number | boolean | null>;
}

export interface Telemetry {
  /** A structured record for the external log sink, separate from the compliance audit log. */
  log(category: ForensicCategory, fields: Record<string, unknown>): void;
  /** A product fact for the analytics sink. */
  capture(event: ProductEvent): void;
  /**
   * A tenant's product-events opt-out as this context read it, as current as a lookup would be (the authorization's
   * cache entry, or the change itself): the flush then needs no lookup for that tenant.
   */
  optOutKnown(tenantId: string, optOut: boolean): void;
}

/** Per sink and isolate: what was delivered and what was dropped (sink down, hung, or a context over its bound). */
const counters = {
  log: { sent: 0, dropped: 0 },
  capture: { sent: 0, dropped: 0 },
};
export const telemetryCounters = () => ({ log: { ...counters.log }, capture: { ...counters.capture } });

export const telemetryLimits = {
  /** Records one context may buffer per sink; more are dropped (and counted), so memory stays bounded. */
  maxBuffered: 500,
};

type Sink = keyof typeof counters;

interface Target {
  url: string;
  headers: Record<string, string>;
  body(records: unknown[]): string;
}

function targets(env: Env): Partial<Record<Sink, Target>> {
  const out: Partial<Record<Sink, Target>> = {};
  if (env.LOG_SINK_URL) {
    out.log = {
      url: env.LOG_SINK_URL,
      headers: { "content-type": "application/json", ...(env.LOG_SINK_TOKEN ? { authorization: `Bearer ${env.LOG_SINK_TOKEN}` } : {}) },
      body: (records) => JSON.stringify(records),
    };
  }
  if (env.PRODUCT_EVENTS_HOST && env.PRODUCT_EVENTS_API_KEY) {
    const apiKey = env.PRODUCT_EVENTS_API_KEY;
    out.capture = {
      url: `${env.PRODUCT_EVENTS_HOST.replace(/\/+$/, "")}/batch/`,
      headers: { "content-type": "application/json" },
      body: (batch) => JSON.stringify({ api_key: apiKey, batch }),
    };
  }
  return out;
}

/**
 * The telemetry of one services context. `base` fields (service, request id) go on every log record;
 * `now` stamps records with the services clock, so a test's moved clock shows in what the sinks get.
 */
export function createTelemetry(init: {
  env: Env;
  logger: Logger;
  base: Record<string, unknown>;
  now: () => Date;
  waitUntil(promise: Promise<unknown>): void;
  /** The tenants among these that opted out of product events; their facts are dropped at flush, never sent. */
  optedOut?: (tenantIds: string[]) => Promise<Set<string>>;
}): Telemetry {
  const configured = targets(init.env);
  const buffers: Record<Sink, unknown[]> = { log: [], capture: [] };
  const knownOptOuts = new Map<string, boolean>();
  let scheduled = false;

  const post = async (sink: Sink, records: unknown[]) => {
    const target = configured[sink];
    if (!target || records.length === 0) return;
    try {
      const response = await fetch(target.url, {
        method: "POST",
        headers: target.headers,
        body: target.body(records),
        signal: AbortSignal.timeout(init.env.TELEMETRY_TIMEOUT_MS),
      });
      // The body is not needed; reading it frees the connection.
      await response.body?.cancel();
      if (!response.ok) throw new Error(`sink answered ${response.status}`);
      counters[sink].sent += records.length;
    } catch (error) {
      counters[sink].dropped += records.length;
      init.logger.warn("telemetry records dropped", { sink, count: records.length, droppedTotal: counters[sink].dropped, error });
    }
  };

  /**
   * The per-tenant opt-out, checked here, after the work and off its response path, so every capture site honours
   * it without a read of its own: what the context already knows (`optOutKnown`), then one lookup per flush for the
   * distinct tenants left (Redis, OLTP on a miss).
   */
  const withoutOptedOut = async (records: unknown[]) => {
    if (records.length === 0) return records;
    const tenantOf = (r: unknown) => ((r as { properties?: { tenant_id?: unknown } }).properties?.tenant_id as string | undefined) ?? null;
    const tenantIds = [...new Set(records.map(tenantOf).filter((t): t is string => t !== null))];
    const unknown = tenantIds.filter((t) => !knownOptOuts.has(t));
    const lookup = init.optedOut;
    const out = lookup && unknown.length > 0 ? await lookup(unknown).catch(() => new Set(unknown)) : new Set<string>();
    for (const t of tenantIds) if (knownOptOuts.get(t)) out.add(t);
    return out.size === 0 ? records : records.filter((r) => !out.has(tenantOf(r) ?? ""));
  };

  const flush = async () => {
    scheduled = false;
    const batches = (Object.keys(buffers) as Sink[]).map((sink) => [sink, buffers[sink].splice(0)] as const);
    await Promise.all(batches.map(async ([sink, records]) => post(sink, sink === "capture" ? await withoutOptedOut(records) : records)));
  };

  const push = (sink: Sink, record: unknown) => {
    if (!configured[sink]) return;
    if (buffers[sink].length >= telemetryLimits.maxBuffered) {
      counters[sink].dropped += 1;
      return;
    }
    buffers[sink].push(record);
    if (!scheduled) {
      scheduled = true;
      // One post per sink for all the records of this turn of work, after it: never on the caller's path.
      init.waitUntil(new Promise((resolve) => setTimeout(resolve, 0)).then(flush));
    }
  };

  return {
    optOutKnown(tenantId, optOut) {
      knownOptOuts.set(tenantId, optOut);
    },
    log(category, fields) {
      push("log", { time: init.now().toISOString(), category, ...init.base, ...fields });
    },
    capture({ event, tenantId, distinctId, properties }) {
      push("capture", {
        event,
        distinct_id: distinctId ?? (tenantId ? `tenant:${tenantId}` : "platform"),
        timestamp: init.now().toISOString(),
        uuid: crypto.randomUUID(),
        properties: {
          ...properties,
          ...(tenantId ? { tenant_id: tenantId, $groups: { tenant: tenantId } } : {}),
          service: init.base.service,
        },
      });
    },
  };
}

const hashKeys = new Map<string, Promise<CryptoKey>>();

/**
 * A keyed hash of an address (or any personal identifier) for telemetry: stable, so events about one person
 * can be joined, and not reversible without the key, so no raw address leaves the platform in telemetry.
 */
export async function telemetryHash(env: Env, value: string): Promise<string> {
  const secret = env.TELEMETRY_HASH_KEY ?? `telemetry:${env.JWT_SECRET ?? env.JWT_JWKS_URL ?? ""}`;
  let key = hashKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    hashKeys.set(secret, key);
  }
  const mac = await crypto.subtle.sign("HMAC", await key, new TextEncoder().encode(value.trim().toLowerCase()));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
