// Campaign performance over a range of days, read from campaign_analytics with the freshness it reflects.
import { and, asc, between, eq, sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { emailEventsSource } from "../etl/email-events";
import { campaignAnalytics, etlWatermarks } from "../schema";
import type { Granularity } from "./dashboards";

export interface DayCounts {
  day: string;
  queued: number;
  sent: number;
  delivered: number;
  opened: number;
  replied: number;
  bounced: number;
  failed: number;
  unsubscribed: number;
  clicked: number;
  complained: number;
}

export interface CampaignPerformance {
  campaignId: string;
  from: string;
  to: string;
  /** Only days with facts; a day with none is absent rather than a row of zeros. */
  days: DayCounts[];
  /** The same counts rolled up by the requested granularity, each row keyed by its period's first day (as the other dashboards). */
  granularity: Granularity;
  periods: Array<{ period: string } & Omit<DayCounts, "day">>;
  totals: Omit<DayCounts, "day">;
  /** Shares of sent emails (delivery, bounce) and of delivered ones (open, reply, unsubscribe); null before anything is sent. */
  rates: { delivery: number | null; bounce: number | null; open: number | null; reply: number | null; unsubscribe: number | null };
  /** The source time the aggregates reflect; null until the first aggregation run. */
  reflectsAt: Date | null;
}

/** Weeks start on Monday (ISO), months on the 1st, as in the other dashboards' date_trunc. */
function periodOf(day: string, granularity: Granularity): string {
  if (granularity === "day") return day;
  if (granularity === "month") return `${day.slice(0, 7)}-01`;
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
  return date.toISOString().slice(0, 10);
}

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);

/**
 * One OLAP round trip: the days and the watermark in one transaction. Another tenant's campaign id
 * reads as a campaign with no facts; OLAP cannot tell it from an unknown id without asking OLTP.
 */
export async function campaignPerformance(
  store: TierStore,
  scope: TenantScope,
  input: { campaignId: string; from: string; to: string; granularity?: Granularity | undefined },
): Promise<CampaignPerformance> {
  const [days, marks] = await tenantBatch(store, scope, (db) => [
    db
      .select({
        day: campaignAnalytics.day,
        queued: campaignAnalytics.queued,
        sent: campaignAnalytics.sent,
        delivered: campaignAnalytics.delivered,
        opened: campaignAnalytics.opened,
        replied: campaignAnalytics.replied,
        bounced: campaignAnalytics.bounced,
        failed: campaignAnalytics.failed,
        unsubscribed: campaignAnalytics.unsubscribed,
        clicked: campaignAnalytics.clicked,
        complained: campaignAnalytics.complained,
      })
      .from(campaignAnalytics)
      .where(
        and(
          eq(campaignAnalytics.tenantId, scope.tenantId),
          eq(campaignAnalytics.campaignId, input.campaignId),
          between(campaignAnalytics.day, input.from, input.to),
        ),
      )
      .orderBy(asc(campaignAnalytics.day)),
    db.select({ reflectsAt: etlWatermarks.reflectsAt }).from(etlWatermarks).where(sql`${etlWatermarks.source} = ${emailEventsSource}`),
  ]);
  const totals = { queued: 0, sent: 0, delivered: 0, opened: 0, replied: 0, bounced: 0, failed: 0, unsubscribed: 0, clicked: 0, complained: 0 };
  const granularity = input.granularity ?? "day";
  const periods = new Map<string, { period: string } & typeof totals>();
  for (const day of days) {
    const name = periodOf(day.day, granularity);
    const row = periods.get(name) ?? { period: name, ...Object.fromEntries(Object.keys(totals).map((k) => [k, 0])) as typeof totals };
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) {
      totals[key] += day[key];
      row[key] += day[key];
    }
    periods.set(name, row);
  }
  return {
    campaignId: input.campaignId,
    from: input.from,
    to: input.to,
    days,
    granularity,
    periods: [...periods.values()],
    totals,
    rates: {
      delivery: ratio(totals.delivered, totals.sent),
      bounce: ratio(totals.bounced, totals.sent),
      open: ratio(totals.opened, totals.delivered),
      reply: ratio(totals.replied, totals.delivered),
      unsubscribe: ratio(totals.unsubscribed, totals.delivered),
    },
    reflectsAt: marks[0]?.reflectsAt ?? null,
  };
}
