// The notifications tier's tunables in one place: rate limits, cache lifetimes, outbox relay and retention.

import type { RateLimitSetting } from "../../platform/rate-limits";

export type { RateLimitSetting };

export interface NotificationsConfig {
  limits: {
    /** Notifications created for one recipient (a user, or a whole tenant for tenant-wide ones). */
    perRecipient: RateLimitSetting;
    /** Notifications created in one tenant, all recipients together. */
    perTenant: RateLimitSetting;
  };
  unreadCache: {
    /** Longest a cached count is trusted even if nothing changes it. */
    maxAgeSeconds: number;
    /** Lifetime of a tenant's cache hash after its last write, so idle tenants leave Redis. */
    keyTtlSeconds: number;
  };
  outbox: {
    /** A delivery still pending this long after it was enqueued is sent to the queue again. */
    relayGraceSeconds: number;
    relayBatchSize: number;
    /** Sent outbox rows are kept this long for inspection, then deleted. */
    sentRetentionDays: number;
  };
  retention: {
    notificationDays: number;
    /** Clamped to 90–365 days. */
    systemEventDays: number;
    batchSize: number;
    /** Bound on one run's batches, so a backlog drains over several runs instead of one long one. */
    maxBatchesPerRun: number;
  };
  delivery: {
    /** Attempts of one delivery (an outbox row) before it is marked failed; the queue job's maxAttempts matches. */
    maxAttempts: number;
    /** Sender of email notifications outside production when NOTIFICATION_EMAIL_FROM is unset. */
    developmentFrom: string;
  };
  webhooks: {
    /** Failed attempts in a row (across deliveries) after which an endpoint is disabled, with one system event. */
    disableAfterConsecutiveFailures: number;
    maxEndpointsPerTenant: number;
    /** Longest wait for a receiver's answer. */
    timeoutMs: number;
  };
  push: {
    maxSubscriptionsPerUser: number;
    /** Longest wait for a push service's answer. */
    timeoutMs: number;
    /** How long the push service keeps a message for an offline browser (the TTL header). */
    ttlSeconds: number;
    /** A subscription with no accepted push (or refresh) for this long is removed by retention. */
    idleRetentionDays: number;
  };
  live: {
    /** Lifetime of a badge ticket (single use) between its minting and the WebSocket it opens. */
    ticketTtlSeconds: number;
  };
  systemEvents: {
    /** Serialized size limit of `details`. */
    maxDetailsBytes: number;
  };
  /** Serialized size limit of a notification's `data`. */
  maxNotificationDataBytes: number;
}

export const notificationsConfig: NotificationsConfig = {
  limits: {
    perRecipient: { limit: 30, windowSeconds: 60 },
    perTenant: { limit: 600, windowSeconds: 60 },
  },
  unreadCache: { maxAgeSeconds: 300, keyTtlSeconds: 86_400 },
  outbox: { relayGraceSeconds: 120, relayBatchSize: 100, sentRetentionDays: 7 },
  retention: { notificationDays: 90, systemEventDays: 180, batchSize: 1000, maxBatchesPerRun: 50 },
  delivery: { maxAttempts: 6, developmentFrom: "Notifications <notifications@localhost>" },
  webhooks: { disableAfterConsecutiveFailures: 5, maxEndpointsPerTenant: 10, timeoutMs: 10_000 },
  push: { maxSubscriptionsPerUser: 10, timeoutMs: 10_000, ttlSeconds: 86_400, idleRetentionDays: 180 },
  live: { ticketTtlSeconds: 30 },
  systemEvents: { maxDetailsBytes: 8192 },
  maxNotificationDataBytes: 8192,
};

export const systemEventRetentionDays = (days: number): number => Math.min(365, Math.max(90, Math.round(days)));

/**
 * The badge route's Cache-Control: one user's exact count, so `private` (no shared cache may keep it) and
 * `max-age=0, must-revalidate` (a browser asks again each time instead of showing a count older than the
 * user's own last change). Polling is cheap: one Redis HMGET on a cache hit.
 */
export const unreadCountCacheControl = "private, max-age=0, must-revalidate";
