// SEND_EMAIL: sends a queued email within its mailbox's, campaign's and tenant's daily allowances and the campaign's local send window, with bounce protection.
import { sql } from "drizzle-orm";
import { z } from "zod";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { SystemEvents } from "../../../platform/emitters";
import { AppError } from "../../../platform/errors";
import { defineJob, type JobResult } from "../../../platform/jobs/define";
import { rowsOf } from "../../../platform/rows";
import { tenantSystemScope } from "../../../platform/services";
import { getEmailForSending } from "../../content";
import { addressHasher, isSuppressed, recordEmailEvent } from "../../oltp";
import { jobsConfig, type JobsConfig } from "../config";
import { emailProviderFor, messageIdFor, outgoingHeaders } from "../../../platform/email";
import { trackedHtml } from "../inbound/tracking";
import { listUnsubscribeHeaders } from "./list-unsubscribe";
import { pendingSequenceKey, renderSequenceEmail, type SequenceRenderContext, sequenceRenderColumns, sequenceThreadJoin } from "./sequence-content";

/** Queues delay a message by at most 12 hours; a longer wait is several deferrals, each re-checking. */
const maxDeferSeconds = 12 * 60 * 60;

export interface SendWindow {
  timeZone: string;
  startMinute: number;
  endMinute: number;
  /** 0 (Sunday) to 6. */
  days: number[];
}

const weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/**
 * Intl.DateTimeFormat instances by time zone and use: building one costs far more than formatting with it
 * (the sequencer judges a window for every lead of a batch), so each is built once per isolate. Zones are
 * IANA names (a few hundred at most), which bounds the map.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(kind: "clock" | "date", timeZone: string): Intl.DateTimeFormat {
  const key = `${kind}:${timeZone}`;
  let format = formatters.get(key);
  if (!format) {
    format =
      kind === "clock"
        ? new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "numeric", minute: "numeric", hourCycle: "h23" })
        : new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    formatters.set(key, format);
  }
  return format;
}

export function isTimeZone(zone: unknown): zone is string {
  if (typeof zone !== "string" || zone.length === 0 || zone.length > 64) return false;
  try {
    formatter("clock", zone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The local wall clock is the same through a UTC minute (zones are offset by whole minutes), and a sequencer batch
 * asks it for many leads of the same zones at the same few instants: remembered per zone and minute.
 */
const clocks = new Map<string, { day: number; minute: number }>();

function localClock(timeZone: string, at: Date): { day: number; minute: number } {
  const key = `${timeZone}|${Math.floor(at.getTime() / 60_000)}`;
  let clock = clocks.get(key);
  if (!clock) {
    clock = readLocalClock(timeZone, at);
    if (clocks.size >= 10_000) clocks.clear();
    clocks.set(key, clock);
  }
  return clock;
}

function readLocalClock(timeZone: string, at: Date): { day: number; minute: number } {
  let day = -1;
  let hour = 0;
  let minute = 0;
  for (const part of formatter("clock", timeZone).formatToParts(at)) {
    if (part.type === "weekday") day = weekdays.indexOf(part.value);
    else if (part.type === "hour") hour = Number(part.value);
    else if (part.type === "minute") minute = Number(part.value);
  }
  return { day, minute: hour * 60 + minute };
}

/**
 * Seconds until the window next opens in its time zone: 0 inside it. Computed on the local wall
 * clock, so a DST change can make it up to an hour off; the deferred job checks again when it runs.
 */
export function secondsUntilWindow(window: SendWindow, at: Date): number {
  const { day, minute } = localClock(window.timeZone, at);
  for (let ahead = 0; ahead <= 7; ahead++) {
    if (!window.days.includes((day + ahead) % 7)) continue;
    if (ahead === 0 && minute >= window.startMinute && minute < window.endMinute) return 0;
    const untilStart = ahead * 1440 + window.startMinute - minute;
    if (untilStart > 0) return untilStart * 60 - at.getUTCSeconds();
  }
  return maxDeferSeconds;
}

const secondsUntilUtcMidnight = (at: Date) => 86_400 - (at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds());

/** The calendar day (YYYY-MM-DD) in a time zone: a campaign's daily limit counts its own days. */
export function localDate(timeZone: string, at: Date): string {
  return formatter("date", timeZone).format(at);
}

const secondsUntilLocalMidnight = (timeZone: string, at: Date) => (1440 - localClock(timeZone, at).minute) * 60 - at.getUTCSeconds();

const defer = (seconds: number, reason: string): JobResult => ({
  defer: { seconds: Math.max(1, Math.min(maxDeferSeconds, Math.round(seconds))), reason },
});

interface SendContext extends SequenceRenderContext {
  status: string;
  lead_id: string;
  subject: string;
  mailbox_id: string;
  mailbox_address: string;
  mailbox_status: string;
  lead_email: string;
  lead_suppressed: boolean;
  /** Only a verified domain's mailboxes send (domains.verify, the oltp.recheckDomains cron). */
  domain_status: string;
  domain_name: string;
  /** The lead replied to an email of the same campaign: the sequence stopped for it. */
  lead_replied: boolean;
  lead_time_zone: string | null;
  tenant_status: string;
  campaign_id: string | null;
  campaign_status: string | null;
  /** The campaign opted in to open and click tracking. */
  campaign_track_engagement: boolean | null;
  campaign_daily_limit: number | null;
  campaign_time_zone: string | null;
  window_start_minute: number | null;
  window_end_minute: number | null;
  send_days: number[] | null;
}

/** The email with everything its send depends on: one statement. */
async function sendContext(store: TierStore, scope: TenantScope, emailId: string): Promise<SendContext | undefined> {
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      select e.status, e.subject, e.lead_id, m.id as mailbox_id, m.address as mailbox_address, m.status as mailbox_status,
             l.email as lead_email, (l.unsubscribed_at is not null or l.bounced_at is not null or ${isSuppressed(sql`l.tenant_id`, sql`l.email`)}) as lead_suppressed,
             d.verification_status as domain_status, d.name as domain_name,
             (e.campaign_id is not null and exists (select 1 from emails r where r.tenant_id = e.tenant_id and r.lead_id = e.lead_id
                                                    and r.campaign_id = e.campaign_id and r.replied_at is not null)) as lead_replied,
             coalesce(l.custom_fields->>'timezone', l.custom_fields->>'time_zone') as lead_time_zone,
             c.id as campaign_id, c.status as campaign_status, c.track_engagement as campaign_track_engagement, c.daily_limit as campaign_daily_limit, c.time_zone as campaign_time_zone,
             c.window_start_minute, c.window_end_minute, c.send_days, t.status as tenant_status, ${sequenceRenderColumns}
      from emails e
      join tenants t on t.id = e.tenant_id
      join leads l on l.tenant_id = e.tenant_id and l.id = e.lead_id
      join mailboxes m on m.tenant_id = e.tenant_id and m.id = e.mailbox_id
      join domains d on d.tenant_id = m.tenant_id and d.id = m.domain_id
      left join campaigns c on c.tenant_id = e.tenant_id and c.id = e.campaign_id
      ${sequenceThreadJoin}
      where e.tenant_id = ${scope.tenantId} and e.id = ${emailId}`),
  ]);
  return rowsOf(result)[0] as SendContext | undefined;
}

/** A campaign's share of the day: its daily limit, counted on its own calendar day. */
interface CampaignAllowance {
  id: string;
  dailyLimit: number;
  day: string;
}

/**
 * One round trip: pauses the mailbox if its bounce rate over the window has reached the threshold
 * (returning the figures only when it flips, so the event is raised once), then reserves one of the
 * day's sends of the campaign and of the mailbox: conditional upserts that cannot pass either
 * allowance, whatever the concurrency. Both or neither: the mailbox's upsert runs only if the
 * campaign's took a send (a transaction-local setting carries that between the statements), and a
 * campaign send taken when the mailbox had none left is given back in the same transaction.
 * The mailbox's allowance is its daily limit, or during warmup min(daily limit, start + day * increment).
 */
async function protectAndReserve(
  store: TierStore,
  scope: TenantScope,
  mailboxId: string,
  campaign: CampaignAllowance | null,
  mailboxDay: string,
  config: JobsConfig["sendEmail"],
) {
  const campaignOk = campaign ? sql`current_setting('edp.campaign_reserved', true) = 'true'` : sql`true`;
  // The tenant's daily_send_limit across its mailboxes: its row is locked first, so the sum read below is current.
  const tenantOk = sql`(select coalesce(sum(s.sent), 0) from mailbox_daily_sends s where s.tenant_id = ${scope.tenantId} and s.day = ${mailboxDay}::date)
                       < (select t.daily_send_limit from tenants t where t.id = ${scope.tenantId})`;
  const [, protectedNow, campaignReserved, reserved, , mailbox, tenant] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select 1 from tenants where id = ${scope.tenantId} for update`),
    db.execute(sql`
      with stats as (
        select count(*) filter (where sent_at is not null or bounced_at is not null)::int as sent,
               count(*) filter (where bounced_at is not null)::int as bounced
        from emails
        where tenant_id = ${scope.tenantId} and mailbox_id = ${mailboxId}
          and created_at > now() - make_interval(days => ${config.bounceWindowDays})
      )
      update mailboxes m set status = 'bounce_protected'
      from stats
      where m.tenant_id = ${scope.tenantId} and m.id = ${mailboxId} and m.status = 'active'
        and stats.sent >= ${config.bounceMinSample} and stats.bounced >= stats.sent * ${config.bounceRateThreshold}::float8
      returning m.address, stats.sent, stats.bounced`),
    db.execute(
      campaign
        ? sql`
      with reserved as (
        insert into campaign_daily_sends as d (tenant_id, campaign_id, day, sent)
        select ${scope.tenantId}, ${campaign.id}, ${campaign.day}::date, 1
        where ${campaign.dailyLimit}::int >= 1
        on conflict (tenant_id, campaign_id, day) do update set sent = d.sent + 1
        where d.sent < ${campaign.dailyLimit}::int
        returning d.sent)
      select set_config('edp.campaign_reserved', (count(*) > 0)::text, true) as reserved from reserved`
        : sql`select 'true' as reserved`,
    ),
    db.execute(sql`
      with reserved as (
        insert into mailbox_daily_sends as d (tenant_id, mailbox_id, day, sent)
        select m.tenant_id, m.id, ${mailboxDay}::date, 1
        from mailboxes m where m.tenant_id = ${scope.tenantId} and m.id = ${mailboxId} and m.status = 'active' and ${campaignOk} and ${tenantOk}
        on conflict (tenant_id, mailbox_id, day) do update set sent = d.sent + 1
        where ${campaignOk} and ${tenantOk}
          and d.sent < (select case when m.warmup_enabled then least(m.daily_limit, m.warmup_start + m.warmup_day * m.warmup_increment)
                                    else m.daily_limit end
                        from mailboxes m where m.tenant_id = ${scope.tenantId} and m.id = ${mailboxId})
        returning d.sent)
      select set_config('edp.mailbox_reserved', (count(*) > 0)::text, true) as reserved from reserved`),
    db.execute(
      campaign
        ? sql`update campaign_daily_sends set sent = greatest(sent - 1, 0)
              where tenant_id = ${scope.tenantId} and campaign_id = ${campaign.id} and day = ${campaign.day}::date
                and current_setting('edp.campaign_reserved', true) = 'true' and current_setting('edp.mailbox_reserved', true) <> 'true'`
        : sql`select 1`,
    ),
    db.execute(sql`select status from mailboxes where tenant_id = ${scope.tenantId} and id = ${mailboxId}`),
    db.execute(sql`select not (${tenantOk}) as full`),
  ]);
  const flipped = rowsOf(protectedNow)[0] as { address: string; sent: number; bounced: number } | undefined;
  return {
    flipped,
    campaignReserved: String(rowsOf(campaignReserved)[0]?.reserved) === "true",
    reserved: String(rowsOf(reserved)[0]?.reserved) === "true",
    mailboxStatus: String(rowsOf(mailbox)[0]?.status ?? "missing"),
    tenantFull: rowsOf(tenant)[0]?.full === true,
  };
}

/** Gives the reserved sends back when the provider did not take the email. */
async function releaseReservation(store: TierStore, scope: TenantScope, mailboxId: string, campaign: CampaignAllowance | null, mailboxDay: string): Promise<void> {
  await tenantBatch(store, scope, (db) => [
    db.execute(sql`update mailbox_daily_sends set sent = greatest(sent - 1, 0)
                   where tenant_id = ${scope.tenantId} and mailbox_id = ${mailboxId} and day = ${mailboxDay}::date`),
    db.execute(
      campaign
        ? sql`update campaign_daily_sends set sent = greatest(sent - 1, 0)
              where tenant_id = ${scope.tenantId} and campaign_id = ${campaign.id} and day = ${campaign.day}::date`
        : sql`select 1`,
    ),
  ]);
}

/** One system event per mailbox while it stays open; raising it must not undo the pause, so a failure is only logged. */
async function raiseBounceProtection(
  systemEvents: SystemEvents,
  tenantId: string,
  mailboxId: string,
  stats: { address: string; sent: number; bounced: number },
): Promise<void> {
  await systemEvents.raiseQuietly(
    {
      eventType: "mailbox_bounce_protected",
      severity: "high",
      tenantId,
      description: `Mailbox ${stats.address} was paused: its bounce rate is too high`,
      details: { mailboxId, address: stats.address, sent: stats.sent, bounced: stats.bounced },
      dedupKey: `mailbox.bounce_protected:${mailboxId}`,
    },
    { mailboxId },
  );
}

/**
 * Not sending is an outcome, not a failure: outside the window, over an allowance or with the
 * mailbox paused the job is deferred (its attempt given back) until it may send; an email no longer
 * queued (already sent, deleted) or to a suppressed lead is done. Sending then recording is not
 * atomic, so the provider is given the email's id as its idempotency key.
 */
export const sendEmailJob = defineJob({
  type: "SEND_EMAIL",
  payload: z.object({ emailId: z.uuid() }).strict(),
  queue: "high",
  productEvent: (progress) => (progress?.outcome === "sent" || progress?.outcome === "bounced" ? { event: `email ${progress.outcome}` } : null),
  ledger: true,
  maxAttempts: 6,
  backoff: { baseSeconds: 30, maxSeconds: 1800 },
  // A send that died fails its email (with the job's last error), so it does not stay queued forever.
  onGiveUp: async ({ tenantId, payload: { emailId }, error }, services) => {
    if (!tenantId) return;
    await recordEmailEvent(services.store("oltp"), tenantSystemScope(tenantId), {
      emailId,
      type: "failed",
      reason: error,
      onlyIfStatus: "queued",
      occurredAt: services.clock.now(),
    }, addressHasher(services.env)).catch((cause: unknown) => {
      // Deleted meanwhile, or no longer queued: nothing to fail.
      if (!(cause instanceof AppError && cause.code === "NOT_FOUND")) throw cause;
    });
  },
  run: async ({ tenantId, payload: { emailId }, services }): Promise<JobResult> => {
  if (!tenantId) throw new AppError("VALIDATION_FAILED", "SEND_EMAIL is a tenant's job", { tier: "jobs" });
  const { env, logger } = services;
  const config = jobsConfig.sendEmail;
  const store = services.store("oltp");
  const scope = tenantSystemScope(tenantId);

  const context = await sendContext(store, scope, emailId);
  if (!context) return { progress: { outcome: "email_deleted" } };
  if (context.status !== "queued") return { progress: { outcome: "already_" + context.status } };
  // A suspended tenant sends nothing until an operator reactivates it; a closed one never again.
  if (context.tenant_status === "closed") return { progress: { outcome: "tenant_closed" } };
  if (context.tenant_status !== "active") return defer(config.inactiveMailboxRetrySeconds, `The tenant is ${context.tenant_status}`);
  if (context.lead_suppressed || context.lead_replied) {
    await recordEmailEvent(store, scope, { emailId, type: "failed", occurredAt: services.clock.now() }, addressHasher(env));
    return { progress: { outcome: context.lead_suppressed ? "lead_suppressed" : "lead_replied" } };
  }
  if (context.domain_status !== "verified") {
    return defer(config.inactiveMailboxRetrySeconds, `The domain ${context.domain_name} is not verified (${context.domain_status})`);
  }
  if (context.mailbox_status !== "active") return defer(config.inactiveMailboxRetrySeconds, `The mailbox is ${context.mailbox_status}`);
  if (context.campaign_status === "paused") return defer(config.inactiveMailboxRetrySeconds, "The campaign is paused");
  const now = services.clock.now();
  if (context.window_start_minute !== null && context.window_end_minute !== null) {
    const timeZone = isTimeZone(context.lead_time_zone) ? context.lead_time_zone : (context.campaign_time_zone ?? "UTC");
    const window = { timeZone, startMinute: context.window_start_minute, endMinute: context.window_end_minute, days: context.send_days ?? [] };
    const wait = secondsUntilWindow(window, now);
    if (wait > 0) return defer(wait, `Outside the campaign's send window in ${timeZone}`);
  }

  // A sequence step's email is rendered and stored now (sequence-content.ts); any other is read from the content tier.
  const rendered = context.content_storage_key === pendingSequenceKey(emailId) ? await renderSequenceEmail(services, scope, emailId, context) : null;
  if (rendered && "skipped" in rendered) {
    await recordEmailEvent(store, scope, { emailId, type: "failed", reason: rendered.skipped, occurredAt: services.clock.now() }, addressHasher(env));
    return { progress: { outcome: "not_rendered", reason: rendered.skipped } };
  }
  const content =
    rendered ??
    (await getEmailForSending(
      {
        store,
        bucket: env.CONTENT_BUCKET,
        reportIntegrityFailure: async (failure) => logger.error("email content failed its integrity check", { key: failure.storageKey }),
      },
      scope,
      emailId,
    ).catch((error: unknown) => {
      // An email recorded with a caller's storage key has no body here: it can never be sent by this job.
      if (error instanceof AppError && error.code === "NOT_FOUND") {
        throw new AppError("VALIDATION_FAILED", "The email has no content in the content tier", { tier: "jobs" });
      }
      throw error;
    }));

  const campaignZone = context.campaign_time_zone && isTimeZone(context.campaign_time_zone) ? context.campaign_time_zone : "UTC";
  const campaign: CampaignAllowance | null =
    context.campaign_id && context.campaign_daily_limit !== null
      ? { id: context.campaign_id, dailyLimit: context.campaign_daily_limit, day: localDate(campaignZone, now) }
      : null;
  // The mailbox's day is the UTC date; the campaign's is its own time zone's.
  const mailboxDay = localDate("UTC", now);
  const { flipped, campaignReserved, reserved, mailboxStatus, tenantFull } = await protectAndReserve(store, scope, context.mailbox_id, campaign, mailboxDay, config);
  if (flipped) await raiseBounceProtection(services.systemEvents, tenantId, context.mailbox_id, flipped);
  if (!reserved) {
    if (mailboxStatus !== "active") return defer(config.inactiveMailboxRetrySeconds, `The mailbox is ${mailboxStatus}`);
    // Spread over a few minutes so a day's backlog does not arrive at midnight in one burst.
    if (!campaignReserved) return defer(secondsUntilLocalMidnight(campaignZone, now) + Math.random() * 300, "The campaign's daily limit is reached");
    if (tenantFull) return defer(secondsUntilUtcMidnight(now) + Math.random() * 300, "The tenant's daily send limit is reached");
    return defer(secondsUntilUtcMidnight(now) + Math.random() * 300, "The mailbox's daily limit is reached");
  }

  let result;
  try {
    result = await emailProviderFor(env).send({
      emailId,
      from: context.mailbox_address,
      to: context.lead_email,
      subject: context.subject,
      text: content.text,
      html: context.campaign_track_engagement && content.html ? await trackedHtml(env, emailId, content.html) : content.html || undefined,
      // A stored Message-ID wins (the sequencer stores the same one with its threading); every email has one. The
      // List-Unsubscribe headers are the platform's own and replace any stored ones.
      headers: outgoingHeaders(
        { "Message-ID": messageIdFor(emailId, context.mailbox_address), ...content.headers },
        await listUnsubscribeHeaders(env, { tenantId, leadId: context.lead_id, emailId }),
      ),
      attachments: content.attachments.map((a) => ({ filename: a.filename ?? "attachment", contentType: a.mimeType, disposition: a.disposition, content: a.content })),
    });
  } catch (error) {
    await releaseReservation(store, scope, context.mailbox_id, campaign, mailboxDay).catch((release: unknown) => logger.warn("send reservation not released", { error: release }));
    throw error;
  }
  if (result.outcome === "rejected") {
    await recordEmailEvent(store, scope, { emailId, type: "bounced", occurredAt: now }, addressHasher(env));
    return { progress: { outcome: "bounced", reason: result.reason } };
  }
  await recordEmailEvent(store, scope, { emailId, type: "sent", providerMessageId: result.providerMessageId, occurredAt: now }, addressHasher(env));
  return { progress: { outcome: "sent", providerMessageId: result.providerMessageId } };
  },
});
