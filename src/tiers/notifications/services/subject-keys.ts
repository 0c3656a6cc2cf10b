// What the notifications tier keeps in Redis about one person, named key by key, for erasure.
import type { Redis } from "@upstash/redis/cloudflare";
import type { NotificationsConfig } from "../config";
import { authEmailKeys, authEmailLimits, limiterKeys, recipientLimit } from "../../../platform/rate-limits";
import { unreadKeyOf } from "./unread-cache";

export interface RedisSubject {
  tenantId: string;
  userIds: string[];
  email: string | null;
  /**
   * Whether global keys (not any tenant's: the auth-email counters of the address) go too. Only an operator's
   * erasure sets it; a tenant admin's touches the tenant's own keys and learns nothing of the rest.
   */
  platformWide: boolean;
}

/**
 * Deletes the subject's keys in one pipeline, by their exact names (no keyspace scan): each user's cached unread
 * count and version token in the tenant's hash and their per-recipient limiter windows, and, for an operator's
 * erasure, the address's auth-email counters. Returns how many keys and fields were removed.
 */
export async function eraseSubjectKeys(redis: Redis, config: NotificationsConfig, subject: RedisSubject, nowMs = Date.now()): Promise<number> {
  const keys = subject.userIds.flatMap((userId) =>
    limiterKeys(recipientLimit.prefix, recipientLimit.identifier(subject.tenantId, userId), config.limits.perRecipient, nowMs),
  );
  if (subject.platformWide && subject.email) {
    keys.push(...authEmailKeys(subject.email, authEmailLimits, nowMs));
  }
  const fields = subject.userIds.flatMap((userId) => [`c:${userId}`, `v:${userId}`]);
  if (keys.length === 0 && fields.length === 0) return 0;
  const pipeline = redis.pipeline();
  if (keys.length > 0) pipeline.del(...keys);
  if (fields.length > 0) pipeline.hdel(unreadKeyOf(subject.tenantId), ...fields);
  const counts = await pipeline.exec<number[]>();
  return counts.reduce((sum, n) => sum + Number(n ?? 0), 0);
}
