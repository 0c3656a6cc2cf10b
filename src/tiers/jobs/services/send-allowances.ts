// Daily upkeep of send allowances: warming mailboxes ramp up once a day; old mailbox, campaign and sequencer counters are pruned.
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import { rowsOf } from "../../../platform/rows";
import type { JobsConfig } from "../config";

/** Statements per run at most, so a very large estate is spread over a few nights rather than one long run. */
const maxStatementsPerRun = 20;

const utcToday = sql`(now() at time zone 'UTC')::date`;

/**
 * Advances warmup_day by one for every active warming mailbox on a verified domain, created before today (UTC), whose ramp
 * has not yet reached its daily limit, and records today in mailbox_warmup in the same statement:
 * a mailbox already advanced today is skipped, so running the task twice a day advances once.
 * Returns the number of mailboxes advanced.
 */
export async function advanceWarmupDays(store: TierStore, config: JobsConfig["sendEmail"]): Promise<number> {
  let advanced = 0;
  for (let statement = 0; statement < maxStatementsPerRun; statement++) {
    const [result] = await internalBatch(store, "system", null, (db) => [
      db.execute(sql`
        with due as (
          select m.tenant_id, m.id from mailboxes m
          where m.warmup_enabled and m.status = 'active'
            -- A mailbox whose domain is not verified sends nothing, so it does not ramp up either.
            and exists (select 1 from domains d where d.tenant_id = m.tenant_id and d.id = m.domain_id and d.verification_status = 'verified')
            and m.warmup_start + m.warmup_day * m.warmup_increment < m.daily_limit
            and (m.created_at at time zone 'UTC')::date < ${utcToday}
            and not exists (select 1 from mailbox_warmup w
                            where w.tenant_id = m.tenant_id and w.mailbox_id = m.id and w.advanced_on >= ${utcToday})
          order by m.tenant_id, m.id
          limit ${config.warmupBatchSize}
          for update of m skip locked
        ), marked as (
          insert into mailbox_warmup as w (tenant_id, mailbox_id, advanced_on)
          select tenant_id, id, ${utcToday} from due
          on conflict (tenant_id, mailbox_id) do update set advanced_on = excluded.advanced_on
          where w.advanced_on < excluded.advanced_on
          returning w.tenant_id, w.mailbox_id
        ), moved as (
          update mailboxes m set warmup_day = m.warmup_day + 1
          from marked where m.tenant_id = marked.tenant_id and m.id = marked.mailbox_id
          returning 1
        )
        select count(*)::int as advanced from moved`),
    ]);
    const count = Number(rowsOf(result)[0]?.advanced ?? 0);
    advanced += count;
    if (count < config.warmupBatchSize) break;
  }
  return advanced;
}

/**
 * Deletes send counters older than `countersKeptDays` (campaign days, counted in their own time
 * zones, get one day more) and warmup marks of mailboxes that no longer exist.
 */
export async function pruneSendCounters(
  store: TierStore,
  config: JobsConfig["sendEmail"],
): Promise<{ mailboxDays: number; campaignDays: number; warmupMarks: number; plannedDays: number }> {
  const [mailboxDays, campaignDays, warmupMarks, plannedDays] = await internalBatch(store, "system", null, (db) => [
    db.execute(sql`with pruned as (delete from mailbox_daily_sends where day < ${utcToday} - ${config.countersKeptDays}::int returning 1)
                   select count(*)::int as deleted from pruned`),
    db.execute(sql`with pruned as (delete from campaign_daily_sends where day < ${utcToday} - ${config.countersKeptDays + 1}::int returning 1)
                   select count(*)::int as deleted from pruned`),
    db.execute(sql`with pruned as (
                     delete from mailbox_warmup w
                     where not exists (select 1 from mailboxes m where m.tenant_id = w.tenant_id and m.id = w.mailbox_id)
                     returning 1)
                   select count(*)::int as deleted from pruned`),
    db.execute(sql`with pruned as (delete from sequencer_daily_plans where day < ${utcToday} - ${config.countersKeptDays}::int returning 1)
                   select count(*)::int as deleted from pruned`),
  ]);
  const count = (result: unknown) => Number(rowsOf(result)[0]?.deleted ?? 0);
  return { mailboxDays: count(mailboxDays), campaignDays: count(campaignDays), warmupMarks: count(warmupMarks), plannedDays: count(plannedDays) };
}
