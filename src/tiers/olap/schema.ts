// OLAP tier schema (Neon, OLAP_DATABASE_URL): campaign aggregates partitioned by month and the ETL's watermarks, under forced RLS.
import { sql } from "drizzle-orm";
import { bigint, date, integer, pgPolicy, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { currentRole, currentTenant } from "../../core/rls";

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

/**
 * Per campaign and UTC day of the fact's own time, counts of email events by type. Range-partitioned
 * by month (drizzle/olap/0001_campaign_analytics.sql): partitions are created ahead by the
 * aggregation cron and dropped by retention through the owner's functions olap_ensure_partitions
 * and olap_drop_partitions_before, because the application role cannot create tables.
 */
export const campaignAnalytics = pgTable(
  "campaign_analytics",
  {
    tenantId: uuid("tenant_id").notNull(),
    campaignId: uuid("campaign_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    queued: integer("queued").notNull().default(0),
    sent: integer("sent").notNull().default(0),
    delivered: integer("delivered").notNull().default(0),
    opened: integer("opened").notNull().default(0),
    replied: integer("replied").notNull().default(0),
    bounced: integer("bounced").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    unsubscribed: integer("unsubscribed").notNull().default(0),
    updatedAt: timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "campaign_analytics_pkey", columns: [t.tenantId, t.campaignId, t.day] }),
    pgPolicy("campaign_analytics_tenant_read", { as: "permissive", for: "select", using: sql`${t.tenantId} = ${currentTenant}` }),
    pgPolicy("campaign_analytics_etl", { as: "permissive", for: "all", using: isAnalytics, withCheck: isAnalytics }),
  ],
);

