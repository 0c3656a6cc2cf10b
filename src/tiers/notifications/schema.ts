// Notifications tier schema (Neon, NOTIFICATIONS_DATABASE_URL): the seed's two tables plus receipts, outbox and dedup, under forced RLS.
import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from "drizzle-orm/pg-core";
import { severities } from "../../platform/emitters";
import { currentRole, currentTenant, currentUser } from "../../platform/rls";

/**
 * Internal work (queue consumer, cron relay, retention, raised system events) runs with
 * app.current_role = 'system'. JWT roles can never be 'system' (the claims schema forbids it),
 * so only code that sets it on purpose crosses the per-user wall.
 */
export const systemRole = "system";
const isSystem = sql`${currentRole} = 'system'`;
const isTenantStaff = sql`${currentRole} in ('admin', 'operator', 'system')`;

export const notificationChannels = ["in_app", "email", "push"] as const;

/** The seed's `notifications`, column for column. `user_id` NULL is a tenant-wide notification. */
export const notifications = pgTable(
  "notifications",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id"),
    type: varchar("type", { length: 50 }).notNull(),
    title: varchar("title", { length: 255 }).notNull(),
    message: text("message").notNull(),
    data: jsonb("data").notNull().default({}),
    channel: varchar("channel", { length: 20 }).notNull().default("in_app"),
    isRead: boolean("is_read").notNull().default(false),
    readAt: timestamp("read_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
    /** Beyond the seed: seen (shown to the user; the badge may count unseen rows) and archived (out of the inbox and the badge). */
    seenAt: timestamp("seen_at", { withTimezone: true }),
    archivedAt: timestamp("archived_at", { withTimezone: true }),
  },
  (t) => [
    check("notifications_channel_check", sql`${t.channel} in ('in_app', 'email', 'push')`),
    index("idx_notifications_user_tenant_created").on(t.userId, t.tenantId, t.createdAt.desc()),
    index("idx_notifications_unread").on(t.userId, t.tenantId).where(sql`${t.isRead} = false`),
    // Retention scans across tenants; without these each pruning batch would be a sequential scan.
    index("notifications_expires_at_idx").on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
    index("notifications_created_at_idx").on(t.createdAt),
    // Members see their own and tenant-wide rows; tenant staff may read every row of their tenant
    // because INSERT ... RETURNING of a row addressed to someone else must pass this policy.
    // Retention's cross-tenant DELETE must pass it too, hence 'system' without a tenant.
    pgPolicy("notifications_select", {
      for: "select",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${t.userId} is null or ${isTenantStaff}))`,
    }),
    pgPolicy("notifications_insert", {
      for: "insert",
      withCheck: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}`,
    }),
    // Only the addressee changes a row; tenant-wide rows change per user through receipts.
    // Retention's SELECT ... FOR UPDATE must pass this policy too, hence 'system' across tenants.
    pgPolicy("notifications_update", {
      for: "update",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${t.userId} = ${currentUser})`,
      withCheck: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${t.userId} = ${currentUser})`,
    }),
    // Hard deletes are retention's alone (users soft-delete), and retention spans tenants.
    pgPolicy("notifications_delete", { for: "delete", using: isSystem }),
  ],
);

/**
 * Per-user state of a tenant-wide notification: one shared row cannot hold every member's
 * read or deleted flag. No receipt means unread and not deleted for that user.
 */
export const notificationReceipts = pgTable(
  "notification_receipts",
  {
    notificationId: uuid("notification_id")
      .notNull()
      .references(() => notifications.id, { onDelete: "cascade" }),
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id").notNull(),
    readAt: timestamp("read_at", { withTimezone: true }),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
    seenAt: timestamp("seen_at", { withTimezone: true }),
    archivedAt: timestamp("archived_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ name: "notification_receipts_pkey", columns: [t.notificationId, t.userId] }),
    pgPolicy("notification_receipts_owner", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isSystem})`,
      withCheck: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isSystem})`,
    }),
  ],
);

export const outboxStatuses = ["pending", "sent", "failed"] as const;
export const outboxChannels = ["email", "push", "webhook"] as const;

/**
 * Deliveries owed for email and push notifications, written in the notification's own
 * transaction so a notification never exists without its job. The consumer claims a row
 * pending → sent before calling the provider, so a redelivered message sends nothing.
 */
export const notificationOutbox = pgTable(
  "notification_outbox",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    notificationId: uuid("notification_id")
      .notNull()
      .references(() => notifications.id, { onDelete: "cascade" }),
    tenantId: uuid("tenant_id").notNull(),
    channel: varchar("channel", { length: 20 }).notNull(),
    /** The webhook endpoint of a `webhook` delivery (one row per endpoint); NULL for email and push. */
    endpointId: uuid("endpoint_id"),
    status: varchar("status", { length: 20 }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    enqueuedAt: timestamp("enqueued_at", { withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
    /** A digest email: it delivers every `notification_digest_items` row linked to it; `notification_id` is one of them. */
    digest: boolean("digest").notNull().default(false),
  },
  (t) => [
    check("notification_outbox_status_check", sql`${t.status} in ('pending', 'sent', 'failed')`),
    check("notification_outbox_channel_check", sql`${t.channel} in ('email', 'push', 'webhook')`),
    index("notification_outbox_pending_idx").on(t.enqueuedAt).where(sql`${t.status} = 'pending'`),
    index("notification_outbox_sent_idx").on(t.sentAt).where(sql`${t.status} = 'sent'`),
    pgPolicy("notification_outbox_tenant", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} or ${isSystem}`,
      withCheck: sql`${t.tenantId} = ${currentTenant} or ${isSystem}`,
    }),
  ],
);

export const deliveryOutcomes = ["sent", "failed", "rejected", "deferred", "skipped"] as const;

/**
 * Every delivery attempt of an outbox row, one row per attempt: what the channel's provider answered.
 * `sent` delivered; `failed` a transient failure (retried while attempts remain); `rejected` a permanent
 * refusal (not retried); `deferred` not attempted because a store it needs was down (no attempt used);
 * `skipped` not attempted because its endpoint was disabled or its recipient has no address.
 * Readable by the tenant's admins (and operators); written only by the internal delivery job.
 */
export const notificationDeliveries = pgTable(
  "notification_deliveries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    notificationId: uuid("notification_id")
      .notNull()
      .references(() => notifications.id, { onDelete: "cascade" }),
    /** No foreign key: sent outbox rows are pruned after days, the history lives as long as its notification. */
    outboxId: uuid("outbox_id").notNull(),
    channel: varchar("channel", { length: 20 }).notNull(),
    endpointId: uuid("endpoint_id"),
    attempt: integer("attempt").notNull(),
    outcome: varchar("outcome", { length: 20 }).notNull(),
    providerId: text("provider_id"),
    error: text("error"),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
    finishedAt: timestamp("finished_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("notification_deliveries_outcome_check", sql`${t.outcome} in ('sent', 'failed', 'rejected', 'deferred', 'skipped')`),
    index("notification_deliveries_notification_idx").on(t.notificationId, t.startedAt),
    pgPolicy("notification_deliveries_read", {
      for: "select",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${currentRole} in ('admin', 'operator'))`,
    }),
    pgPolicy("notification_deliveries_write", {
      for: "insert",
      withCheck: sql`${isSystem} and ${t.tenantId} = ${currentTenant}`,
    }),
    // Retention's cascade deletes run as 'system'.
    pgPolicy("notification_deliveries_delete", { for: "delete", using: isSystem }),
  ],
);

/**
 * A tenant's webhook endpoints (admin-managed). `secret` signs every payload (Standard Webhooks); it is
 * returned once, when the endpoint is created, and never listed. `types` NULL subscribes to every type.
 * Repeated failure disables the endpoint (`disabled_at`), with one system event.
 */
export const notificationWebhookEndpoints = pgTable(
  "notification_webhook_endpoints",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    url: text("url").notNull(),
    description: varchar("description", { length: 200 }),
    secret: text("secret").notNull(),
    types: text("types").array(),
    enabled: boolean("enabled").notNull().default(true),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    disabledAt: timestamp("disabled_at", { withTimezone: true }),
    disabledReason: text("disabled_reason"),
    createdBy: uuid("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("notification_webhook_endpoints_tenant_idx").on(t.tenantId).where(sql`${t.enabled}`),
    // Creating a notification reads them (as the admin creating it, or as 'system').
    pgPolicy("notification_webhook_endpoints_staff", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}`,
      withCheck: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}`,
    }),
  ],
);

/**
 * A user's Web Push subscriptions (one per browser/device): the push service endpoint and the browser's keys
 * (RFC 8291: `p256dh`, the P-256 public key, and `auth`, the 16-byte secret). A push notification owes one delivery
 * per subscription of its recipient (outbox `endpoint_id` is the subscription). A push service's 404/410 deletes it.
 */
export const notificationPushSubscriptions = pgTable(
  "notification_push_subscriptions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id").notNull(),
    endpoint: text("endpoint").notNull(),
    p256dh: text("p256dh").notNull(),
    auth: text("auth").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** The last accepted push (or the subscription's creation): retention removes subscriptions idle too long. */
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("notification_push_subscriptions_key").on(t.tenantId, t.userId, t.endpoint),
    index("notification_push_subscriptions_last_seen_idx").on(t.lastSeenAt),
    // Staff read them (creating a notification fans out to the recipient's subscriptions in the admin's statement);
    // only the owner (or internal work: delivery, erasure, retention) writes.
    pgPolicy("notification_push_subscriptions_read", {
      for: "select",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isTenantStaff}))`,
    }),
    pgPolicy("notification_push_subscriptions_insert", {
      for: "insert",
      withCheck: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isSystem})`,
    }),
    pgPolicy("notification_push_subscriptions_update", {
      for: "update",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${t.userId} = ${currentUser})`,
      withCheck: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${t.userId} = ${currentUser})`,
    }),
    pgPolicy("notification_push_subscriptions_delete", {
      for: "delete",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and ${t.userId} = ${currentUser})`,
    }),
  ],
);

export const digestChannels = ["email"] as const;

/**
 * A user's digest of a channel: instead of one email per notification, the notifications of each window of
 * `window_minutes` (aligned to the epoch) go out as one email when the window closes. Security notices are never held.
 */
export const notificationDigestSettings = pgTable(
  "notification_digest_settings",
  {
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id").notNull(),
    channel: varchar("channel", { length: 20 }).notNull(),
    windowMinutes: integer("window_minutes").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "notification_digest_settings_pkey", columns: [t.tenantId, t.userId, t.channel] }),
    check("notification_digest_settings_channel_check", sql`${t.channel} in ('email')`),
    check("notification_digest_settings_window_check", sql`${t.windowMinutes} between 5 and 10080`),
    // Staff read them (creation checks them in the admin's statement); the owner (or internal work) writes.
    pgPolicy("notification_digest_settings_read", {
      for: "select",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isTenantStaff}))`,
    }),
    pgPolicy("notification_digest_settings_write", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isSystem})`,
      withCheck: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isSystem})`,
    }),
  ],
);

/**
 * A notification held for its recipient's digest until `window_end`; the window's closing (a cron task) links every
 * item of the window to one digest outbox row in one transaction, so an item is in exactly one digest and a failing
 * digest is retried like any delivery.
 */
export const notificationDigestItems = pgTable(
  "notification_digest_items",
  {
    notificationId: uuid("notification_id")
      .primaryKey()
      .references(() => notifications.id, { onDelete: "cascade" }),
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id").notNull(),
    channel: varchar("channel", { length: 20 }).notNull(),
    windowEnd: timestamp("window_end", { withTimezone: true }).notNull(),
    /** The digest outbox row, once the window closed. No foreign key: sent outbox rows are pruned, the link stays. */
    outboxId: uuid("outbox_id"),
  },
  (t) => [
    index("notification_digest_items_due_idx").on(t.windowEnd).where(sql`${t.outboxId} is null`),
    index("notification_digest_items_outbox_idx").on(t.outboxId),
    pgPolicy("notification_digest_items_read", {
      for: "select",
      using: sql`${isSystem} or (${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${isTenantStaff}))`,
    }),
    // Written in the creating admin's statement; linked and deleted by internal work.
    pgPolicy("notification_digest_items_insert", { for: "insert", withCheck: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}` }),
    pgPolicy("notification_digest_items_update", { for: "update", using: isSystem, withCheck: isSystem }),
    pgPolicy("notification_digest_items_delete", { for: "delete", using: isSystem }),
  ],
);

export const badgeCounts = ["unread", "unseen"] as const;

/** A tenant's notification settings: whether the badge counts unread rows (the default) or unseen ones. */
export const notificationTenantSettings = pgTable(
  "notification_tenant_settings",
  {
    tenantId: uuid("tenant_id").primaryKey(),
    badgeCounts: varchar("badge_counts", { length: 10 }).notNull().default("unread"),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("notification_tenant_settings_badge_counts_check", sql`${t.badgeCounts} in ('unread', 'unseen')`),
    // Every member's count reads it; its admins change it.
    pgPolicy("notification_tenant_settings_read", { for: "select", using: sql`${isSystem} or ${t.tenantId} = ${currentTenant}` }),
    pgPolicy("notification_tenant_settings_write", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}`,
      withCheck: sql`${t.tenantId} = ${currentTenant} and ${isTenantStaff}`,
    }),
  ],
);

export const preferenceChannels = ["email", "push"] as const;

/**
 * Whether a channel delivers a notification type: `user_id` NULL is the tenant's default, a user's row
 * overrides it; `type` '*' covers every type. No row: delivered. The in-app row is always written.
 */
export const notificationPreferences = pgTable(
  "notification_preferences",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    userId: uuid("user_id"),
    type: varchar("type", { length: 50 }).notNull(),
    channel: varchar("channel", { length: 20 }).notNull(),
    enabled: boolean("enabled").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("notification_preferences_channel_check", sql`${t.channel} in ('email', 'push')`),
    uniqueIndex("notification_preferences_key")
      .on(t.tenantId, sql`coalesce(${t.userId}, '00000000-0000-0000-0000-000000000000'::uuid)`, t.type, t.channel),
    // Everyone reads their own rows and the tenant's defaults (staff read all: creation checks them);
    // a user writes only their own overrides, tenant defaults are staff's.
    pgPolicy("notification_preferences_read", {
      for: "select",
      using: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or ${t.userId} is null or ${isTenantStaff})`,
    }),
    pgPolicy("notification_preferences_write", {
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or (${t.userId} is null and ${isTenantStaff}) or ${isSystem})`,
      withCheck: sql`${t.tenantId} = ${currentTenant} and (${t.userId} = ${currentUser} or (${t.userId} is null and ${isTenantStaff}) or ${isSystem})`,
    }),
  ],
);

export { severities };

/**
 * The seed's `admin_system_events`, plus `dedup_key`, `occurrences` and `last_seen_at` so one
 * ongoing incident is one open row that counts its repeats.
 */
export const adminSystemEvents = pgTable(
  "admin_system_events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventType: varchar("event_type", { length: 100 }).notNull(),
    severity: varchar("severity", { length: 20 }).notNull(),
    tenantId: uuid("tenant_id"),
    userId: uuid("user_id"),
    description: text("description").notNull(),
    details: jsonb("details").notNull().default({}),
    isResolved: boolean("is_resolved").notNull().default(false),
    resolvedAt: timestamp("resolved_at", { withTimezone: true }),
    resolvedBy: uuid("resolved_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    dedupKey: varchar("dedup_key", { length: 200 }),
    occurrences: integer("occurrences").notNull().default(1),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("admin_system_events_severity_check", sql`${t.severity} in ('low', 'medium', 'high', 'critical')`),
    index("idx_admin_system_events_severity_created").on(t.severity, t.createdAt.desc()),
    index("idx_admin_system_events_tenant_created").on(t.tenantId, t.createdAt.desc()),
    index("idx_admin_system_events_unresolved").on(t.createdAt.desc()).where(sql`${t.isResolved} = false`),
    // At most one open event per (tenant or platform, dedup key); the raise upserts into it.
    uniqueIndex("admin_system_events_open_dedup_key")
      .on(sql`coalesce(${t.tenantId}, '00000000-0000-0000-0000-000000000000'::uuid)`, t.dedupKey)
      .where(sql`${t.isResolved} = false and ${t.dedupKey} is not null`),
    // Operators (and internal services) see every tenant and platform-wide events; a tenant
    // admin only their own tenant's. Members see none.
    pgPolicy("admin_system_events_access", {
      for: "all",
      using: sql`${currentRole} in ('operator', 'system') or (${t.tenantId} = ${currentTenant} and ${currentRole} = 'admin')`,
      withCheck: sql`${currentRole} in ('operator', 'system') or (${t.tenantId} = ${currentTenant} and ${currentRole} = 'admin')`,
    }),
  ],
);
