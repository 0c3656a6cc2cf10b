// Reconciliation: per-campaign totals in OLAP against the source facts in OLTP for a sampled recent window; a mismatch raises a system event.
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import type { Services } from "../../../platform/services";
import { olapConfig } from "../config";
import { emailEventsSource, eventCounts } from "../etl/email-events";

type Counts = Record<(typeof eventCounts)[number], number>;

export interface CampaignMismatch {
  tenantId: string;
  campaignId: string;
  type: string;
  olap: number;
  /** Emails surely aggregated (all their facts of the kind below the watermark) and all with a fact now: OLAP must lie in between. */
  source: { aggregated: number; now: number };
}

export interface Reconciliation {
  from: string;
  to: string;
  checkedCampaigns: number;
  mismatches: CampaignMismatch[];
}

const utcDay = (at: Date, offset = 0) => new Date(at.getTime() + offset * 86_400_000).toISOString().slice(0, 10);

/**
 * Three round trips (OLAP watermark, OLTP sample and counts, OLAP totals). An aggregate may include
 * facts recorded above its watermark (a run recomputes whole days from every visible fact), so an
 * exact comparison would flag healthy data: OLAP must count at least the facts recorded below the
 * watermark and at most the facts that exist now, per campaign and event type.
 */
export async function reconcileCampaignTotals(
  oltp: TierStore,
  olap: TierStore,
  options: { now: Date; windowDays?: number; sampleCampaigns?: number; tenantId?: string },
): Promise<Reconciliation> {
  const now = options.now;
  const windowDays = options.windowDays ?? olapConfig.reconciliation.windowDays;
  const from = utcDay(now, -(windowDays - 1));
  const to = utcDay(now);
  const [marks] = await internalBatch(olap, "analytics", null, (db) => [
    db.execute<{ position: string }>(sql`select position::text as position from etl_watermarks where source = ${emailEventsSource}`),
  ]);
  const position = marks.rows[0]?.position ?? "0";
  const inWindow = (at: string) =>
    `${at} >= ('${from}'::date)::timestamp at time zone 'UTC' and ${at} < ('${to}'::date + 1)::timestamp at time zone 'UTC'`;
  const counts = (filter: string) => sql.raw(eventCounts.map((t) => `count(*) filter (where f.type = '${t}' and ${filter})::int`).join(", "));
  const below = /^\d+$/.test(position) ? position : "0";
  // OLAP counts an email once per kind, on the day of its first fact of that kind. So it must count at least
  // the emails whose first fact is in the window and whose facts of that kind were all recorded below the
  // watermark, and at most the emails with a fact of that kind in the window.
  const [source] = await internalBatch(oltp, "analytics", null, (db) => [
    db.execute<{ tenant_id: string; campaign_id: string; aggregated: number[]; now: number[] }>(sql`
      with sample as (
        select * from (
          select distinct m.tenant_id, m.campaign_id
          from email_events ev join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
          where ev.occurred_at >= (${from}::date)::timestamp at time zone 'UTC'
            and ev.occurred_at < (${to}::date + 1)::timestamp at time zone 'UTC'
            and m.campaign_id is not null ${options.tenantId ? sql`and ev.tenant_id = ${options.tenantId}` : sql``}
        ) active
        order by random() limit ${options.sampleCampaigns ?? olapConfig.reconciliation.sampleCampaigns}
      ), facts as (
        select s.tenant_id, s.campaign_id, ev.email_id, ev.type, min(ev.occurred_at) as first_at,
               bool_and(ev.recorded_xid < ${below}::xid8) as all_aggregated,
               bool_or(${sql.raw(inWindow("ev.occurred_at"))}) as any_in_window
        from sample s join emails m on m.tenant_id = s.tenant_id and m.campaign_id = s.campaign_id
        join email_events ev on ev.tenant_id = m.tenant_id and ev.email_id = m.id
        group by s.tenant_id, s.campaign_id, ev.email_id, ev.type
      )
      select f.tenant_id, f.campaign_id,
             array[${counts(`${inWindow("f.first_at")} and f.all_aggregated`)}] as aggregated,
             array[${counts("f.any_in_window")}] as now
      from facts f
      group by f.tenant_id, f.campaign_id`),
  ]);
  const sampled = source.rows;
  if (sampled.length === 0) return { from, to, checkedCampaigns: 0, mismatches: [] };
  const [totals] = await internalBatch(olap, "analytics", null, (db) => [
    db.execute<{ tenant_id: string; campaign_id: string } & Counts>(sql`
      select a.tenant_id, a.campaign_id, ${sql.raw(eventCounts.map((t) => `sum(a."${t}")::int as "${t}"`).join(", "))}
      from campaign_analytics a
      join jsonb_to_recordset(${JSON.stringify(sampled.map((s) => ({ tenant_id: s.tenant_id, campaign_id: s.campaign_id })))}::jsonb)
        as s(tenant_id uuid, campaign_id uuid) on s.tenant_id = a.tenant_id and s.campaign_id = a.campaign_id
      where a.day between ${from}::date and ${to}::date
      group by a.tenant_id, a.campaign_id`),
  ]);
  const olapTotals = new Map(totals.rows.map((r) => [`${r.tenant_id}/${r.campaign_id}`, r]));
  const mismatches: CampaignMismatch[] = [];
  for (const row of sampled) {
    const olapRow = olapTotals.get(`${row.tenant_id}/${row.campaign_id}`);
    eventCounts.forEach((type, i) => {
      const value = Number(olapRow?.[type] ?? 0);
      const aggregated = Number(row.aggregated[i]);
      const current = Number(row.now[i]);
      if (value < aggregated || value > current) {
        mismatches.push({ tenantId: row.tenant_id, campaignId: row.campaign_id, type, olap: value, source: { aggregated, now: current } });
      }
    });
  }
  return { from, to, checkedCampaigns: sampled.length, mismatches };
}

/** The consistency cron's check: a mismatch raises one platform-wide system event, repeats counted on it while open. */
export async function reconcileAndRaise(services: Services): Promise<Reconciliation> {
  const result = await reconcileCampaignTotals(services.store("oltp"), services.store("olap"), { now: services.clock.now() });
  if (result.mismatches.length > 0) {
    services.logger.error("analytics do not match their source facts", { mismatches: result.mismatches.length, from: result.from, to: result.to });
    await services.systemEvents.raise({
      eventType: "analytics_mismatch",
      severity: "high",
      description: `Campaign analytics differ from their source facts for ${new Set(result.mismatches.map((m) => m.campaignId)).size} campaign(s); an operator rebuild (analytics.rebuild) recomputes them`,
      details: { from: result.from, to: result.to, mismatches: result.mismatches.slice(0, 20) },
      dedupKey: "olap.reconciliation_mismatch",
    });
  }
  return result;
}
