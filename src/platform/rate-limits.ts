// Limits with @upstash/ratelimit and a declared policy for when Redis is down: used by notification creation and the auth-email keys.
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis/cloudflare";
import { AppError, tierUnavailable } from "./errors";
import type { Logger } from "./logger";
import { redisBatch } from "./redis";

export interface RateLimitSetting {
  limit: number;
  windowSeconds: number;
}

/**
 * What a limiter does when Redis cannot answer:
 * - "open": let the call through (and log). Creation limiters: a notification is data the
 *   product must not lose, and Postgres still holds everything; brief over-sending is the lesser harm.
 * - "closed": refuse with SERVICE_UNAVAILABLE naming redis. Auth emails: an unlimited
 *   password-reset or verification sender is an abuse vector, and the user can simply retry.
 */
export type RedisDownPolicy = "open" | "closed";

/** What @upstash/ratelimit calls on its client: its script by hash, the script itself when Redis lacks it. */
type LimiterRedis = Pick<Redis, "evalsha" | "eval" | "get" | "set">;

function limiter(redis: LimiterRedis, prefix: string, setting: RateLimitSetting): Ratelimit {
  return new Ratelimit({
    // Typed as a whole client; the sliding window calls only evalsha, and eval when the script is not loaded.
    redis: redis as Redis,
    prefix,
    limiter: Ratelimit.slidingWindow(setting.limit, `${setting.windowSeconds} s`),
    // Limiters are built per request, so an in-memory block list would never be reused.
    ephemeralCache: false,
    // The library's own timeout lets calls through silently; the Redis client's bounded
    // signal raises instead, so each limiter's declared policy decides.
    timeout: 0,
    analytics: false,
  });
}

export interface LimitCheck {
  name: string;
  prefix: string;
  identifier: string;
  setting: RateLimitSetting;
  whenRedisDown: RedisDownPolicy;
}

/**
 * Runs the checks together: their scripts go in one pipeline request (each limiter queues its EVALSHA synchronously
 * inside `limit()`, before the batch is sent); the first refusal wins. A script Redis has not loaded yet is sent again
 * on its own by the library (EVAL), once per script load.
 */
export async function enforceLimits(redis: Redis, logger: Logger, checks: LimitCheck[]): Promise<void> {
  const batch = redisBatch(redis);
  const client: LimiterRedis = {
    evalsha: (sha, keys, args) => batch.evalsha(sha, keys, args),
    eval: (script, keys, args) => redis.eval(script, keys, args),
    get: (key) => redis.get(key),
    set: (key, value, options) => redis.set(key, value, options),
  } as LimiterRedis;
  const pending = checks.map(async (check) => {
    try {
      const result = await limiter(client, check.prefix, check.setting).limit(check.identifier);
      return { check, success: result.success, reset: result.reset };
    } catch (error) {
      if (check.whenRedisDown === "closed") throw tierUnavailable("redis", error);
      logger.warn("rate limiter unavailable, failing open", { limiter: check.name, error });
      return { check, success: true, reset: 0 };
    }
  });
  batch.send();
  const outcomes = await Promise.all(pending);
  const refused = outcomes.find((o) => !o.success);
  if (refused) {
    // @upstash/ratelimit computes `reset` from the runtime's own Date.now(), so the wait is measured on that clock too.
    const retryAfterSeconds = Math.max(1, Math.ceil((refused.reset - Date.now()) / 1000));
    throw new AppError("RATE_LIMITED", `Too many requests (${refused.check.name}); retry in ${retryAfterSeconds} s`, {
      details: { limiter: refused.check.name, retryAfterSeconds },
    });
  }
}

export type AuthEmailKind = "password-reset" | "verification-email";
export const authEmailKinds: readonly AuthEmailKind[] = ["password-reset", "verification-email"];

/** The per-recipient limiter's bucket: a user, or the tenant's tenant-wide notifications. */
export const recipientLimit = { prefix: "notif:rl:recipient", identifier: (tenantId: string, userId: string | null) => `${tenantId}:${userId ?? "tenant"}` };
const authEmailIdentifier = (kind: AuthEmailKind, email: string) => `${kind}:${email.trim().toLowerCase()}:tries`;

/**
 * The keys a sliding-window limiter holds for one identifier at `nowMs`: the current and the previous
 * window, in @upstash/ratelimit's own layout (`prefix:identifier:window`, windows counted on its Date.now()).
 * Named exactly, so erasing a subject deletes its counters without scanning the keyspace.
 */
export function limiterKeys(prefix: string, identifier: string, setting: RateLimitSetting, nowMs = Date.now()): string[] {
  const window = Math.floor(nowMs / (setting.windowSeconds * 1000));
  return [window - 1, window].map((w) => `${prefix}:${identifier}:${w}`);
}

/** The auth-email counters of an address. They are global (not a tenant's): only an operator's erasure touches them. */
export const authEmailKeys = (email: string, settings: Record<AuthEmailKind, RateLimitSetting>, nowMs = Date.now()): string[] =>
  authEmailKinds.flatMap((kind) => limiterKeys("auth", authEmailIdentifier(kind, email), settings[kind], nowMs));

/** Auth emails (password resets, verifications, invitations) per address: 5 an hour each kind. */
export const authEmailLimits: Record<AuthEmailKind, RateLimitSetting> = {
  "password-reset": { limit: 5, windowSeconds: 3600 },
  "verification-email": { limit: 5, windowSeconds: 3600 },
};

/**
 * The auth-email limiter other code calls before sending a password reset or verification
 * email. Keys follow the seed's naming, `auth:{kind}:{email}:tries` (the library appends its
 * window). Fails closed when Redis is down.
 */
export async function allowAuthEmail(
  redis: Redis,
  logger: Logger,
  kind: AuthEmailKind,
  email: string,
  setting: RateLimitSetting,
): Promise<void> {
  await enforceLimits(redis, logger, [
    { name: `auth:${kind}`, prefix: "auth", identifier: authEmailIdentifier(kind, email), setting, whenRedisDown: "closed" },
  ]);
}
