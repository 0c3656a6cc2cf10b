// The notifications tier's tunables in one place: rate limits, cache lifetimes, outbox relay and retention.

export interface RateLimitSetting {
  /** Calls allowed per window. */
  limit: number;
  /** Window length in seconds (sliding window). */
  windowSeconds: number;
}

export interface NotificationsConfig {
  limits: {
    /** Notifications created for one recipient (a user, or a whole tenant for tenant-wide ones). */
    perRecipient: RateLimitSetting;
    /** Notifications created in one tenant, all recipients together. */
    perTenant: RateLimitSetting;
    passwordResetEmail: RateLimitSetting;
    verificationEmail: RateLimitSetting;
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
    passwordResetEmail: { limit: 5, windowSeconds: 3600 },
    verificationEmail: { limit: 5, windowSeconds: 3600 },
  },
  unreadCache: { maxAgeSeconds: 300, keyTtlSeconds: 86_400 },
  outbox: { relayGraceSeconds: 120, relayBatchSize: 100, sentRetentionDays: 7 },
  retention: { notificationDays: 90, systemEventDays: 180, batchSize: 1000, maxBatchesPerRun: 50 },
  systemEvents: { maxDetailsBytes: 8192 },
  maxNotificationDataBytes: 8192,
};

export const systemEventRetentionDays = (days: number): number => Math.min(365, Math.max(90, Math.round(days)));
