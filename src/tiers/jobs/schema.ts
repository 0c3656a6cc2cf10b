// Jobs tier tables, migrated with the OLTP database (drizzle/oltp): the job ledger, daily send counters and warmup days.
import { sql } from "drizzle-orm";
import { check, date, index, integer, jsonb, pgPolicy, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { jobQueues } from "../../platform/jobs/define";
import { jobStatuses } from "../../platform/jobs/rows";
import { currentRole, currentTenant, tenantIsolation } from "../../platform/rls";

export { jobStatuses };
/** The ledger's `priority` is the queue that carries the job. */
export const jobPriorities = jobQueues;

/**
 * The consumer, the relay and retention act for the platform across tenants with
 * app.current_role = 'system' (JWT roles can never be 'system'); operators read and redrive
 * every tenant's jobs. Tenants see and create only their own.
 */
const isSystem = sql`${currentRole} = 'system'`;
const isOperator = sql`${currentRole} = 'operator'`;

/**
 * One row per job: what to do (type and a payload of references, never big data), where it is
 * (status, attempts, progress) and how it ended. `tenant_id` NULL is a platform job.
 */
export const jobs = pgTable(
  "jobs",
  {
    /** Time-ordered (src/platform/ids.ts, uuid_v7() by default): ledger rows are inserted in batches. */
    id: uuid("id").primaryKey().default(sql`uuid_v7()`),
    tenantId: uuid("tenant_id"),
    type: text("type").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default({}),
    priority: text("priority").notNull(),
    status: text("status").notNull().default("pending"),
    /** Attempts that ran and failed or are running; a retry caused by an unavailable tier gives its attempt back. */
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    lastError: text("last_error"),
    /** Handler-defined progress (e.g. rows done / total, row errors), shown by jobs.get. */
    progress: jsonb("progress").$type<Record<string, unknown>>(),
    idempotencyKey: text("idempotency_key"),
    /** The queue the last delivery came from, so operators see where a job actually ran. */
    lastQueue: text("last_queue"),
    /** When the job is next due: enqueue time, or the end of a retry's backoff. The relay re-sends overdue rows. */
    scheduledAt: timestamp("scheduled_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    startedAt: timestamp("started_at", { withTimezone: true, precision: 3 }),
    completedAt: timestamp("completed_at", { withTimezone: true, precision: 3 }),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("jobs_idempotency_key")
      .on(sql`coalesce(${t.tenantId}, '00000000-0000-0000-0000-000000000000'::uuid)`, t.type, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index("jobs_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("jobs_status_scheduled_idx").on(t.status, t.scheduledAt),
    index("jobs_status_completed_idx").on(t.status, t.completedAt),
    check("jobs_status_check", sql`${t.status} in ('pending', 'running', 'succeeded', 'failed', 'dead')`),
    check("jobs_priority_check", sql`${t.priority} in ('high', 'normal', 'low')`),
    check("jobs_attempts_check", sql`${t.attempts} >= 0 and ${t.maxAttempts} between 1 and 20`),
    pgPolicy("jobs_tenant_isolation", {
      as: "permissive",
      for: "all",
      using: sql`${t.tenantId} = ${currentTenant}`,
      withCheck: sql`${t.tenantId} = ${currentTenant}`,
    }),
    pgPolicy("jobs_system", { as: "permissive", for: "all", using: isSystem, withCheck: isSystem }),
    pgPolicy("jobs_operator_read", { as: "permissive", for: "select", using: isOperator }),
    pgPolicy("jobs_operator_redrive", { as: "permissive", for: "update", using: isOperator, withCheck: isOperator }),
  ],
);

export type JobRow = typeof jobs.$inferSelect;

/**
 * Sends reserved per mailbox and UTC day by SEND_EMAIL. The reservation is one conditional upsert
 * (`sent < the day's allowance`), so concurrent consumers can never exceed a mailbox's limit.
 */
export const mailboxDailySends = pgTable(
  "mailbox_daily_sends",
  {
    tenantId: uuid("tenant_id").notNull(),
    mailboxId: uuid("mailbox_id").notNull(),
    day: date("day").notNull(),
    sent: integer("sent").notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "mailbox_daily_sends_pkey", columns: [t.tenantId, t.mailboxId, t.day] }),
    check("mailbox_daily_sends_sent_check", sql`${t.sent} >= 0`),
    tenantIsolation("mailbox_daily_sends", t.tenantId),
    // Pruning deletes old days across tenants.
    pgPolicy("mailbox_daily_sends_system", { as: "permissive", for: "all", using: isSystem, withCheck: isSystem }),
  ],
);

/**
 * Sends reserved per campaign and day, the day taken in the campaign's own time zone, by the same
 * kind of conditional upsert against campaigns.daily_limit, in the same statement batch as the mailbox's.
 */
export const campaignDailySends = pgTable(
  "campaign_daily_sends",
  {
    tenantId: uuid("tenant_id").notNull(),
    campaignId: uuid("campaign_id").notNull(),
    day: date("day").notNull(),
    sent: integer("sent").notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "campaign_daily_sends_pkey", columns: [t.tenantId, t.campaignId, t.day] }),
    check("campaign_daily_sends_sent_check", sql`${t.sent} >= 0`),
    tenantIsolation("campaign_daily_sends", t.tenantId),
    pgPolicy("campaign_daily_sends_system", { as: "permissive", for: "all", using: isSystem, withCheck: isSystem }),
  ],
);

/**
 * The UTC day each warming mailbox's warmup_day was last advanced by the daily task: a second run
 * the same day finds every mailbox already advanced and changes nothing.
 */
export const mailboxWarmup = pgTable(
  "mailbox_warmup",
  {
    tenantId: uuid("tenant_id").notNull(),
    mailboxId: uuid("mailbox_id").notNull(),
    advancedOn: date("advanced_on").notNull(),
  },
  (t) => [
    primaryKey({ name: "mailbox_warmup_pkey", columns: [t.tenantId, t.mailboxId] }),
    tenantIsolation("mailbox_warmup", t.tenantId),
    pgPolicy("mailbox_warmup_system", { as: "permissive", for: "all", using: isSystem, withCheck: isSystem }),
  ],
);

/**
 * Emails the sequencer created per campaign, mailbox and UTC day (the mailbox's day, as SEND_EMAIL
 * counts it): it plans no more of a day's sends than the mailbox, the campaign and the tenant allow,
 * so a lead's next step is moved to a later day instead of piling up deferred sends.
 */
export const sequencerDailyPlans = pgTable(
  "sequencer_daily_plans",
  {
    tenantId: uuid("tenant_id").notNull(),
    campaignId: uuid("campaign_id").notNull(),
    mailboxId: uuid("mailbox_id").notNull(),
    day: date("day").notNull(),
    planned: integer("planned").notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "sequencer_daily_plans_pkey", columns: [t.tenantId, t.campaignId, t.mailboxId, t.day] }),
    check("sequencer_daily_plans_planned_check", sql`${t.planned} >= 0`),
    tenantIsolation("sequencer_daily_plans", t.tenantId),
    pgPolicy("sequencer_daily_plans_system", { as: "permissive", for: "all", using: isSystem, withCheck: isSystem }),
  ],
);
