// Retention you can see: every table and store with its rule and the cron task that enforces it, the README table rendered from it, and the operator's size report.
import { sql, type SQL } from "drizzle-orm";
import type { DbTier, TierStore } from "../core/db";
import { contentPruning } from "../tiers/content/cron";
import { defaultRetentionDays } from "../tiers/content/schema";
import { jobsConfig } from "../tiers/jobs/config";
import { notificationsConfig } from "../tiers/notifications/config";
import { olapConfig } from "../tiers/olap/config";
import { emailEventRetentionDays } from "../tiers/oltp/schema";
import { internalBatch, rowsOf } from "./scope";

export type RetentionStore = DbTier | "r2" | "redis";

export interface RetentionRule {
  store: RetentionStore;
  /** A table name, an R2 key prefix or a Redis key family. */
  name: string;
  rule: string;
  /** The cron task (name as in src/cron.ts) or procedure that enforces the rule. */
  enforcedBy: string;
  /** For tables: the timestamp the report shows the oldest of and the simulation checks the age of. */
  ageColumn?: string;
  /** Rows whose `ageColumn` is older than this many days must not exist after the enforcing task ran (under `where`). */
  maxAgeDays?: number;
  where?: string;
}

/** Completed erasure receipts are kept this long (proof of erasure), then deleted by lifecycle.pruneErasureRequests. */
export const erasureReceiptDays = 3 * 365;

const tenantLifetime = "kept while the tenant exists; a subject's rows are erased on request";
const onErasure = "lifecycle.eraseSubject (on request)";
const month = 31;

export const retentionRules: RetentionRule[] = [
  // OLTP database
  { store: "oltp", name: "tenants", rule: "kept while the tenant is a customer", enforcedBy: "platform offboarding (manual)", ageColumn: "created_at" },
  { store: "oltp", name: "users", rule: tenantLifetime, enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "api_keys", rule: "kept while the tenant exists; revoked keys stay for audit", enforcedBy: "tenant offboarding", ageColumn: "created_at" },
  { store: "oltp", name: "domains", rule: "kept while the tenant exists", enforcedBy: "tenant offboarding", ageColumn: "created_at" },
  { store: "oltp", name: "mailboxes", rule: "kept while the tenant exists", enforcedBy: "tenant offboarding", ageColumn: "created_at" },
  { store: "oltp", name: "mailbox_warmup", rule: "one row per warming mailbox; a deleted mailbox's mark is removed", enforcedBy: "jobs.pruneSendCounters (hourly)" },
  { store: "oltp", name: "campaigns", rule: "kept while the tenant exists", enforcedBy: "tenant offboarding", ageColumn: "created_at" },
  { store: "oltp", name: "sequence_steps", rule: "go with their campaign", enforcedBy: "cascade from campaigns" },
  { store: "oltp", name: "leads", rule: tenantLifetime, enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "campaign_leads", rule: "go with their lead or campaign", enforcedBy: "cascade from leads", ageColumn: "enrolled_at" },
  { store: "oltp", name: "emails", rule: "metadata kept while the tenant exists; a subject's emails are erased on request", enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "email_events", rule: `${emailEventRetentionDays} days`, enforcedBy: "oltp.pruneEmailEvents", ageColumn: "occurred_at", maxAgeDays: emailEventRetentionDays },
  { store: "oltp", name: "subscriptions", rule: "kept while the tenant exists (billing records)", enforcedBy: "tenant offboarding", ageColumn: "created_at" },
  { store: "oltp", name: "usage_counters", rule: "monthly counts, kept for billing (no personal data)", enforcedBy: "tenant offboarding", ageColumn: "period_start" },
  {
    store: "oltp",
    name: "jobs",
    rule: `succeeded ${jobsConfig.retention.succeededDays} days, failed and dead ${jobsConfig.retention.failedDays} days after completion`,
    enforcedBy: "jobs.prune",
    ageColumn: "completed_at",
    maxAgeDays: jobsConfig.retention.failedDays,
  },
  { store: "oltp", name: "mailbox_daily_sends", rule: "one row per mailbox and day, kept 3 days", enforcedBy: "jobs.pruneSendCounters (hourly)", ageColumn: "day" },
  { store: "oltp", name: "campaign_daily_sends", rule: "one row per campaign and day (its own time zone), kept 4 days", enforcedBy: "jobs.pruneSendCounters (hourly)", ageColumn: "day" },
  {
    store: "oltp",
    name: "content_objects",
    rule: `until unreferenced or expired (tenant retention, default ${defaultRetentionDays} days), except under legal hold`,
    enforcedBy: "content.prune",
    ageColumn: "expires_at",
    maxAgeDays: 0,
    where: "not exists (select 1 from content_settings s where s.tenant_id = t.tenant_id and s.legal_hold)",
  },
  { store: "oltp", name: "email_contents", rule: "goes with its email (emails.delete, erasure)", enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "email_content_parts", rule: "go with their email", enforcedBy: onErasure },
  { store: "oltp", name: "content_settings", rule: "one row per tenant", enforcedBy: "tenant offboarding", ageColumn: "updated_at" },
  {
    store: "oltp",
    name: "content_tombstones",
    rule: `${contentPruning.graceSeconds / 3600} h before the blob is purged, ${contentPruning.graceSeconds / 3600} h after`,
    enforcedBy: "content.prune",
    ageColumn: "tombstoned_at",
    maxAgeDays: 1,
    where: "t.purged_at is null",
  },
  { store: "oltp", name: "erasure_requests", rule: `receipts ${erasureReceiptDays} days after completion`, enforcedBy: "lifecycle.pruneErasureRequests", ageColumn: "completed_at", maxAgeDays: erasureReceiptDays },
  // Notifications database
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
    rule: `sent rows ${notificationsConfig.outbox.sentRetentionDays} days`,
    enforcedBy: "notifications.retention",
    ageColumn: "sent_at",
    maxAgeDays: notificationsConfig.outbox.sentRetentionDays,
  },
  {
    store: "notifications",
    name: "admin_system_events",
    rule: `${notificationsConfig.retention.systemEventDays} days`,
    enforcedBy: "notifications.retention",
    ageColumn: "created_at",
    maxAgeDays: notificationsConfig.retention.systemEventDays,
  },
  // OLAP database (monthly partitions dropped whole)
  { store: "olap", name: "etl_watermarks", rule: "one row per ETL source", enforcedBy: "none needed (bounded)", ageColumn: "updated_at" },
  ...["campaign_analytics", "mailbox_analytics", "lead_analytics", "warmup_analytics", "sequence_step_analytics", "billing_analytics"].map(
    (name): RetentionRule => ({ store: "olap", name, rule: `${olapConfig.retentionMonths} months (whole partitions)`, enforcedBy: "olap.dropExpiredPartitions", ageColumn: "day", maxAgeDays: (olapConfig.retentionMonths + 1) * month }),
  ),
  { store: "olap", name: "admin_audit_log", rule: `${olapConfig.auditRetentionMonths} months (whole partitions)`, enforcedBy: "olap.dropExpiredPartitions", ageColumn: "occurred_at", maxAgeDays: (olapConfig.auditRetentionMonths + 1) * month },
  // R2
  { store: "r2", name: "tenants/<tenant>/objects/", rule: "with their catalog row; orphans after 24 h", enforcedBy: "content.prune, lifecycle.checkConsistency" },
  { store: "r2", name: "imports/<tenant>/", rule: "uploaded lead CSVs (they hold addresses), 7 days after upload", enforcedBy: "jobs.pruneImports (hourly)" },
  { store: "r2", name: "notification-deliveries/", rule: "local provider's record of sends (development only)", enforcedBy: "not used in production" },
  // Redis
  { store: "redis", name: "notif:unread:{tenant}", rule: `${notificationsConfig.unreadCache.keyTtlSeconds / 3600} h after the last write (TTL); counts at most ${notificationsConfig.unreadCache.maxAgeSeconds / 60} min`, enforcedBy: "Redis TTL" },
  { store: "redis", name: "notif:rl:*", rule: "one rate-limit window (TTL set by @upstash/ratelimit)", enforcedBy: "Redis TTL" },
  { store: "redis", name: "auth:{kind}:{email}:tries:*", rule: "one rate-limit window (1 h); erased with the subject", enforcedBy: "Redis TTL, lifecycle.eraseSubject" },
];

export const readmeTableStart = "<!-- retention-table:start -->";
export const readmeTableEnd = "<!-- retention-table:end -->";

/** The README's retention table, rendered from `retentionRules`; a test keeps the README equal to it. */
export function renderRetentionTable(rules = retentionRules): string {
  const lines = ["| store | table / prefix / key family | rule | enforced by |", "| --- | --- | --- | --- |"];
  for (const r of rules) lines.push(`| ${r.store} | \`${r.name}\` | ${r.rule} | ${r.enforcedBy.includes(".") && !r.enforcedBy.includes(" ") ? `\`${r.enforcedBy}\`` : r.enforcedBy} |`);
  return lines.join("\n");
}

export interface TableSize {
  store: DbTier;
  table: string;
  rows: number;
  oldest: string | null;
  rule: string;
  enforcedBy: string;
}

const roleOf: Record<DbTier, "lifecycle" | "analytics"> = { oltp: "lifecycle", notifications: "lifecycle", olap: "analytics" };

/** One statement per database: every table's row count and oldest timestamp, under a role that sees every tenant's rows. */
function sizesStatement(rules: RetentionRule[]): SQL {
  const parts = rules.map((r) => {
    // Epoch seconds, not text: every column type (timestamptz, timestamp, date) and every value (years past 9999,
    // BC, infinity) comes back as one number or null, so the report never has to parse Postgres's text forms.
    const oldest = r.ageColumn ? sql.raw(`extract(epoch from min("${r.ageColumn}"))::float8`) : sql.raw("null::float8");
    const oldestText = r.ageColumn ? sql.raw(`min("${r.ageColumn}")::text`) : sql.raw("null::text");
    return sql`select ${r.name}::text as table_name, count(*)::bigint as row_count, ${oldest} as oldest, ${oldestText} as oldest_text
               from ${sql.raw(`"${r.name}"`)}`;
  });
  return sql.join(parts, sql` union all `);
}

/** The operator's retention report: 3 round trips, one per database. */
export async function retentionReport(stores: Record<DbTier, TierStore>): Promise<TableSize[]> {
  const databases: DbTier[] = ["oltp", "notifications", "olap"];
  const results = await Promise.all(
    databases.map(async (db) => {
      const rules = retentionRules.filter((r) => r.store === db);
      const [result] = await internalBatch(stores[db], roleOf[db], null, (d) => [d.execute(sizesStatement(rules))]);
      const byName = new Map(rowsOf(result).map((row) => [String(row.table_name), row]));
      return rules.map((r): TableSize => {
        const row = byName.get(r.name);
        const epoch = row?.oldest === null || row?.oldest === undefined ? NaN : Number(row.oldest);
        const at = new Date(epoch * 1000);
        const oldest = Number.isFinite(epoch) && !Number.isNaN(at.getTime()) ? at.toISOString() : row?.oldest_text ? String(row.oldest_text) : null;
        return { store: db, table: r.name, rows: Number(row?.row_count ?? 0), oldest, rule: r.rule, enforcedBy: r.enforcedBy };
      });
    }),
  );
  return results.flat();
}

/** Deletes erasure requests whose receipts are past retention (the pruning cron). */
export async function pruneErasureRequests(store: TierStore): Promise<number> {
  const [result] = await internalBatch(store, "lifecycle", null, (db) => [
    db.execute(sql`with d as (delete from erasure_requests where status = 'completed'
                     and completed_at < now() - make_interval(days => ${erasureReceiptDays}) returning 1)
                   select count(*)::int as n from d`),
  ]);
  return Number(rowsOf(result)[0]?.n ?? 0);
}
