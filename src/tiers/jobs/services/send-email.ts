// SEND_EMAIL: sends a queued email within its mailbox's daily allowance and its campaign's local send window, with bounce protection.
import { sql } from "drizzle-orm";
import { tenantBatch, tierStore, type TenantScope, type TierStore } from "../../../core/db";
import { AppError } from "../../../core/errors";
import type { Logger } from "../../../core/logger";
import { systemUserId } from "../../content/deps";
import { getEmailContent } from "../../content/services/reads";
import { notificationsConfig } from "../../notifications/config";
import { rowsOf } from "../../notifications/services/rows";
import { raiseSystemEvent } from "../../notifications/services/system-events";
import { recordEmailEvent } from "../../oltp/services/emails";
import { jobsConfig, type JobsConfig } from "../config";
import type { JobHandler, JobResult } from "../consumer";
import { jobDefinitions } from "../messages";
import { emailProviderFor } from "./email-provider";

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

export function isTimeZone(zone: unknown): zone is string {
  if (typeof zone !== "string" || zone.length === 0 || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function localClock(timeZone: string, at: Date): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "numeric", minute: "numeric", hourCycle: "h23" }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return { day: weekdays.indexOf(part("weekday")), minute: Number(part("hour")) * 60 + Number(part("minute")) };
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

const defer = (seconds: number, reason: string): JobResult => ({
  defer: { seconds: Math.max(1, Math.min(maxDeferSeconds, Math.round(seconds))), reason },
});

interface SendContext {
  status: string;
  subject: string;
  mailbox_id: string;
  mailbox_address: string;
  mailbox_status: string;
  lead_email: string;
  lead_suppressed: boolean;
  lead_time_zone: string | null;
  campaign_status: string | null;
  campaign_time_zone: string | null;
  window_start_minute: number | null;
  window_end_minute: number | null;
  send_days: number[] | null;
}

/** The email with everything its send depends on: one statement. */
async function sendContext(store: TierStore, scope: TenantScope, emailId: string): Promise<SendContext | undefined> {
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      select e.status, e.subject, m.id as mailbox_id, m.address as mailbox_address, m.status as mailbox_status,
             l.email as lead_email, (l.unsubscribed_at is not null or l.bounced_at is not null) as lead_suppressed,
             coalesce(l.custom_fields->>'timezone', l.custom_fields->>'time_zone') as lead_time_zone,
             c.status as campaign_status, c.time_zone as campaign_time_zone,
             c.window_start_minute, c.window_end_minute, c.send_days
      from emails e
      join leads l on l.tenant_id = e.tenant_id and l.id = e.lead_id
      join mailboxes m on m.tenant_id = e.tenant_id and m.id = e.mailbox_id
      left join campaigns c on c.tenant_id = e.tenant_id and c.id = e.campaign_id
      where e.tenant_id = ${scope.tenantId} and e.id = ${emailId}`),
  ]);
  return rowsOf(result)[0] as SendContext | undefined;
}

/**
 * One round trip: pauses the mailbox if its bounce rate over the window has reached the threshold
 * (returning the figures only when it flips, so the event is raised once), then reserves one of the
 * day's sends: a conditional upsert that cannot pass the mailbox's allowance, whatever the concurrency.
 * The allowance is the daily limit, or during warmup min(daily limit, start + day * increment).
 */
async function protectAndReserve(store: TierStore, scope: TenantScope, mailboxId: string, config: JobsConfig["sendEmail"]) {
  const [protectedNow, reserved, mailbox] = await tenantBatch(store, scope, (db) => [
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
    db.execute(sql`
      insert into mailbox_daily_sends as d (tenant_id, mailbox_id, day, sent)
      select m.tenant_id, m.id, (now() at time zone 'UTC')::date, 1
      from mailboxes m where m.tenant_id = ${scope.tenantId} and m.id = ${mailboxId} and m.status = 'active'
      on conflict (tenant_id, mailbox_id, day) do update set sent = d.sent + 1
      where d.sent < (select case when m.warmup_enabled then least(m.daily_limit, m.warmup_start + m.warmup_day * m.warmup_increment)
                                  else m.daily_limit end
                      from mailboxes m where m.tenant_id = ${scope.tenantId} and m.id = ${mailboxId})
      returning d.sent`),
    db.execute(sql`select status from mailboxes where tenant_id = ${scope.tenantId} and id = ${mailboxId}`),
  ]);
  const flipped = rowsOf(protectedNow)[0] as { address: string; sent: number; bounced: number } | undefined;
  return { flipped, reserved: rowsOf(reserved).length > 0, mailboxStatus: String(rowsOf(mailbox)[0]?.status ?? "missing") };
}

/** Gives a reserved send back when the provider did not take the email. */
async function releaseReservation(store: TierStore, scope: TenantScope, mailboxId: string): Promise<void> {
  await tenantBatch(store, scope, (db) => [
    db.execute(sql`update mailbox_daily_sends set sent = greatest(sent - 1, 0)
                   where tenant_id = ${scope.tenantId} and mailbox_id = ${mailboxId} and day = (now() at time zone 'UTC')::date`),
  ]);
}

/** One system event per mailbox while it stays open; raising it must not undo the pause, so a failure is logged. */
async function raiseBounceProtection(
  notifications: TierStore,
  logger: Logger,
  tenantId: string,
  mailboxId: string,
  stats: { address: string; sent: number; bounced: number },
): Promise<void> {
  try {
    await raiseSystemEvent(notifications, notificationsConfig, {
      eventType: "mailbox_bounce_protected",
      severity: "high",
      tenantId,
      description: `Mailbox ${stats.address} was paused: its bounce rate is too high`,
      details: { mailboxId, address: stats.address, sent: stats.sent, bounced: stats.bounced },
      dedupKey: `mailbox.bounce_protected:${mailboxId}`,
    });
  } catch (error) {
    logger.error("bounce protection not raised as a system event", { mailboxId, error });
  }
}

/**
 * Not sending is an outcome, not a failure: outside the window, over the allowance or with the
 * mailbox paused the job is deferred (its attempt given back) until it may send; an email no longer
 * queued (already sent, deleted) or to a suppressed lead is done. Sending then recording is not
 * atomic, so the provider is given the email's id as its idempotency key.
 */
export const sendEmailJob: JobHandler = async (job, { env, logger }) => {
  const { emailId } = jobDefinitions.SEND_EMAIL.payload.parse(job.payload);
  if (!job.tenantId) throw new AppError("VALIDATION_FAILED", "SEND_EMAIL is a tenant's job", { tier: "jobs" });
  const config = jobsConfig.sendEmail;
  const store = tierStore(env, "oltp");
  const scope: TenantScope = { tenantId: job.tenantId, userId: systemUserId, role: "member" };

  const context = await sendContext(store, scope, emailId);
  if (!context) return { progress: { outcome: "email_deleted" } };
  if (context.status !== "queued") return { progress: { outcome: "already_" + context.status } };
  if (context.lead_suppressed) {
    await recordEmailEvent(store, scope, { emailId, type: "failed" });
    return { progress: { outcome: "lead_suppressed" } };
  }
  if (context.mailbox_status !== "active") return defer(config.inactiveMailboxRetrySeconds, `The mailbox is ${context.mailbox_status}`);
  if (context.campaign_status === "paused") return defer(config.inactiveMailboxRetrySeconds, "The campaign is paused");
  const now = new Date();
  if (context.window_start_minute !== null && context.window_end_minute !== null) {
    const timeZone = isTimeZone(context.lead_time_zone) ? context.lead_time_zone : (context.campaign_time_zone ?? "UTC");
    const window = { timeZone, startMinute: context.window_start_minute, endMinute: context.window_end_minute, days: context.send_days ?? [] };
    const wait = secondsUntilWindow(window, now);
    if (wait > 0) return defer(wait, `Outside the campaign's send window in ${timeZone}`);
  }

  const content = await getEmailContent(
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
  });

  const { flipped, reserved, mailboxStatus } = await protectAndReserve(store, scope, context.mailbox_id, config);
  if (flipped) await raiseBounceProtection(tierStore(env, "notifications"), logger, job.tenantId, context.mailbox_id, flipped);
  if (!reserved) {
    if (mailboxStatus !== "active") return defer(config.inactiveMailboxRetrySeconds, `The mailbox is ${mailboxStatus}`);
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
      html: content.html || undefined,
    });
  } catch (error) {
    await releaseReservation(store, scope, context.mailbox_id).catch((release: unknown) => logger.warn("send reservation not released", { error: release }));
    throw error;
  }
  if (result.outcome === "rejected") {
    await recordEmailEvent(store, scope, { emailId, type: "bounced" });
    return { progress: { outcome: "bounced", reason: result.reason } };
  }
  await recordEmailEvent(store, scope, { emailId, type: "sent", providerMessageId: result.providerMessageId });
  return { progress: { outcome: "sent", providerMessageId: result.providerMessageId } };
};
