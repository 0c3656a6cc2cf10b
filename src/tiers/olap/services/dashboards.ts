// Dashboard reads of the daily aggregates (mailbox health with warmup, lead engagement, sequence funnel, billing usage): 1 OLAP round trip each.
import { sql, type SQL } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { emailEventsSource, eventCounts } from "../etl/email-events";

export const granularities = ["day", "week", "month"] as const;
export type Granularity = (typeof granularities)[number];

export interface RangeInput {
  from: string;
  to: string;
  granularity: Granularity;
}

type Counts = Record<(typeof eventCounts)[number], number>;
export type PeriodCounts = { period: string } & Counts;

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);
const sums = sql.raw(eventCounts.map((c) => `sum("${c}")::int as "${c}"`).join(", "));
/** Weeks start on Monday (ISO), months on the 1st; a period is named by its first day. */
const period = (granularity: Granularity) => sql`to_char(date_trunc(${granularity}::text, day::timestamp), 'YYYY-MM-DD')`;
const inRange = (input: RangeInput) => sql`day between ${input.from}::date and ${input.to}::date`;
const reflects = sql`(select reflects_at from etl_watermarks where source = ${emailEventsSource})`;

/** A label copied at aggregation, as of the range's latest day that has one. */
const latest = (column: string) => sql.raw(`(array_agg("${column}" order by day desc) filter (where "${column}" is not null))[1]`);
const textOf = (value: unknown) => (value === null || value === undefined ? null : String(value));

const countsOf = (row: Record<string, unknown>): Counts =>
  Object.fromEntries(eventCounts.map((c) => [c, Number(row[c] ?? 0)])) as Counts;
const reflectsAtOf = (rows: Record<string, unknown>[]) => {
  const value = rows[0]?.reflects_at;
  return value ? new Date(String(value)) : null;
};
const totalsOf = (rows: Counts[]): Counts => {
  const totals = countsOf({});
  for (const row of rows) for (const c of eventCounts) totals[c] += row[c];
  return totals;
};

async function read(store: TierStore, scope: TenantScope, statements: SQL[]) {
  const results = await tenantBatch(store, scope, (db) => [
    db.execute<Record<string, unknown>>(sql`select ${reflects} as reflects_at`),
    ...statements.map((s) => db.execute<Record<string, unknown>>(s)),
  ]);
  return results.map((r) => (r as { rows: Record<string, unknown>[] }).rows);
}

export interface MailboxHealth {
  mailboxes: Array<{
    mailboxId: string;
    periods: PeriodCounts[];
    totals: Counts;
    rates: { delivery: number | null; bounce: number | null; reply: number | null };
    /** Where the warmup ramp stood at the last aggregated day; null for a mailbox not warming up. */
    warmup: { day: string; warmupDay: number; allowance: number; dailyLimit: number; progress: number | null } | null;
  }>;
  reflectsAt: Date | null;
}

/** Per mailbox of the tenant (or one), counts by period, delivery and bounce rates, and warmup progress. */
export async function mailboxHealth(store: TierStore, scope: TenantScope, input: RangeInput & { mailboxId?: string | undefined }): Promise<MailboxHealth> {
  const only = input.mailboxId ? sql`and mailbox_id = ${input.mailboxId}` : sql``;
  const [marks, periods, warmup] = await read(store, scope, [
    sql`select mailbox_id, ${period(input.granularity)} as period, ${sums} from mailbox_analytics
        where tenant_id = ${scope.tenantId} and ${inRange(input)} ${only} group by 1, 2 order by 1, 2`,
    sql`select distinct on (mailbox_id) mailbox_id, to_char(day, 'YYYY-MM-DD') as day, warmup_day, allowance, daily_limit
        from warmup_analytics where tenant_id = ${scope.tenantId} and ${inRange(input)} ${only}
        order by mailbox_id, day desc`,
  ]);
  const byMailbox = new Map<string, PeriodCounts[]>();
  for (const row of periods!) {
    const list = byMailbox.get(String(row.mailbox_id)) ?? [];
    list.push({ period: String(row.period), ...countsOf(row) });
    byMailbox.set(String(row.mailbox_id), list);
  }
  const ramps = new Map(warmup!.map((w) => [String(w.mailbox_id), w]));
  return {
    mailboxes: [...byMailbox].map(([mailboxId, rows]) => {
      const totals = totalsOf(rows);
      const ramp = ramps.get(mailboxId);
      return {
        mailboxId,
        periods: rows,
        totals,
        rates: { delivery: ratio(totals.delivered, totals.sent), bounce: ratio(totals.bounced, totals.sent), reply: ratio(totals.replied, totals.delivered) },
        warmup: ramp
          ? {
              day: String(ramp.day),
              warmupDay: Number(ramp.warmup_day),
              allowance: Number(ramp.allowance),
              dailyLimit: Number(ramp.daily_limit),
              progress: ratio(Number(ramp.allowance), Number(ramp.daily_limit)),
            }
          : null,
      };
    }),
    reflectsAt: reflectsAtOf(marks!),
  };
}

export interface LeadEngagement {
  periods: PeriodCounts[];
  totals: Counts;
  /** The most engaged leads of the range (replies, then opens), at most `top`. */
  topLeads: Array<{ leadId: string; email: string | null; name: string | null } & Counts>;
  reflectsAt: Date | null;
}

export async function leadEngagement(
  store: TierStore,
  scope: TenantScope,
  input: RangeInput & { leadId?: string | undefined; top: number },
): Promise<LeadEngagement> {
  const only = input.leadId ? sql`and lead_id = ${input.leadId}` : sql``;
  const [marks, periods, top] = await read(store, scope, [
    sql`select ${period(input.granularity)} as period, ${sums} from lead_analytics
        where tenant_id = ${scope.tenantId} and ${inRange(input)} ${only} group by 1 order by 1`,
    sql`select lead_id, ${latest("lead_email")} as lead_email, ${latest("lead_name")} as lead_name, ${sums} from lead_analytics
        where tenant_id = ${scope.tenantId} and ${inRange(input)} ${only}
        group by lead_id order by sum(replied) desc, sum(opened) desc, lead_id limit ${input.top}`,
  ]);
  const rows = periods!.map((r) => ({ period: String(r.period), ...countsOf(r) }));
  return {
    periods: rows,
    totals: totalsOf(rows),
    topLeads: top!.map((r) => ({ leadId: String(r.lead_id), email: textOf(r.lead_email), name: textOf(r.lead_name), ...countsOf(r) })),
    reflectsAt: reflectsAtOf(marks!),
  };
}

export interface SequenceFunnel {
  campaignId: string;
  /** Steps by emails sent, most first (a sequence's earlier steps reach more leads); OLTP knows their positions. */
  steps: Array<{ stepId: string; position: number | null; subject: string | null } & Counts & { rates: { delivery: number | null; open: number | null; reply: number | null } }>;
  reflectsAt: Date | null;
}

export async function sequenceFunnel(store: TierStore, scope: TenantScope, input: { campaignId: string; from: string; to: string }): Promise<SequenceFunnel> {
  const [marks, steps] = await read(store, scope, [
    sql`select step_id, ${latest("step_position")} as step_position, ${latest("step_subject")} as step_subject, ${sums} from sequence_step_analytics
        where tenant_id = ${scope.tenantId} and campaign_id = ${input.campaignId} and day between ${input.from}::date and ${input.to}::date
        group by step_id order by sum(sent) desc, step_id`,
  ]);
  return {
    campaignId: input.campaignId,
    steps: steps!.map((r) => {
      const counts = countsOf(r);
      return {
        stepId: String(r.step_id),
        position: r.step_position === null || r.step_position === undefined ? null : Number(r.step_position),
        subject: textOf(r.step_subject),
        ...counts,
        rates: { delivery: ratio(counts.delivered, counts.sent), open: ratio(counts.opened, counts.delivered), reply: ratio(counts.replied, counts.delivered) },
      };
    }),
    reflectsAt: reflectsAtOf(marks!),
  };
}

export interface BillingPeriod {
  period: string;
  emailsSent: number;
  emailsDelivered: number;
  emailsBounced: number;
  /** The largest storage sampled in the period. */
  storageMb: number;
  estimatedCost: number;
}

export interface BillingUsage {
  periods: BillingPeriod[];
  totals: Omit<BillingPeriod, "period">;
  reflectsAt: Date | null;
}

export async function billingUsage(store: TierStore, scope: TenantScope, input: RangeInput): Promise<BillingUsage> {
  const [marks, periods] = await read(store, scope, [
    sql`select ${period(input.granularity)} as period, sum(emails_sent)::int as emails_sent, sum(emails_delivered)::int as emails_delivered,
               sum(emails_bounced)::int as emails_bounced, max(storage_mb)::float8 as storage_mb, sum(estimated_cost)::float8 as estimated_cost
        from billing_analytics where tenant_id = ${scope.tenantId} and ${inRange(input)} group by 1 order by 1`,
  ]);
  const rows = periods!.map((r) => ({
    period: String(r.period),
    emailsSent: Number(r.emails_sent),
    emailsDelivered: Number(r.emails_delivered),
    emailsBounced: Number(r.emails_bounced),
    storageMb: Number(r.storage_mb),
    estimatedCost: Number(r.estimated_cost),
  }));
  const totals = { emailsSent: 0, emailsDelivered: 0, emailsBounced: 0, storageMb: 0, estimatedCost: 0 };
  for (const row of rows) {
    totals.emailsSent += row.emailsSent;
    totals.emailsDelivered += row.emailsDelivered;
    totals.emailsBounced += row.emailsBounced;
    totals.storageMb = Math.max(totals.storageMb, row.storageMb);
    totals.estimatedCost = Math.round((totals.estimatedCost + row.estimatedCost) * 10_000) / 10_000;
  }
  return { periods: rows, totals, reflectsAt: reflectsAtOf(marks!) };
}
