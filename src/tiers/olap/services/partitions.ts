// Monthly partition maintenance of the OLAP aggregates: created ahead, dropped after retention.
import { sql } from "drizzle-orm";
import type { TierStore } from "../../../core/db";
import { olapConfig } from "../config";
import { analyticsBatch } from "./analytics-scope";

/** First day of the UTC month `offset` months from `at`, as YYYY-MM-DD. */
export function monthStart(at: Date, offset = 0): string {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

/** Makes sure every month from the current one to the horizon has its partition; returns how many were created. */
export async function ensureAheadPartitions(store: TierStore, now = new Date(), config = olapConfig): Promise<number> {
  const results = await analyticsBatch(store, (db) => [
    db.execute<{ created: number }>(sql`
      select olap_ensure_partitions('campaign_analytics', ${monthStart(now)}::date, ${monthStart(now, config.partitionsAheadMonths)}::date) as created`),
  ]);
  return results[0].rows[0]?.created ?? 0;
}

/** Drops the partitions of months wholly older than the retention; returns how many were dropped. */
export async function dropExpiredPartitions(store: TierStore, now = new Date(), config = olapConfig): Promise<number> {
  const results = await analyticsBatch(store, (db) => [
    db.execute<{ dropped: number }>(sql`
      select olap_drop_partitions_before('campaign_analytics', ${monthStart(now, -config.retentionMonths)}::date) as dropped`),
  ]);
  return results[0].rows[0]?.dropped ?? 0;
}
