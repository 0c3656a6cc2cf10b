// Email metadata (never bodies): creation with its first event, listing, and status events appended by the sending side.
import { and, asc, desc, eq, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { timeOrderedId } from "../../../platform/ids";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import type { Services } from "../../../platform/services";
import { campaignLeads, campaigns, emailEvents, emails, emailStatuses, leads, mailboxes, sequenceSteps } from "../schema";
import { afterCursor, found, toPage, type Page } from "../../../platform/paging";
import { rowsOf } from "../../../platform/rows";
import { type AddressHasher, isSuppressed, normaliseAddress, type SuppressionReason } from "./suppressions";

export type Email = typeof emails.$inferSelect;
export type EmailEvent = typeof emailEvents.$inferSelect;
type EmailStatus = (typeof emailStatuses)[number];

export interface NewEmail {
  leadId: string;
  mailboxId: string;
  campaignId?: string;
  stepId?: string;
  subject: string;
  contentStorageKey: string;
  /** Chosen by a caller that must name the email before it exists (the content tier keys its catalog rows by it). */
  id?: string;
}

/**
 * A campaign that sends nothing: a draft has not started (its emails would go out before anyone started it) and
 * a completed one is over. Emails under them are refused at create; a scheduled or paused campaign's are held.
 */
const closedCampaignStatuses = ["draft", "completed"] as const;

/** Statements another tier adds to the email's own transaction (the content catalog's rows); they see the inserted email. */
export type SameTransaction = (db: NeonHttpDatabase) => BatchItem<"pg">[];

/**
 * Records a queued email, its `queued` event and the month's usage counter in one statement. The
 * insert selects from the lead and the mailbox, so another tenant's ids or a suppressed lead insert
 * nothing; a second statement says which it was. The campaign and step are selected too: an unknown or another
 * tenant's campaign, or a step that is not one of the campaign's (or of any of the tenant's), is NOT_FOUND.
 * A step given without its campaign records the step's campaign.
 * The email's SEND_EMAIL job (the jobs tier's, under the email's own id) commits with it (outbox) and
 * is sent after the commit, off the response path; a lost send is relayed.
 */
export async function createEmail(services: Services, scope: TenantScope, input: NewEmail, alsoInTransaction?: SameTransaction): Promise<Email> {
  // The id is chosen here so the read-back can be the batch's last statement: one round trip in all.
  const id = input.id ?? timeOrderedId();
  const campaignId = input.campaignId ?? null;
  const stepId = input.stepId ?? null;
  // Written only if the email row exists in this transaction: a suppressed lead or a foreign mailbox inserts neither.
  const sendJob = services.jobs.prepare(
    scope.tenantId,
    [{ type: "SEND_EMAIL", id, payload: { emailId: id }, idempotencyKey: `email:${id}` }],
    sql`exists (select 1 from ${emails} e where e.tenant_id = ${scope.tenantId} and e.id = ${id} and e.status = 'queued')`,
  );
  const [, checks, , ...rest] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.execute(sql`
      with email as (
        insert into ${emails} (id, tenant_id, campaign_id, step_id, lead_id, mailbox_id, subject, content_storage_key)
        select ${id}::uuid, l.tenant_id, coalesce(c.id, s.campaign_id), s.id, l.id, m.id, ${input.subject}, ${input.contentStorageKey}
        from ${leads} l join ${mailboxes} m on m.tenant_id = l.tenant_id
        left join ${campaigns} c on c.tenant_id = l.tenant_id and c.id = ${campaignId}::uuid
        left join ${sequenceSteps} s on s.tenant_id = l.tenant_id and s.id = ${stepId}::uuid
        where l.tenant_id = ${scope.tenantId} and l.id = ${input.leadId} and m.id = ${input.mailboxId}
          and l.unsubscribed_at is null and l.bounced_at is null and not ${isSuppressed(sql`l.tenant_id`, sql`l.email`)}
          and (${campaignId}::uuid is null or c.id is not null)
          and (${stepId}::uuid is null or (s.id is not null and (c.id is null or s.campaign_id = c.id)))
          and not exists (select 1 from ${campaigns} cs where cs.tenant_id = l.tenant_id and cs.id = coalesce(c.id, s.campaign_id)
                            and cs.status in ${sql.raw(`(${closedCampaignStatuses.map((status) => `'${status}'`).join(", ")})`)})
        returning id, tenant_id, queued_at
      ), event as (
        insert into ${emailEvents} (tenant_id, email_id, type, occurred_at)
        select tenant_id, id, 'queued', queued_at from email
      ), usage as (
        insert into usage_counters (tenant_id, period_start, emails_queued)
        select tenant_id, date_trunc('month', now() at time zone 'UTC') at time zone 'UTC', 1 from email
        on conflict (tenant_id, period_start) do update set emails_queued = usage_counters.emails_queued + 1
      )
      select id from email`),
    db
      .select({
        lead: sql<string | null>`(select case when ${leads.unsubscribedAt} is not null then 'unsubscribed'
                                               when ${leads.bouncedAt} is not null then 'bounced'
                                               when ${isSuppressed(sql`${leads.tenantId}`, sql`${leads.email}`)} then 'suppressed' else 'ok' end
                                   from ${leads} where ${leads.tenantId} = ${scope.tenantId} and ${leads.id} = ${input.leadId})`,
        mailbox: sql<string | null>`(select ${mailboxes.status} from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.id} = ${input.mailboxId})`,
        campaign: sql<string | null>`(select ${campaigns.id} from ${campaigns} where ${campaigns.tenantId} = ${scope.tenantId} and ${campaigns.id} = ${campaignId}::uuid)`,
        stepCampaign: sql<string | null>`(select ${sequenceSteps.campaignId} from ${sequenceSteps} where ${sequenceSteps.tenantId} = ${scope.tenantId} and ${sequenceSteps.id} = ${stepId}::uuid)`,
        campaignStatus: sql<string | null>`(select ${campaigns.status} from ${campaigns} where ${campaigns.tenantId} = ${scope.tenantId}
          and ${campaigns.id} = coalesce(${campaignId}::uuid, (select ${sequenceSteps.campaignId} from ${sequenceSteps} where ${sequenceSteps.tenantId} = ${scope.tenantId} and ${sequenceSteps.id} = ${stepId}::uuid)))`,
      })
      .from(sql`(select 1) as one`),
    sendJob.insert(db),
    ...(alsoInTransaction?.(db) ?? []),
    db.select().from(emails).where(and(eq(emails.tenantId, scope.tenantId), eq(emails.id, id))),
  ]);
  const created = rest.at(-1) as Email[];
  if (created[0]) {
    services.jobs.sendAfterResponse(sendJob.messages);
    return created[0];
  }
  const check = checks[0];
  if (!check?.lead) throw new AppError("NOT_FOUND", "Lead not found");
  if (!check.mailbox) throw new AppError("NOT_FOUND", "Mailbox not found");
  if (campaignId && !check.campaign) throw new AppError("NOT_FOUND", "Campaign not found");
  if (stepId && (!check.stepCampaign || (campaignId && check.stepCampaign !== campaignId))) throw new AppError("NOT_FOUND", "Sequence step not found in this campaign");
  if (check.campaignStatus && (closedCampaignStatuses as readonly string[]).includes(check.campaignStatus)) {
    throw new AppError("CONFLICT", `The campaign is ${check.campaignStatus}; it sends nothing`, { details: { campaign: check.campaignStatus } });
  }
  throw new AppError("CONFLICT", `The lead is ${check.lead}; nothing is sent to it`, { details: { lead: check.lead } });
}

/** Deletes the email (its events cascade) and, in the same transaction, what other tiers keep for it. */
export async function deleteEmail(store: TierStore, scope: TenantScope, id: string, alsoInTransaction?: SameTransaction): Promise<{ id: string }> {
  const [deleted] = await tenantBatch(store, scope, (db) => [
    db.delete(emails).where(and(eq(emails.tenantId, scope.tenantId), eq(emails.id, id))).returning({ id: emails.id }),
    ...(alsoInTransaction?.(db) ?? []),
  ]);
  return found(deleted[0], "Email");
}

export interface EmailFilter {
  campaignId?: string;
  leadId?: string;
  status?: EmailStatus;
  cursor?: string;
  limit: number;
}

export async function listEmails(store: TierStore, scope: TenantScope, filter: EmailFilter): Promise<Page<Email>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(emails)
      .where(
        and(
          eq(emails.tenantId, scope.tenantId),
          filter.campaignId ? eq(emails.campaignId, filter.campaignId) : undefined,
          filter.leadId ? eq(emails.leadId, filter.leadId) : undefined,
          filter.status ? eq(emails.status, filter.status) : undefined,
          afterCursor(emails.createdAt, emails.id, filter.cursor),
        ),
      )
      .orderBy(desc(emails.createdAt), desc(emails.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

/** The email and its events, oldest first: two statements, one round trip. */
export async function getEmail(store: TierStore, scope: TenantScope, id: string): Promise<Email & { events: EmailEvent[] }> {
  const [rows, events] = await tenantBatch(store, scope, (db) => [
    db.select().from(emails).where(and(eq(emails.tenantId, scope.tenantId), eq(emails.id, id))).limit(1),
    db
      .select()
      .from(emailEvents)
      .where(and(eq(emailEvents.tenantId, scope.tenantId), eq(emailEvents.emailId, id)))
      .orderBy(asc(emailEvents.occurredAt), asc(emailEvents.id)),
  ]);
  return { ...found(rows[0], "Email"), events };
}

/** Facts about the recipient, not delivery states: recorded and counted, the email's status stays. */
export const recipientEvents = ["clicked", "complained", "unsubscribed"] as const;
const suppressionReasonOf = (type: ReportedEvent): SuppressionReason | null =>
  type === "bounced" ? "hard_bounce" : type === "complained" ? "complaint" : type === "unsubscribed" ? "unsubscribe" : null;

/** The email's recipient address and its keyed hash; null when the email (or its lead) is gone. */
async function recipientEntry(store: TierStore, scope: TenantScope, emailId: string, hasher: AddressHasher) {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select l.email from ${emails} e join ${leads} l on l.tenant_id = e.tenant_id and l.id = e.lead_id
                   where e.tenant_id = ${scope.tenantId} and e.id = ${emailId}`),
  ]);
  const address = rowsOf(rows)[0]?.email;
  return typeof address === "string" ? { address: normaliseAddress(address), hash: await hasher(address) } : null;
}

export type ReportedEvent = Exclude<EmailStatus, "queued"> | (typeof recipientEvents)[number];
const isRecipientEvent = (type: ReportedEvent): type is (typeof recipientEvents)[number] => (recipientEvents as readonly string[]).includes(type);

/**
 * Appends a status fact reported by the sending side and moves the email forward. Events arrive out
 * of order (an open after a reply), so the status only advances: queued < sent < delivered < opened
 * < replied, and bounced/failed end it. A bounce also marks the lead, so nothing more is sent to it;
 * a reply or bounce also stops the lead's campaign sequence (a reply in that campaign, a bounce in all).
 * Clicks, complaints and unsubscribes are facts about the recipient: the status stays; a complaint or
 * an unsubscribe suppresses the lead and stops its enrolments, as the unsubscribe link does.
 */
export async function recordEmailEvent(
  store: TierStore,
  scope: TenantScope,
  input: {
    emailId: string;
    type: ReportedEvent;
    providerMessageId?: string;
    occurredAt: Date;
    /** Why (a failure's cause), kept in the event's details. */
    reason?: string;
    /** Records nothing unless the email still has this status (a send that gave up fails only a queued email). */
    onlyIfStatus?: EmailStatus;
    /** The fact's own id at its source (a provider's event id): a fact already recorded under it records nothing. */
    sourceEventId?: string;
  },
  hasher: AddressHasher,
): Promise<Email> {
  // An inbound fact carries its own id: a second delivery of it changes nothing (the unique index catches a race).
  const source = input.sourceEventId ?? null;
  const at = input.occurredAt.toISOString();
  // A bounce, complaint or unsubscribe puts the recipient on the tenant's list, keyed by the hash of its address:
  // the address is read first (the hash is computed here, with the Worker's key), the entry written with the fact.
  // These facts cost two round trips; an unknown email is answered after the first.
  const listReason = suppressionReasonOf(input.type);
  const listed = listReason ? await recipientEntry(store, scope, input.emailId, hasher) : null;
  if (listReason && !listed) throw new AppError("NOT_FOUND", "Email not found");
  const rank = (status: SQL) => sql`array_position(array['queued','sent','delivered','opened','replied','bounced','failed'], ${status})`;
  const recipient = isRecipientEvent(input.type);
  const stamp = sql.identifier(`${input.type}_at`);
  const advance = recipient
    ? sql``
    : sql`status = case when e.status in ('bounced', 'failed') then e.status
                        when ${rank(sql`${input.type}::text`)} > ${rank(sql`e.status`)} then ${input.type} else e.status end,
          ${stamp} = coalesce(e.${stamp}, ${at}::timestamptz),`;
  const suppress = input.type === "complained" || input.type === "unsubscribed";
  const [, updated] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      with email as (
        update ${emails} e set
          ${advance}
          provider_message_id = coalesce(e.provider_message_id, ${input.providerMessageId ?? null})
        where e.tenant_id = ${scope.tenantId} and e.id = ${input.emailId}${input.onlyIfStatus ? sql` and e.status = ${input.onlyIfStatus}` : sql``}
          and (${source}::text is null or not exists (select 1 from ${emailEvents} x where x.tenant_id = ${scope.tenantId} and x.source_event_id = ${source}::text))
        returning e.id, e.tenant_id, e.lead_id, e.campaign_id
      ), stop as (
        -- A reply ends the lead's sequence in this campaign; a bounce ends it in every campaign.
        update campaign_leads cl set status = 'stopped', stop_reason = ${input.type}, next_send_at = null
        from email
        where ${input.type} in ('replied', 'bounced') and cl.tenant_id = email.tenant_id and cl.lead_id = email.lead_id
          and cl.status in ('active', 'paused') and (${input.type} = 'bounced' or cl.campaign_id = email.campaign_id)
      ), event as (
        insert into ${emailEvents} (tenant_id, email_id, type, occurred_at, details, source_event_id)
        select tenant_id, id, ${input.type}, ${at}::timestamptz, ${JSON.stringify({ ...(input.providerMessageId ? { providerMessageId: input.providerMessageId } : {}), ...(input.reason ? { reason: input.reason.slice(0, 500) } : {}) })}::jsonb, ${source}::text
        from email
      ), bounce as (
        update ${leads} l set bounced_at = coalesce(l.bounced_at, ${at}::timestamptz)
        from email where ${input.type} = 'bounced' and l.tenant_id = email.tenant_id and l.id = email.lead_id
      ), suppressed as (
        update ${leads} l set unsubscribed_at = coalesce(l.unsubscribed_at, ${at}::timestamptz), updated_at = now()
        from email where ${suppress} and l.tenant_id = email.tenant_id and l.id = email.lead_id
      ), stopped as (
        update ${campaignLeads} cl set status = 'stopped', stop_reason = ${input.type}, next_send_at = null
        from email where ${suppress} and cl.tenant_id = email.tenant_id and cl.lead_id = email.lead_id and cl.status in ('active', 'paused')
      ), listed as (
        insert into suppressions (tenant_id, address_hash, address, reason)
        select email.tenant_id, ${listed?.hash ?? null}, ${listed?.address ?? null}, ${listReason ?? "admin"}
        from email where ${listed !== null}
        on conflict (tenant_id, address_hash) do update set address = coalesce(suppressions.address, excluded.address)
      )
      select id from email`),
    db.select().from(emails).where(and(eq(emails.tenantId, scope.tenantId), eq(emails.id, input.emailId))),
  ]);
  return found(updated[0], "Email");
}
