// Monthly partition maintenance of the OLAP tables: created ahead, dropped after retention.
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import { olapConfig } from "../config";

/** Every month-partitioned OLAP table (the owner's partition functions accept exactly these). */
export const aggregateTables = [
  "campaign_analytics",
  "mailbox_analytics",
  "lead_analytics",
  "warmup_analytics",
  "sequence_step_analytics",
  "billing_analytics",
] as const;
export const partitionedTables = [...aggregateTables, "admin_audit_log"] as const;

const tableArray = (tables: readonly string[]) => `{${tables.join(",")}}`;

/** First day of the UTC month `offset` months from `at`, as YYYY-MM-DD. */
export function monthStart(at: Date, offset = 0): string {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

/** Makes sure every month from the current one to the horizon has its partition in every table; returns how many were created. */
export async function ensureAheadPartitions(store: TierStore, now: Date, config = olapConfig): Promise<number> {
  const results = await internalBatch(store, "analytics", null, (db) => [
    db.execute<{ created: number }>(sql`
      select coalesce(sum(olap_ensure_partitions(t, ${monthStart(now)}::date, ${monthStart(now, config.partitionsAheadMonths)}::date)), 0)::int as created
      from unnest(${tableArray(partitionedTables)}::text[]) as t`),
  ]);
  return results[0].rows[0]?.created ?? 0;
}

/** Drops the partitions of months wholly older than the retention (the audit log's own, longer one); returns how many. */
export async function dropExpiredPartitions(store: TierStore, now: Date, config = olapConfig): Promise<number> {
  const results = await internalBatch(store, "analytics", null, (db) => [
    db.execute<{ dropped: number }>(sql`
      select (coalesce(sum(olap_drop_partitions_before(t, ${monthStart(now, -config.retentionMonths)}::date)), 0)
              + olap_drop_partitions_before('admin_audit_log', ${monthStart(now, -config.auditRetentionMonths)}::date))::int as dropped
      from unnest(${tableArray(aggregateTables)}::text[]) as t`),
  ]);
  return results[0].rows[0]?.dropped ?? 0;
}

/** The unpartitioned daily aggregates of the other tiers (issue 20): their retention deletes rows by day. */
export const tierAggregateTables = ["notification_analytics", "job_analytics", "content_analytics"] as const;

/** Deletes the days of the tier aggregates wholly older than the retention (the same months as the partitions); returns how many rows. */
export async function pruneTierAggregates(store: TierStore, now: Date, config = olapConfig): Promise<number> {
  const before = monthStart(now, -config.retentionMonths);
  const results = await internalBatch(store, "analytics", null, (db) =>
    tierAggregateTables.map((table) => db.execute(sql`delete from ${sql.identifier(table)} where day < ${before}::date`)) as [ReturnType<typeof db.execute>, ...ReturnType<typeof db.execute>[]],
  );
  return results.reduce((sum, r) => sum + Number((r as { rowCount?: number | null }).rowCount ?? 0), 0);
}
