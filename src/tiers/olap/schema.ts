// OLAP tier schema (Neon, OLAP_DATABASE_URL): daily aggregates and the audit log, partitioned by month, and the ETL's watermarks, under forced RLS.
import { sql } from "drizzle-orm";
import { bigint, date, index, integer, jsonb, numeric, pgPolicy, pgTable, primaryKey, text, timestamp, uuid, type PgColumn, type PgColumnBuilderBase } from "drizzle-orm/pg-core";
import { currentRole, currentTenant } from "../../platform/rls";

/**
 * The ETL runs with app.current_role = 'analytics': it reads every tenant's facts in OLTP and writes
 * every tenant's aggregates here. JWT roles can never be 'analytics' (the claims schema forbids it).
 */
export const analyticsRole = "analytics";
const isAnalytics = sql`${currentRole} = 'analytics'`;

/**
 * Where each incremental source was read up to. `position` is a 64-bit Postgres transaction id of the
 * source database (see drizzle/oltp/0009_olap_etl_source.sql); `reflectsAt` is the source's clock at
 * the run that set it, which is what every analytics answer reports as its freshness.
 */
export const etlWatermarks = pgTable(
  "etl_watermarks",
  {
    source: text("source").primaryKey(),
    position: bigint("position", { mode: "bigint" }).notNull().default(sql`0`),
    reflectsAt: timestamp("reflects_at", { withTimezone: true, precision: 3 }),
    updatedAt: timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  () => [
    // Freshness is platform-wide, not tenant data: anyone may read it, only the ETL moves it.
    pgPolicy("etl_watermarks_read", { as: "permissive", for: "select", using: sql`true` }),
    pgPolicy("etl_watermarks_etl", { as: "permissive", for: "all", using: isAnalytics, withCheck: isAnalytics }),
  ],
);

/** The counts every email-event aggregate carries, by event type. */
const eventCountColumns = () => ({
  queued: integer("queued").notNull().default(0),
  sent: integer("sent").notNull().default(0),
  delivered: integer("delivered").notNull().default(0),
  opened: integer("opened").notNull().default(0),
  replied: integer("replied").notNull().default(0),
  bounced: integer("bounced").notNull().default(0),
  failed: integer("failed").notNull().default(0),
  unsubscribed: integer("unsubscribed").notNull().default(0),
  clicked: integer("clicked").notNull().default(0),
  complained: integer("complained").notNull().default(0),
});

/** A daily aggregate keyed by tenant, `keys` and UTC day, month-partitioned like campaign_analytics. */
function dailyAggregate<K extends Record<string, PgColumnBuilderBase>, C extends Record<string, PgColumnBuilderBase>>(name: string, keys: K, counts: C) {
  return pgTable(
    name,
    {
      tenantId: uuid("tenant_id").notNull(),
      ...keys,
      day: date("day", { mode: "string" }).notNull(),
      ...counts,
      updatedAt: timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    },
    (t) => {
      const columns = t as unknown as Record<string, PgColumn>;
      return [
        primaryKey({ name: `${name}_pkey`, columns: [columns.tenantId!, ...Object.keys(keys).map((k) => columns[k]!), columns.day!] }),
        pgPolicy(`${name}_tenant_read`, { as: "permissive", for: "select", using: sql`${columns.tenantId!} = ${currentTenant}` }),
        pgPolicy(`${name}_etl`, { as: "permissive", for: "all", using: isAnalytics, withCheck: isAnalytics }),
      ];
    },
  );
}

/**
 * Per campaign and UTC day of the fact's own time, counts of email events by type. Range-partitioned
 * by month (drizzle/olap/0001_campaign_analytics.sql): partitions are created ahead by the
 * aggregation cron and dropped by retention through the owner's functions olap_ensure_partitions
 * and olap_drop_partitions_before, because the application role cannot create tables.
 */
export const campaignAnalytics = dailyAggregate("campaign_analytics", { campaignId: uuid("campaign_id").notNull() }, eventCountColumns());
export const mailboxAnalytics = dailyAggregate("mailbox_analytics", { mailboxId: uuid("mailbox_id").notNull() }, eventCountColumns());
/** Per lead and day; the lead's address and name are copied at aggregation so a dashboard needs no OLTP read (erasure deletes the rows). */
export const leadAnalytics = dailyAggregate(
  "lead_analytics",
  { leadId: uuid("lead_id").notNull() },
  { ...eventCountColumns(), leadEmail: text("lead_email"), leadName: text("lead_name") },
);
/** Per step and day; the step's position and first subject are copied at aggregation (null once the step is gone). */
export const sequenceStepAnalytics = dailyAggregate(
  "sequence_step_analytics",
  { campaignId: uuid("campaign_id").notNull(), stepId: uuid("step_id").notNull() },
  { ...eventCountColumns(), stepPosition: integer("step_position"), stepSubject: text("step_subject") },
);

/**
 * Warmup mailboxes per day: the day's traffic and where the ramp stood when the day was last
 * aggregated (warmup day, the allowance it gave, the target daily limit).
 */
export const warmupAnalytics = dailyAggregate(
  "warmup_analytics",
  { mailboxId: uuid("mailbox_id").notNull() },
  {
    ...eventCountColumns(),
    warmupDay: integer("warmup_day").notNull().default(0),
    allowance: integer("allowance").notNull().default(0),
    dailyLimit: integer("daily_limit").notNull().default(0),
  },
);

/**
 * Per tenant and day: emails sent, delivered and bounced, content storage (sampled from the content
 * catalog when the tenant's day is aggregated) and the estimated cost at olapConfig.billing's prices.
 */
export const billingAnalytics = dailyAggregate(
  "billing_analytics",
  {},
  {
    emailsSent: integer("emails_sent").notNull().default(0),
    emailsDelivered: integer("emails_delivered").notNull().default(0),
    emailsBounced: integer("emails_bounced").notNull().default(0),
    storageMb: numeric("storage_mb", { precision: 14, scale: 3, mode: "number" }).notNull().default(0),
    estimatedCost: numeric("estimated_cost", { precision: 14, scale: 4, mode: "number" }).notNull().default(0),
  },
);

/**
 * Compliance: who did which administrative action to which tenant object, when and from where.
 * Append-only for the application role (no UPDATE or DELETE grant, drizzle/olap/0002); written only by
 * the RECORD_AUDIT job under the 'analytics' role, keyed by the job's id so a redelivery inserts nothing.
 * Tenant admins read their tenant's entries, operators every tenant's.
 */
export const adminAuditLog = pgTable(
  "admin_audit_log",
  {
    id: uuid("id").notNull(),
    occurredAt: timestamp("occurred_at", { withTimezone: true, precision: 3 }).notNull(),
    tenantId: uuid("tenant_id"),
    actorId: text("actor_id").notNull(),
    actorRole: text("actor_role").notNull(),
    actorTenantId: uuid("actor_tenant_id"),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
    recordedAt: timestamp("recorded_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "admin_audit_log_pkey", columns: [t.id, t.occurredAt] }),
    index("admin_audit_log_tenant_occurred_idx").on(t.tenantId, t.occurredAt, t.id),
    index("admin_audit_log_occurred_idx").on(t.occurredAt, t.id),
    pgPolicy("admin_audit_log_tenant_admin_read", {
      as: "permissive",
      for: "select",
      using: sql`${t.tenantId} = ${currentTenant} and ${currentRole} = 'admin'`,
    }),
    pgPolicy("admin_audit_log_operator_read", { as: "permissive", for: "select", using: sql`${currentRole} = 'operator'` }),
    pgPolicy("admin_audit_log_writer", { as: "permissive", for: "insert", withCheck: isAnalytics }),
    pgPolicy("admin_audit_log_etl_read", { as: "permissive", for: "select", using: isAnalytics }),
  ],
);

/**
 * Issue 20, OLAP from every tier (src/tiers/olap/etl/tiers.ts). Unpartitioned daily aggregates (a row per tenant,
 * day and channel or job type is small), pruned by row deletes (olap.pruneTierAggregates), under the same RLS.
 *
 * Per notification channel and UTC day a notification was created (a cohort: its deliveries and reads count on
 * the day it was created, so a late read or delivery recomputes that one day): notifications created, outbox
 * deliveries that succeeded and that only failed (email, push, webhook), and reads (one per reader).
 */
export const notificationAnalytics = dailyAggregate(
  "notification_analytics",
  { channel: text("channel").notNull() },
  {
    created: integer("created").notNull().default(0),
    delivered: integer("delivered").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    read: integer("read").notNull().default(0),
  },
);

/**
 * Per job type and UTC day a job was enqueued (the ledger's created_at, a cohort like notifications): jobs enqueued,
 * started, and ended succeeded, failed or dead; total milliseconds from enqueue to start of the started ones and from
 * start to end of the ended ones (averages are totals over counts). Platform jobs (no tenant) are not counted.
 */
export const jobAnalytics = dailyAggregate(
  "job_analytics",
  { type: text("type").notNull() },
  {
    created: integer("created").notNull().default(0),
    started: integer("started").notNull().default(0),
    succeeded: integer("succeeded").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    dead: integer("dead").notNull().default(0),
    waitMs: bigint("wait_ms", { mode: "number" }).notNull().default(0),
    runMs: bigint("run_ms", { mode: "number" }).notNull().default(0),
  },
);

/**
 * Per tenant and UTC day: the content catalog as the day's last aggregation saw it (objects, raw and stored bytes).
 * Sampled for every tenant with content at the day's first run and again whenever a tenant's catalog changes.
 * billing_analytics.storage_mb of the same day is written from the same sample.
 */
export const contentAnalytics = dailyAggregate(
  "content_analytics",
  {},
  {
    objects: integer("objects").notNull().default(0),
    rawBytes: bigint("raw_bytes", { mode: "number" }).notNull().default(0),
    storedBytes: bigint("stored_bytes", { mode: "number" }).notNull().default(0),
  },
);
