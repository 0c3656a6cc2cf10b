// Campaign services: CRUD, the status state machine, the sequence's steps and lead enrolment.
import { isSuppressed } from "./suppressions";
import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import type { Services } from "../../../platform/services";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { campaignLeads, campaignMailboxes, campaigns, campaignStatuses, leads, mailboxes, sequenceSteps, type StepVariant } from "../schema";
import { afterCursor, found, toPage, type Page } from "../../../platform/paging";
import { rowsOf } from "../../../platform/rows";
import { messageForJob } from "../../../platform/jobs/enqueue";
import { rowsOfJobs } from "../../../platform/jobs/rows";
import { renderStep, variantFor } from "./personalize";

export type Campaign = typeof campaigns.$inferSelect;
export type CampaignStatus = (typeof campaignStatuses)[number];
export type SequenceStep = typeof sequenceSteps.$inferSelect;

export interface CampaignSettings {
  name: string;
  timeZone: string;
  windowStartMinute: number;
  windowEndMinute: number;
  sendDays: number[];
  dailyLimit: number;
  startsAt: Date | null;
  mailboxFallback: "wait" | "move";
  trackEngagement: boolean;
}

export async function createCampaign(store: TierStore, scope: TenantScope, settings: Partial<CampaignSettings> & { name: string }): Promise<Campaign> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.insert(campaigns).values({ ...settings, tenantId: scope.tenantId }).returning(),
  ]);
  return found(rows[0], "Campaign");
}

export async function listCampaigns(
  store: TierStore,
  scope: TenantScope,
  filter: { status?: CampaignStatus; cursor?: string; limit: number },
): Promise<Page<Campaign>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(campaigns)
      .where(
        and(
          eq(campaigns.tenantId, scope.tenantId),
          filter.status ? eq(campaigns.status, filter.status) : undefined,
          afterCursor(campaigns.createdAt, campaigns.id, filter.cursor),
        ),
      )
      .orderBy(desc(campaigns.createdAt), desc(campaigns.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

export interface StepProgress {
  position: number;
  stepId: string;
  /** Active leads at this step, not due yet / due now. */
  waiting: number;
  due: number;
  emails: number;
  sent: number;
  replied: number;
  bounced: number;
  variants: Array<{ label: string; emails: number; sent: number; replied: number; bounced: number }>;
}

export interface CampaignProgress {
  leads: { total: number; waiting: number; due: number; finished: number; stopped: number; skipped: number };
  /** Why leads left the sequence (replied, bounced, unsubscribed, suppressed, removed) or were skipped (missing_variable:x). */
  reasons: Record<string, number>;
  steps: StepProgress[];
}

/**
 * The campaign, its steps, mailboxes and progress (per step and variant: leads waiting and due, emails
 * sent, replied, bounced; leads finished, stopped and skipped with reasons): five statements, one round trip.
 */
export async function getCampaign(
  store: TierStore,
  scope: TenantScope,
  id: string,
  now: Date,
): Promise<Campaign & { steps: SequenceStep[]; enrolledLeads: number; mailboxIds: string[]; progress: CampaignProgress }> {
  const [campaignRows, steps, enrolment, sent, boxes] = await tenantBatch(store, scope, (db) => [
    db.select().from(campaigns).where(and(eq(campaigns.tenantId, scope.tenantId), eq(campaigns.id, id))).limit(1),
    db
      .select()
      .from(sequenceSteps)
      .where(and(eq(sequenceSteps.tenantId, scope.tenantId), eq(sequenceSteps.campaignId, id)))
      .orderBy(asc(sequenceSteps.position)),
    db.execute(sql`
      select current_step, status, stop_reason, (next_send_at is null or next_send_at <= ${now.toISOString()}::timestamptz) as due, count(*)::int as n
      from ${campaignLeads} where tenant_id = ${scope.tenantId} and campaign_id = ${id}
      group by 1, 2, 3, 4`),
    db.execute(sql`
      select step_id, variant, count(*)::int as emails, count(sent_at)::int as sent, count(replied_at)::int as replied, count(bounced_at)::int as bounced
      from emails where tenant_id = ${scope.tenantId} and campaign_id = ${id}
      group by 1, 2`),
    db
      .select({ mailboxId: campaignMailboxes.mailboxId })
      .from(campaignMailboxes)
      .where(and(eq(campaignMailboxes.tenantId, scope.tenantId), eq(campaignMailboxes.campaignId, id)))
      .orderBy(asc(campaignMailboxes.createdAt), asc(campaignMailboxes.mailboxId)),
  ]);
  const campaign = found(campaignRows[0], "Campaign");
  const groups = rowsOf(enrolment) as Array<{ current_step: number; status: string; stop_reason: string | null; due: boolean; n: number }>;
  const emailGroups = rowsOf(sent) as Array<{ step_id: string | null; variant: string | null; emails: number; sent: number; replied: number; bounced: number }>;
  const leads = { total: 0, waiting: 0, due: 0, finished: 0, stopped: 0, skipped: 0 };
  const reasons: Record<string, number> = {};
  for (const g of groups) {
    leads.total += g.n;
    if (g.status === "active") leads[g.due ? "due" : "waiting"] += g.n;
    else if (g.status === "finished" || g.status === "stopped" || g.status === "skipped") leads[g.status] += g.n;
    if (g.stop_reason) reasons[g.stop_reason] = (reasons[g.stop_reason] ?? 0) + g.n;
  }
  const stepProgress = steps.map((step): StepProgress => {
    const atStep = groups.filter((g) => g.status === "active" && g.current_step === step.position);
    const ofStep = emailGroups.filter((g) => g.step_id === step.id);
    const sum = (key: "emails" | "sent" | "replied" | "bounced") => ofStep.reduce((total, g) => total + g[key], 0);
    return {
      position: step.position,
      stepId: step.id,
      waiting: atStep.filter((g) => !g.due).reduce((t, g) => t + g.n, 0),
      due: atStep.filter((g) => g.due).reduce((t, g) => t + g.n, 0),
      emails: sum("emails"),
      sent: sum("sent"),
      replied: sum("replied"),
      bounced: sum("bounced"),
      variants: ofStep.map((g) => ({ label: g.variant ?? "", emails: g.emails, sent: g.sent, replied: g.replied, bounced: g.bounced })),
    };
  });
  return { ...campaign, steps, enrolledLeads: leads.total, mailboxIds: boxes.map((b) => b.mailboxId), progress: { leads, reasons, steps: stepProgress } };
}

/**
 * The email a step would send a lead, rendered as the sequencer renders it (the lead's variant,
 * its variables, the thread's subject), or the reason the lead would be skipped: one round trip.
 */
export async function previewStep(store: TierStore, scope: TenantScope, input: { campaignId: string; leadId: string; step: number }) {
  const [stepRows, leadRows, thread] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(sequenceSteps)
      .where(and(eq(sequenceSteps.tenantId, scope.tenantId), eq(sequenceSteps.campaignId, input.campaignId), eq(sequenceSteps.position, input.step))),
    db.select().from(leads).where(and(eq(leads.tenantId, scope.tenantId), eq(leads.id, input.leadId))),
    db.execute(sql`select e.subject from ${campaignLeads} cl join emails e on e.tenant_id = cl.tenant_id and e.id = cl.thread_email_id
                   where cl.tenant_id = ${scope.tenantId} and cl.campaign_id = ${input.campaignId} and cl.lead_id = ${input.leadId}`),
  ]);
  const step = found(stepRows[0], "Step");
  const lead = found(leadRows[0], "Lead");
  const variant = variantFor(step.variants, lead.id, `${input.campaignId}:${step.position}`);
  const threadSubject = (rowsOf(thread)[0]?.subject as string | undefined) ?? null;
  const outcome = renderStep(variant, lead, threadSubject);
  if ("skipped" in outcome) return { variant: variant.label, subject: null, text: null, html: null, skipped: outcome.skipped };
  const { subject, text, html } = outcome.rendered;
  return { variant: variant.label, subject, text, html, skipped: null };
}

/** Takes leads out of the sequence (they keep what was sent): one statement. */
export async function removeLeads(store: TierStore, scope: TenantScope, campaignId: string, leadIds: string[]): Promise<{ removed: number }> {
  const [removed] = await tenantBatch(store, scope, (db) => [
    db
      .update(campaignLeads)
      .set({ status: "stopped", stopReason: "removed", nextSendAt: null })
      .where(
        and(
          eq(campaignLeads.tenantId, scope.tenantId),
          eq(campaignLeads.campaignId, campaignId),
          inArray(campaignLeads.leadId, leadIds),
          inArray(campaignLeads.status, ["active", "paused"]),
        ),
      )
      .returning({ leadId: campaignLeads.leadId }),
  ]);
  return { removed: removed.length };
}

/** Settings and steps can change only while nothing is being sent from them. */
const editableStatuses: CampaignStatus[] = ["draft", "paused"];

export async function updateCampaign(
  store: TierStore,
  scope: TenantScope,
  id: string,
  patch: Partial<CampaignSettings>,
): Promise<Campaign> {
  const [updated, current] = await tenantBatch(store, scope, (db) => [
    db
      .update(campaigns)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(and(eq(campaigns.tenantId, scope.tenantId), eq(campaigns.id, id), inArray(campaigns.status, editableStatuses)))
      .returning(),
    statusOf(db, scope, id),
  ]);
  if (updated[0]) return updated[0];
  throw notEditable(current[0]?.status);
}

const statusOf = (db: NeonHttpDatabase, scope: TenantScope, id: string) =>
  db
    .select({ status: campaigns.status })
    .from(campaigns)
    .where(and(eq(campaigns.tenantId, scope.tenantId), eq(campaigns.id, id)));

function notEditable(status: string | undefined): AppError {
  if (!status) return new AppError("NOT_FOUND", "Campaign not found");
  return new AppError("CONFLICT", `A ${status} campaign cannot be edited; pause it first`, {
    details: { status, editableIn: editableStatuses },
  });
}

export const campaignActions = ["schedule", "start", "pause", "resume", "complete"] as const;
export type CampaignAction = (typeof campaignActions)[number];

/**
 * The state machine: each action's allowed source states and its target. Anything else is refused.
 * A scheduled campaign becomes running at its startsAt (the sequencer's tick), so scheduling needs one.
 */
export const transitions: Record<CampaignAction, { from: CampaignStatus[]; to: CampaignStatus; needsSteps: boolean; needsStartsAt?: boolean }> = {
  schedule: { from: ["draft"], to: "scheduled", needsSteps: true, needsStartsAt: true },
  start: { from: ["draft", "scheduled"], to: "running", needsSteps: true },
  pause: { from: ["running", "scheduled"], to: "paused", needsSteps: false },
  resume: { from: ["paused"], to: "running", needsSteps: true },
  complete: { from: ["scheduled", "running", "paused"], to: "completed", needsSteps: false },
};

/**
 * Applies an action in one conditional UPDATE, so two concurrent actions cannot both pass the
 * check; a second statement in the same transaction reads why nothing changed when it did not.
 */
export async function transitionCampaign(
  services: Services,
  scope: TenantScope,
  id: string,
  action: CampaignAction,
): Promise<Campaign> {
  const rule = transitions[action];
  const hasSteps = sql`exists (select 1 from ${sequenceSteps} where ${sequenceSteps.tenantId} = ${scope.tenantId} and ${sequenceSteps.campaignId} = ${id})`;
  // Recorded before the update, under the update's own condition.
  const startsAtSet = rule.needsStartsAt ? sql` and ${campaigns.startsAt} is not null` : sql``;
  const allowed = sql`exists (select 1 from ${campaigns} where ${campaigns.tenantId} = ${scope.tenantId} and ${campaigns.id} = ${id}
    and ${inArray(campaigns.status, rule.from)}${rule.needsSteps ? sql` and ${hasSteps}` : sql``}${startsAtSet})`;
  const audit = services.audit.action(scope, `campaign.${action}`, { type: "campaign", id }, { to: rule.to }, allowed);
  const [, released, updated, current, steps] = await tenantBatch(services.store("oltp"), scope, (db) => [
    audit.insert(db),
    // Resuming releases the campaign's held sends: their jobs were deferred while it was paused (for up to
    // inactiveMailboxRetrySeconds); made due now, under the transition's own condition, and sent after commit.
    // The delayed messages still in the queue then claim nothing, or find the job pending and check it again.
    action === "resume"
      ? db.execute(sql`
          update jobs j set scheduled_at = now(), updated_at = now()
          where j.tenant_id = ${scope.tenantId} and j.type = 'SEND_EMAIL' and j.status = 'pending' and j.scheduled_at > now()
            and j.id in (select e.id from emails e where e.tenant_id = ${scope.tenantId} and e.campaign_id = ${id} and e.status = 'queued')
            and ${allowed}
          returning j.*`)
      : db.execute(sql`select 1 where false`),
    db
      .update(campaigns)
      .set({ status: rule.to, updatedAt: sql`now()` })
      .where(
        and(
          eq(campaigns.tenantId, scope.tenantId),
          eq(campaigns.id, id),
          inArray(campaigns.status, rule.from),
          rule.needsSteps ? hasSteps : undefined,
          rule.needsStartsAt ? sql`${campaigns.startsAt} is not null` : undefined,
        ),
      )
      .returning(),
    db.select({ status: campaigns.status, startsAt: campaigns.startsAt }).from(campaigns).where(and(eq(campaigns.tenantId, scope.tenantId), eq(campaigns.id, id))),
    db.select({ has: sql<boolean>`${hasSteps}` }).from(sql`(select 1) as one`),
  ]);
  audit.sendAfterCommit();
  services.jobs.sendAfterResponse(rowsOfJobs(released).map((job) => messageForJob(job, services.clock)));
  if (updated[0]) return updated[0];
  const status = current[0]?.status;
  if (!status) throw new AppError("NOT_FOUND", "Campaign not found");
  if (!rule.from.includes(status as CampaignStatus)) {
    throw new AppError("CONFLICT", `Cannot ${action} a ${status} campaign`, {
      details: { status, action, allowedFrom: rule.from },
    });
  }
  if (rule.needsSteps && !steps[0]?.has) {
    throw new AppError("BAD_REQUEST", `Cannot ${action} a campaign without steps; add at least one step first`);
  }
  if (rule.needsStartsAt && !current[0]?.startsAt) {
    throw new AppError("BAD_REQUEST", `Cannot ${action} a campaign without startsAt; set it with campaigns.update first`);
  }
  throw new AppError("CONFLICT", "The campaign changed meanwhile; read it again");
}

export interface StepInput {
  delayHours: number;
  variants: StepVariant[];
}

/**
 * Replaces the sequence's steps. The first statement locks the campaign row so its status cannot
 * change between the check and the writes; all of it is one transaction and one round trip.
 */
export async function setCampaignSteps(
  store: TierStore,
  scope: TenantScope,
  id: string,
  steps: StepInput[],
): Promise<SequenceStep[]> {
  const editable = sql`exists (select 1 from ${campaigns} where ${campaigns.tenantId} = ${scope.tenantId} and ${campaigns.id} = ${id}
                               and ${campaigns.status} in ('draft', 'paused'))`;
  const rows = steps.map((step, position) => ({ ...step, position }));
  const [locked, , , saved] = await tenantBatch(store, scope, (db) => [
    db.select({ status: campaigns.status }).from(campaigns).where(and(eq(campaigns.tenantId, scope.tenantId), eq(campaigns.id, id))).for("update"),
    db.delete(sequenceSteps).where(and(eq(sequenceSteps.tenantId, scope.tenantId), eq(sequenceSteps.campaignId, id), editable)),
    db.execute(sql`
      insert into ${sequenceSteps} (tenant_id, campaign_id, position, delay_hours, variants)
      select ${scope.tenantId}, ${id}, s.position, s.delay_hours, s.variants
      from jsonb_to_recordset(${JSON.stringify(rows.map((r) => ({ position: r.position, delay_hours: r.delayHours, variants: r.variants })))}::jsonb)
           as s(position int, delay_hours int, variants jsonb)
      where ${editable}`),
    db
      .select()
      .from(sequenceSteps)
      .where(and(eq(sequenceSteps.tenantId, scope.tenantId), eq(sequenceSteps.campaignId, id)))
      .orderBy(asc(sequenceSteps.position)),
  ]);
  const status = locked[0]?.status;
  if (!status || !editableStatuses.includes(status as CampaignStatus)) throw notEditable(status);
  return saved;
}

/**
 * Enrols up to 1,000 leads in one INSERT ... SELECT: only the tenant's own leads that are neither
 * unsubscribed nor bounced and not already enrolled; everything else is counted as skipped. Their
 * next_send_at stays NULL: the sequencer plans the first step when it first finds them running.
 */
export async function enrolLeads(
  store: TierStore,
  scope: TenantScope,
  campaignId: string,
  leadIds: string[],
): Promise<{ enrolled: number; skipped: number }> {
  const [inserted, current] = await tenantBatch(store, scope, (db) => [
    db.execute<{ lead_id: string }>(sql`
      insert into ${campaignLeads} (tenant_id, campaign_id, lead_id)
      select ${scope.tenantId}, c.id, l.id
      from ${campaigns} c
      join ${leads} l on l.tenant_id = c.tenant_id
      where c.tenant_id = ${scope.tenantId} and c.id = ${campaignId} and c.status <> 'completed'
        and l.id = any(${`{${leadIds.join(",")}}`}::uuid[])
        and l.unsubscribed_at is null and l.bounced_at is null and not ${isSuppressed(sql`l.tenant_id`, sql`l.email`)}
      on conflict do nothing
      returning lead_id`),
    statusOf(db, scope, campaignId),
  ]);
  const status = current[0]?.status;
  if (!status) throw new AppError("NOT_FOUND", "Campaign not found");
  if (status === "completed") throw new AppError("CONFLICT", "A completed campaign takes no new leads", { details: { status } });
  return { enrolled: inserted.rows.length, skipped: leadIds.length - inserted.rows.length };
}

/**
 * Replaces the campaign's mailboxes, in one transaction: only when every id is one of the tenant's
 * mailboxes and the campaign is not completed; otherwise nothing changes and the reason is read back.
 */
export async function setCampaignMailboxes(store: TierStore, scope: TenantScope, id: string, mailboxIds: string[]): Promise<{ mailboxIds: string[] }> {
  const ids = sql`${`{${mailboxIds.join(",")}}`}::uuid[]`;
  const allowed = sql`(select count(*) from ${mailboxes} where ${mailboxes.tenantId} = ${scope.tenantId} and ${mailboxes.id} = any(${ids})) = ${mailboxIds.length}
    and exists (select 1 from ${campaigns} where ${campaigns.tenantId} = ${scope.tenantId} and ${campaigns.id} = ${id} and ${campaigns.status} <> 'completed')`;
  const [, , current, known, saved] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`delete from ${campaignMailboxes} where tenant_id = ${scope.tenantId} and campaign_id = ${id} and mailbox_id <> all(${ids}) and ${allowed}`),
    db.execute(sql`insert into ${campaignMailboxes} (tenant_id, campaign_id, mailbox_id)
                   select ${scope.tenantId}, ${id}, m.id from ${mailboxes} m where m.tenant_id = ${scope.tenantId} and m.id = any(${ids}) and ${allowed}
                   on conflict do nothing`),
    statusOf(db, scope, id),
    db.select({ id: mailboxes.id }).from(mailboxes).where(and(eq(mailboxes.tenantId, scope.tenantId), sql`${mailboxes.id} = any(${ids})`)),
    db
      .select({ mailboxId: campaignMailboxes.mailboxId })
      .from(campaignMailboxes)
      .where(and(eq(campaignMailboxes.tenantId, scope.tenantId), eq(campaignMailboxes.campaignId, id)))
      .orderBy(asc(campaignMailboxes.createdAt), asc(campaignMailboxes.mailboxId)),
  ]);
  const status = current[0]?.status;
  if (!status) throw new AppError("NOT_FOUND", "Campaign not found");
  if (status === "completed") throw new AppError("CONFLICT", "A completed campaign's mailboxes cannot change", { details: { status } });
  if (known.length !== mailboxIds.length) {
    throw new AppError("NOT_FOUND", "Mailbox not found");
  }
  return { mailboxIds: saved.map((r) => r.mailboxId) };
}
