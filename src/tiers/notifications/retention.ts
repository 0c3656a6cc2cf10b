// The notifications tier's retention rules: its tables and the Redis key families it owns.
import type { RetentionRule } from "../../platform/retention";
import { notificationsConfig } from "./config";

export const notificationsRetention: RetentionRule[] = [
  {
    store: "notifications",
    name: "notifications",
    rule: `until expires_at, at most ${notificationsConfig.retention.notificationDays} days`,
    enforcedBy: "notifications.retention",
    ageColumn: "created_at",
    maxAgeDays: notificationsConfig.retention.notificationDays,
  },
  { store: "notifications", name: "notification_receipts", rule: "go with their notification", enforcedBy: "cascade from notifications" },
  {
    store: "notifications",
    name: "notification_outbox",
    rule: `sent rows ${notificationsConfig.outbox.sentRetentionDays} days; failed rows go with their notification`,
    enforcedBy: "notifications.retention",
    ageColumn: "sent_at",
    maxAgeDays: notificationsConfig.outbox.sentRetentionDays,
  },
  { store: "notifications", name: "notification_deliveries", rule: "go with their notification", enforcedBy: "cascade from notifications" },
  { store: "notifications", name: "notification_webhook_endpoints", rule: "until an admin deletes the endpoint", enforcedBy: "notifications.webhooks.delete" },
  {
    store: "notifications",
    name: "notification_push_subscriptions",
    rule: `until unsubscribed, gone at the push service (404/410), or idle ${notificationsConfig.push.idleRetentionDays} days`,
    enforcedBy: "notifications.push.unsubscribe, SEND_NOTIFICATION, notifications.retention",
    ageColumn: "last_seen_at",
    maxAgeDays: notificationsConfig.push.idleRetentionDays,
  },
  { store: "notifications", name: "notification_digest_items", rule: "go with their notification", enforcedBy: "cascade from notifications" },
  { store: "notifications", name: "notification_digest_settings", rule: "until changed or removed by their owner, or the owner's erasure", enforcedBy: "notifications.preferences.setDigest, lifecycle.eraseSubject" },
  { store: "notifications", name: "notification_tenant_settings", rule: "one row per tenant", enforcedBy: "none needed (bounded)" },
  { store: "notifications", name: "notification_preferences", rule: "until changed or removed by their owner", enforcedBy: "notifications.preferences.set" },
  {
    store: "notifications",
    name: "admin_system_events",
    rule: `${notificationsConfig.retention.systemEventDays} days`,
    enforcedBy: "notifications.retention",
    ageColumn: "created_at",
    maxAgeDays: notificationsConfig.retention.systemEventDays,
  },
  { store: "redis", name: "notif:unread:{tenant}", rule: `${notificationsConfig.unreadCache.keyTtlSeconds / 3600} h after the last write (TTL); counts at most ${notificationsConfig.unreadCache.maxAgeSeconds / 60} min`, enforcedBy: "Redis TTL" },
  { store: "redis", name: "notif:rl:*", rule: "one rate-limit window (TTL set by @upstash/ratelimit)", enforcedBy: "Redis TTL" },
  { store: "redis", name: "auth:{kind}:{email}:tries:*", rule: "one rate-limit window (1 h); global (no tenant's): erased with the subject only by an operator's erasure", enforcedBy: "Redis TTL, lifecycle.eraseSubject" },
];
