// Incremental ETL of OLTP email events into campaign_analytics: read from a watermark, recompute the touched days, upsert.
import { sql, type SQL } from "drizzle-orm";
import type { TierStore } from "../../../core/db";
import { olapConfig } from "../config";
import { campaignAnalytics, etlWatermarks } from "../schema";
import { analyticsBatch } from "../services/analytics-scope";
import { monthStart } from "../services/partitions";

export const campaignEventsSource = "email_events";

const eventCounts = ["queued", "sent", "delivered", "opened", "replied", "bounced", "failed", "unsubscribed"] as const;
type EventCount = (typeof eventCounts)[number];

export type CampaignDay = { tenant_id: string; campaign_id: string; day: string } & Record<EventCount, number>;

export interface AggregationRun {
  /** (tenant, campaign, day) keys recomputed from the source. */
  recomputed: number;
  /** False when another run moved the watermark first: this run wrote nothing, that one covers it. */
  advanced: boolean;
  reflectsAt: Date;
}

/**
 * One incremental run: 3 round trips whatever the volume (OLAP watermark, OLTP read, OLAP write).
 *
 * Why the keys are recomputed rather than incremented: a run reads every fact recorded by a transaction
 * between the watermark and the oldest transaction still running (pg_snapshot_xmin), so nothing that
 * commits late is ever skipped; facts of transactions that committed above that bound are visible
 * too and are read again next run. Recomputing each touched (tenant, campaign, day) from all of its
 * source facts makes reading a fact twice harmless, and a fact that occurred days ago lands in its own day.
 */
export async function aggregateCampaignEvents(oltp: TierStore, olap: TierStore): Promise<AggregationRun> {
  const [marks] = await analyticsBatch(olap, (db) => [
    db.select({ position: etlWatermarks.position }).from(etlWatermarks).where(sql`${etlWatermarks.source} = ${campaignEventsSource}`),
  ]);
  const low = marks[0]?.position ?? 0n;

  const [read] = await analyticsBatch(oltp, (db) => [
    db.execute<{ high: string; at: string; rows: CampaignDay[] }>(sql`
      with bounds as (
        select ${low.toString()}::xid8 as low, pg_snapshot_xmin(pg_current_snapshot()) as high
      ), touched as (
        select distinct ev.tenant_id, m.campaign_id, (ev.occurred_at at time zone 'UTC')::date as day
        from email_events ev
        join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
        cross join bounds b
        where ev.recorded_xid >= b.low and ev.recorded_xid < b.high and m.campaign_id is not null
      )
      select (select high::text from bounds) as high, now() as at,
             coalesce((select json_agg(row_to_json(x)) from (
               select t.tenant_id, t.campaign_id, t.day, c.*
               from touched t cross join lateral (${sourceCounts(sql`t.tenant_id`, sql`t.campaign_id`, sql`t.day`)}) c
             ) x), '[]'::json) as rows`),
  ]);
  const { high, at, rows } = read.rows[0]!;
  return writeCampaignDays(olap, { low, high: BigInt(high), reflectsAt: new Date(at), rows });
}

/** Counts by type of one campaign's facts that occurred on one UTC day. */
function sourceCounts(tenantId: SQL, campaignId: SQL, day: SQL) {
  const columns = sql.join(
    eventCounts.map((type) => sql`count(*) filter (where ev.type = ${type})::int as ${sql.identifier(type)}`),
    sql`, `,
  );
  return sql`
    select ${columns}
    from email_events ev join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
    where ev.tenant_id = ${tenantId} and m.campaign_id = ${campaignId}
      and ev.occurred_at >= (${day})::timestamp at time zone 'UTC'
      and ev.occurred_at < ((${day}) + 1)::timestamp at time zone 'UTC'`;
}

/**
 * Writes recomputed days and moves the watermark in one OLAP transaction. The watermark moves only if
 * it still holds the value this run started from (compare-and-set in the same statement as the
 * upserts), so two overlapping runs never interleave their writes.
 */
async function writeCampaignDays(
  olap: TierStore,
  run: { low: bigint; high: bigint; reflectsAt: Date; rows: CampaignDay[] },
): Promise<AggregationRun> {
  // Facts older than the retention would only recreate partitions that pruning drops again.
  const oldest = monthStart(run.reflectsAt, -olapConfig.retentionMonths);
  const rows = run.rows.filter((r) => r.day >= oldest);
  const days = rows.map((r) => r.day).sort();
  const write = sql`
    with advanced as (
      update ${etlWatermarks} set position = ${run.high.toString()}::bigint, reflects_at = ${run.reflectsAt.toISOString()}::timestamptz, updated_at = now()
      where source = ${campaignEventsSource} and position = ${run.low.toString()}::bigint
      returning 1
    ), upserted as (
      insert into ${campaignAnalytics} (tenant_id, campaign_id, day, ${sql.join(eventCounts.map((c) => sql.identifier(c)), sql`, `)})
      select r.tenant_id, r.campaign_id, r.day, ${sql.join(eventCounts.map((c) => sql`r.${sql.identifier(c)}`), sql`, `)}
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(tenant_id uuid, campaign_id uuid, day date, ${sql.raw(eventCounts.map((c) => `${c} int`).join(", "))})
      where exists (select 1 from advanced)
      on conflict (tenant_id, campaign_id, day) do update set
        ${sql.join(eventCounts.map((c) => sql`${sql.identifier(c)} = excluded.${sql.identifier(c)}`), sql`, `)}, updated_at = now()
    )
    select count(*)::int as advanced from advanced`;
  const results =
    days.length > 0
      ? await analyticsBatch(olap, (db) => [
          db.execute(sql`select olap_ensure_partitions('campaign_analytics', ${days[0]}::date, ${days[days.length - 1]}::date)`),
          db.execute<{ advanced: number }>(write),
        ])
      : await analyticsBatch(olap, (db) => [db.execute<{ advanced: number }>(write)]);
  const advanced = (results[results.length - 1] as { rows: { advanced: number }[] }).rows[0]?.advanced === 1;
  return { recomputed: advanced ? rows.length : 0, advanced, reflectsAt: run.reflectsAt };
}
