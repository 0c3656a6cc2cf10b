// The unread-count cache in Redis: one hash per tenant, versioned so a racing refill can never win over a write.
import type { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "../../../platform/env";
import type { Logger } from "../../../platform/logger";
import type { RedisReads } from "../../../platform/redis";
import { signalBadges } from "./live";
import type { NotificationsConfig } from "../config";

/**
 * Layout of `notif:unread:{tenant}`:
 *   tenant     version token of tenant-wide notifications (changed when one is created or pruned)
 *   v:{user}   version token of the user's own notifications and receipts
 *   c:{user}   cached count: { n, until, tv, uv }, valid while both tokens still equal tv/uv
 *              and `until` (the cache age bound or the earliest expiry among the counted
 *              notifications) has not passed.
 * A reader reads the tokens in the same HMGET as the count, before it reads Postgres, and
 * tags its refill with them; a writer changes a token after its commit. So a refill computed
 * before a write always carries an old token and is never served.
 */
export const unreadKeyOf = (tenantId: string) => `notif:unread:${tenantId}`;
const keyOf = unreadKeyOf;

interface CachedCount {
  n: number;
  until: number;
  tv: string | null;
  uv: string | null;
}

export type CacheLookup = { hit: true; unread: number } | { hit: false; tv: string | null; uv: string | null };

const asCached = (value: unknown): CachedCount | null => {
  // The client deserializes JSON values on its own; accept either shape.
  const parsed = typeof value === "string" ? (JSON.parse(value) as unknown) : value;
  if (!parsed || typeof parsed !== "object") return null;
  const c = parsed as Partial<CachedCount>;
  return typeof c.n === "number" && typeof c.until === "number" ? { n: c.n, until: c.until, tv: c.tv ?? null, uv: c.uv ?? null } : null;
};

const token = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/** One Redis round trip. Throws when Redis is unavailable; callers fall back to Postgres. */
export async function lookupUnread(redis: RedisReads, tenantId: string, userId: string, now: number): Promise<CacheLookup> {
  const fields = await redis.hmget<Record<string, unknown>>(keyOf(tenantId), "tenant", `v:${userId}`, `c:${userId}`);
  const tv = token(fields?.tenant);
  const uv = token(fields?.[`v:${userId}`]);
  const cached = asCached(fields?.[`c:${userId}`]);
  if (cached && cached.until > now && cached.tv === tv && cached.uv === uv) return { hit: true, unread: cached.n };
  return { hit: false, tv, uv };
}

/** Stores a count read from Postgres, tagged with the tokens seen before that read. */
export async function refillUnread(
  redis: Redis,
  config: NotificationsConfig,
  target: { tenantId: string; userId: string },
  miss: { tv: string | null; uv: string | null },
  unread: number,
  nextExpiry: string | null,
  now: number,
): Promise<void> {
  const ageBound = now + config.unreadCache.maxAgeSeconds * 1000;
  const until = nextExpiry ? Math.min(ageBound, Date.parse(nextExpiry)) : ageBound;
  const value: CachedCount = { n: unread, until, tv: miss.tv, uv: miss.uv };
  const key = keyOf(target.tenantId);
  await redis.pipeline().hset(key, { [`c:${target.userId}`]: JSON.stringify(value) }).expire(key, config.unreadCache.keyTtlSeconds).exec();
}

export type CacheChange = { tenantId: string; userId: string | null };

/**
 * Called after a commit that changed counts: `userId` null means a tenant-wide notification,
 * which changes every member's count. One pipeline, one round trip, whatever the number of changes.
 */
export async function invalidateUnread(redis: Redis, config: NotificationsConfig, changes: CacheChange[]): Promise<void> {
  if (changes.length === 0) return;
  const pipeline = redis.pipeline();
  const keys = new Set<string>();
  for (const change of changes) {
    const key = keyOf(change.tenantId);
    pipeline.hset(key, { [change.userId ? `v:${change.userId}` : "tenant"]: crypto.randomUUID() });
    keys.add(key);
  }
  for (const key of keys) pipeline.expire(key, config.unreadCache.keyTtlSeconds);
  await pipeline.exec();
}

/**
 * Off the response path: a failed invalidation is logged, and bounded by the cache age limit. With `env`, the
 * live badges of the users concerned are told too (after the cache, so a poll answering a pushed count agrees).
 */
export function invalidateLater(
  deps: { redis: Redis; logger: Logger; waitUntil(p: Promise<unknown>): void; config: NotificationsConfig; env?: Env },
  changes: CacheChange[],
): void {
  if (changes.length === 0) return;
  const env = deps.env;
  if (env) deps.waitUntil(signalBadges(env, deps.logger, changes));
  deps.waitUntil(
    invalidateUnread(deps.redis, deps.config, changes).catch((error: unknown) =>
      deps.logger.warn("unread cache invalidation failed", { changes: changes.length, error }),
    ),
  );
}
