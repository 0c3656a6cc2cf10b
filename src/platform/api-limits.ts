// The per-caller API rate limit (per principal and per tenant): counted in the isolate, reconciled in Redis with @upstash/ratelimit off the response path.
import { Ratelimit } from "@upstash/ratelimit";
import type { MiddlewareHandler } from "hono";
import type { Principal } from "./auth";
import { AppError } from "./errors";
import type { RetentionRule } from "./retention";
import type { Services } from "./services";

/**
 * Why counted this way: a request's budget is its store round trips (a tenant-scoped read is 1 to its tier and
 * 0 to Redis, the badge 1 Redis HMGET), so the limit may not add a Redis call to the request path. Each isolate
 * therefore
 * - refuses a bucket that Redis last reported exhausted, until that window resets (the limiter's verdict kept in
 *   memory, like @upstash/ratelimit's ephemeral cache), and a bucket that this isolate alone has filled in the
 *   sliding window (weighted as the library weighs it, so one isolate never lets more than the limit through,
 *   Redis or not);
 * - adds what it let through to Redis with @upstash/ratelimit's sliding window, `limit(id, { rate: n })`, after
 *   the response (`waitUntil`): every tenth of the limit, or, 10 s after the last report, once a hundredth of it
 *   has gathered.
 * A caller spread over many isolates can so overshoot by up to a tenth of the limit per isolate, for at most
 * one window. Redis down: the report is dropped and logged, and the isolate's own count still applies (fail
 * open: Redis is never the source of truth, and an outage must not refuse the API).
 */
export interface ApiLimit {
  /** The bucket family, e.g. `principal`; the Redis prefix is `api:rl:<name>`. */
  name: string;
  identifier: string;
  limit: number;
}

export const apiLimitWindowSeconds = 60;

export const apiRateLimitRetention: RetentionRule[] = [
  { store: "redis", name: "api:rl:*", rule: `one rate-limit window (${apiLimitWindowSeconds} s; TTL set by @upstash/ratelimit)`, enforcedBy: "Redis TTL" },
];
const reportIntervalMs = 10_000;

interface Bucket {
  /** Let through here and not yet reported to Redis. */
  pending: number;
  lastReport: number;
  /** The local window (its number), how many this isolate let through in it, and in the one before. */
  window: number;
  local: number;
  previous: number;
  /** Redis said the bucket is exhausted until then (ms since the epoch). */
  blockedUntil: number;
}

const buckets = new Map<string, Bucket>();
const maxBuckets = 50_000;

const windowMs = apiLimitWindowSeconds * 1000;

/** The buckets a caller draws on: the principal and its tenant; an anonymous caller, its address when known. */
export function apiLimitsOf(
  principal: Principal | null,
  clientIp: string | null,
  settings: { perPrincipal: number; perTenant: number },
): ApiLimit[] {
  if (principal) {
    return [
      { name: "principal", identifier: `${principal.tenantId}:${principal.userId}`, limit: settings.perPrincipal },
      { name: "tenant", identifier: principal.tenantId, limit: settings.perTenant },
    ];
  }
  return clientIp ? [{ name: "address", identifier: clientIp, limit: settings.perPrincipal }] : [];
}

function bucketOf(key: string, now: number): Bucket {
  let bucket = buckets.get(key);
  if (!bucket) {
    // Bounded memory: an isolate that has seen too many callers starts over (their counts are in Redis).
    if (buckets.size >= maxBuckets) buckets.clear();
    bucket = { pending: 0, lastReport: now, window: Math.floor(now / windowMs), local: 0, previous: 0, blockedUntil: 0 };
    buckets.set(key, bucket);
  }
  const window = Math.floor(now / windowMs);
  if (bucket.window !== window) {
    bucket.previous = bucket.window === window - 1 ? bucket.local : 0;
    bucket.window = window;
    bucket.local = 0;
  }
  return bucket;
}

/** This isolate's count in the sliding window ending now, weighted as @upstash/ratelimit's sliding window weighs it. */
const slidingCount = (bucket: Bucket, now: number) => bucket.previous * (1 - (now % windowMs) / windowMs) + bucket.local;

const refuse = (limit: ApiLimit, until: number, now: number) => {
  const retryAfterSeconds = Math.max(1, Math.ceil((until - now) / 1000));
  return new AppError("RATE_LIMITED", `Too many requests for this ${limit.name}; retry in ${retryAfterSeconds} s`, {
    details: { limiter: `api:${limit.name}`, retryAfterSeconds },
  });
};

/** Sends a bucket's pending count to Redis and keeps its verdict. Never throws: a failed report fails open. */
async function report(services: Services, limit: ApiLimit, key: string, bucket: Bucket, count: number): Promise<void> {
  try {
    const limiter = new Ratelimit({
      redis: services.redis(),
      prefix: `api:rl:${limit.name}`,
      limiter: Ratelimit.slidingWindow(limit.limit, `${apiLimitWindowSeconds} s`),
      ephemeralCache: false,
      timeout: 0,
      analytics: false,
    });
    const result = await limiter.limit(limit.identifier, { rate: count });
    if (!result.success) bucket.blockedUntil = result.reset;
  } catch (error) {
    services.logger.warn("api rate limiter unavailable, failing open", { limiter: key, error });
  }
}

/**
 * Counts `calls` against each of the caller's buckets, or throws RATE_LIMITED (with `retryAfterSeconds`) when one
 * is exhausted. No Redis call on the request path; due reports go out through `waitUntil`.
 */
export function consumeApiLimits(services: Services, limits: ApiLimit[], calls = 1): void {
  // @upstash/ratelimit computes windows and `reset` from the runtime's Date.now(), so the local windows do too.
  const now = Date.now();
  const drawn = limits.map((limit) => {
    const key = `${limit.name}:${limit.identifier}`;
    return { limit, key, bucket: bucketOf(key, now) };
  });
  for (const { limit, bucket } of drawn) {
    if (bucket.blockedUntil > now) throw refuse(limit, bucket.blockedUntil, now);
    if (slidingCount(bucket, now) + calls > limit.limit) throw refuse(limit, (bucket.window + 1) * windowMs, now);
  }
  for (const { limit, key, bucket } of drawn) {
    bucket.local += calls;
    bucket.pending += calls;
    // A tenth of the limit is always reported; after 10 s, a hundredth is. Less than that cannot matter before
    // a hundred isolates hold it, and reporting it would put a Redis script on nearly every quiet caller's call.
    const due =
      bucket.pending >= Math.ceil(limit.limit / 10) || (now - bucket.lastReport >= reportIntervalMs && bucket.pending >= Math.ceil(limit.limit / 100));
    if (!due) continue;
    const count = bucket.pending;
    bucket.pending = 0;
    bucket.lastReport = now;
    services.waitUntil(report(services, limit, key, bucket, count));
  }
}

/** The limits of a request's caller, from the environment's settings. */
export const callerLimits = (services: Services, principal: Principal | null): ApiLimit[] =>
  apiLimitsOf(principal, services.origin.ip, { perPrincipal: services.env.API_RATE_LIMIT_PER_PRINCIPAL, perTenant: services.env.API_RATE_LIMIT_PER_TENANT });

/** For plain HTTP routes: one call per request against the caller's buckets (after authentication). */
export const apiRateLimit = (): MiddlewareHandler =>
  async function apiRateLimit(c, next) {
    consumeApiLimits(c.get("services"), callerLimits(c.get("services"), c.get("principal") ?? null));
    await next();
  };

/** The `Retry-After` seconds a RATE_LIMITED error carries, for the response header. */
export function retryAfterOf(error: unknown): number | null {
  if (!(error instanceof AppError) || error.code !== "RATE_LIMITED") return null;
  const seconds = (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  return typeof seconds === "number" && seconds > 0 ? Math.ceil(seconds) : null;
}
