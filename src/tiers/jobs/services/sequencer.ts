// SEQUENCE_CAMPAIGNS: the campaign sequencer's tick. For each tenant in turn, due leads of running campaigns get their step's email (content tier), its SEND_EMAIL job and their next step in one OLTP transaction.
import { sql } from "drizzle-orm";
import { z } from "zod";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { internalBatch, type NonEmptyBatch, tenantBatch, type TenantScope } from "../../../platform/db";
import { timeOrderedId } from "../../../platform/ids";
import { defineJob } from "../../../platform/jobs/define";
import { groupBy, rowsOf } from "../../../platform/rows";
import { type Services, tenantSystemScope } from "../../../platform/services";
import { decideStep, isSuppressed, type LeadVariables, type StepVariant, variantFor } from "../../oltp";
import { jobsConfig } from "../config";
import { isTimeZone, localDate, secondsUntilWindow, type SendWindow } from "./send-email";
import { pendingSequenceKey } from "./sequence-content";

/** Tunables of a tick: a batch is one tenant's slice; tenants take turns, so a big campaign never starves a small one. */
export const sequencerConfig = {
  /** Leads one tenant advances per batch (one OLTP write transaction). */
  batchSize: 200,
  /** Batches per tick in all; a tick that used them all continues in a fresh delivery. */
  maxBatchesPerTick: 40,
  /** Tenants worked on at once within a round. */
  tenantConcurrency: 4,
};

interface DueLead {
  campaign_id: string;
  lead_id: string;
  current_step: number;
  /** NULL until the lead's first step is planned: enrolment does not know when the campaign will start. */
  next_send_at: string | null;
  mailbox_id: string | null;
  /** The subject of the thread's first email: a follow-up's is "Re: " it unless the step sets its own. */
  thread_subject: string | null;
  email: string;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  custom_fields: Record<string, string | number | boolean | null>;
  stop: string | null;
}

interface RunningCampaign {
  id: string;
  time_zone: string;
  window_start_minute: number;
  window_end_minute: number;
  send_days: number[];
  daily_limit: number;
  mailbox_fallback: string;
  planned_today: number;
}

interface Step {
  id: string;
  campaign_id: string;
  position: number;
  delay_hours: number;
  variants: StepVariant[];
}

interface CampaignMailbox {
  campaign_id: string;
  mailbox_id: string;
  address: string;
  status: string;
  allowance: number;
  planned_today: number;
}

/** What the plan decided for one claimed lead; the write applies it only if the lead is still where it was read. */
interface LeadAction {
  campaign_id: string;
  lead_id: string;
  step: number;
  action: "send" | "postpone" | "finish" | "stopped" | "skipped";
  email_id: string | null;
  step_id: string | null;
  variant: string | null;
  mailbox_id: string | null;
  subject: string | null;
  next_send_at: string | null;
  reason: string | null;
}

export interface TenantBatchResult {
  claimed: number;
  created: number;
  /** True when the tenant has more due now. */
  more: boolean;
  /** The tenant's next plan, read at the end of this batch's write transaction: its next batch starts from it. */
  next?: Plan;
}

const windowOf = (campaign: RunningCampaign, lead: DueLead): SendWindow => {
  const zone = lead.custom_fields.timezone ?? lead.custom_fields.time_zone;
  return {
    timeZone: isTimeZone(zone) ? zone : isTimeZone(campaign.time_zone) ? campaign.time_zone : "UTC",
    startMinute: campaign.window_start_minute,
    endMinute: campaign.window_end_minute,
    days: campaign.send_days,
  };
};

/** The first instant at or after `at` inside the window. */
const intoWindow = (window: SendWindow, at: Date) => new Date(at.getTime() + secondsUntilWindow(window, at) * 1000);

const nextUtcDay = (at: Date) => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));

/** The tenant's standing and today's plan so far. */
const standingQuery = (t: string, day: string) =>
  sql`select status, daily_send_limit,
             (select coalesce(sum(planned), 0)::int from sequencer_daily_plans where tenant_id = ${t} and day = ${day}::date) as planned_today
      from tenants where id = ${t}`;

/** The tenant's due leads, oldest first, with what deciding them needs. */
const dueQuery = (t: string, at: string) =>
  sql`select cl.campaign_id, cl.lead_id, cl.current_step, cl.next_send_at, cl.mailbox_id, th.subject as thread_subject,
             l.email, l.first_name, l.last_name, l.company, l.custom_fields,
             case when l.bounced_at is not null then 'bounced'
                  when l.unsubscribed_at is not null then 'unsubscribed'
                  when ${isSuppressed(sql`l.tenant_id`, sql`l.email`)} then 'suppressed'
                  when exists (select 1 from emails r where r.tenant_id = cl.tenant_id and r.lead_id = cl.lead_id
                                 and r.campaign_id = cl.campaign_id and r.replied_at is not null) then 'replied' end as stop
      from campaign_leads cl
      join campaigns c on c.tenant_id = cl.tenant_id and c.id = cl.campaign_id and c.status = 'running'
      join leads l on l.tenant_id = cl.tenant_id and l.id = cl.lead_id
      -- Lateral, so the thread's email is looked up per due lead by key: as a plain join the planner may read every
      -- email of the tenant for each batch.
      left join lateral (select te.subject from emails te where te.tenant_id = cl.tenant_id and te.id = cl.thread_email_id limit 1) th on true
      where cl.tenant_id = ${t} and cl.status = 'active' and (cl.next_send_at is null or cl.next_send_at <= ${at}::timestamptz)
      order by cl.next_send_at nulls first, cl.lead_id
      limit ${sequencerConfig.batchSize}`;

/**
 * A tenant's whole plan, read at its first batch of a tick: start its scheduled campaigns whose time has come,
 * complete running ones with no lead left in the sequence, then its standing and due leads and
 * what changes only by an admin's hand: the running campaigns, their steps and their mailboxes' allowances. Later
 * batches of the tick carry these (a tick is at most maxBatchesPerTick batches) and count their own sends against
 * the allowances; the write re-checks each campaign is still running, SEND_EMAIL each mailbox when it sends.
 */
function planStatements(db: NeonHttpDatabase, scope: TenantScope, now: Date, day: string) {
  const at = now.toISOString();
  const t = scope.tenantId;
  return [
    db.execute(sql`update campaigns set status = 'running', updated_at = now()
                   where tenant_id = ${t} and status = 'scheduled' and starts_at <= ${at}::timestamptz`),
    db.execute(sql`update campaigns c set status = 'completed', updated_at = now()
                   where c.tenant_id = ${t} and c.status = 'running'
                     and exists (select 1 from campaign_leads cl where cl.tenant_id = c.tenant_id and cl.campaign_id = c.id)
                     and not exists (select 1 from campaign_leads cl where cl.tenant_id = c.tenant_id and cl.campaign_id = c.id and cl.status in ('active', 'paused'))`),
    db.execute(standingQuery(t, day)),
    db.execute(dueQuery(t, at)),
    db.execute(sql`
      select c.id, c.time_zone, c.window_start_minute, c.window_end_minute, c.send_days, c.daily_limit, c.mailbox_fallback,
             (select coalesce(sum(planned), 0)::int from sequencer_daily_plans p
              where p.tenant_id = c.tenant_id and p.campaign_id = c.id and p.day = ${day}::date) as planned_today
      from campaigns c where c.tenant_id = ${t} and c.status = 'running'`),
    db.execute(sql`
      select s.id, s.campaign_id, s.position, s.delay_hours, s.variants
      from sequence_steps s join campaigns c on c.tenant_id = s.tenant_id and c.id = s.campaign_id and c.status = 'running'
      where s.tenant_id = ${t}`),
    db.execute(sql`
      select cm.campaign_id, m.id as mailbox_id, m.address,
             -- A mailbox on a domain that is not verified sends nothing: to the plan it is as good as paused.
             case when d.verification_status = 'verified' then m.status else 'unverified' end as status,
             case when m.warmup_enabled then least(m.daily_limit, m.warmup_start + m.warmup_day * m.warmup_increment) else m.daily_limit end as allowance,
             (select coalesce(sum(planned), 0)::int from sequencer_daily_plans p
              where p.tenant_id = m.tenant_id and p.mailbox_id = m.id and p.day = ${day}::date) as planned_today
      from campaign_mailboxes cm
      join campaigns c on c.tenant_id = cm.tenant_id and c.id = cm.campaign_id and c.status = 'running'
      join mailboxes m on m.tenant_id = cm.tenant_id and m.id = cm.mailbox_id
      join domains d on d.tenant_id = m.tenant_id and d.id = m.domain_id
      where cm.tenant_id = ${t}
      order by cm.created_at, m.id`),
  ] as const;
}

export interface Plan {
  tenant: { status: string; daily_send_limit: number; planned_today: number } | undefined;
  due: DueLead[];
  campaigns: RunningCampaign[];
  steps: Step[];
  mailboxes: CampaignMailbox[];
}

function parsePlan(results: unknown[]): Plan {
  const [, , tenant, due, campaigns, steps, boxes] = results;
  return {
    tenant: rowsOf(tenant)[0] as Plan["tenant"],
    due: rowsOf(due) as unknown as DueLead[],
    campaigns: rowsOf(campaigns) as unknown as RunningCampaign[],
    steps: rowsOf(steps) as unknown as Step[],
    mailboxes: rowsOf(boxes) as unknown as CampaignMailbox[],
  };
}

/** The next batch's plan: standing and due leads as read, the rest carried with this batch's sends counted in. */
function carryPlan(tenant: Plan["tenant"], due: DueLead[], carried: Plan, sent: LeadAction[]): Plan {
  const byCampaign = new Map<string, number>();
  const byMailbox = new Map<string, number>();
  for (const s of sent) {
    byCampaign.set(s.campaign_id, (byCampaign.get(s.campaign_id) ?? 0) + 1);
    if (s.mailbox_id) byMailbox.set(s.mailbox_id, (byMailbox.get(s.mailbox_id) ?? 0) + 1);
  }
  return {
    tenant,
    due,
    campaigns: carried.campaigns.map((c) => ({ ...c, planned_today: c.planned_today + (byCampaign.get(c.id) ?? 0) })),
    steps: carried.steps,
    // A mailbox's allowance is its own across campaigns: every row of it counts the send.
    mailboxes: carried.mailboxes.map((m) => ({ ...m, planned_today: m.planned_today + (byMailbox.get(m.mailbox_id) ?? 0) })),
  };
}

/** The plan on its own: one round trip (a tenant's first batch of a tick). */
async function readPlan(services: Services, scope: TenantScope, now: Date, day: string): Promise<Plan> {
  return parsePlan(await tenantBatch(services.store("oltp"), scope, (db) => [...planStatements(db, scope, now, day)]));
}

/**
 * Decides each due lead's action in memory. Allowances are counted per UTC day (the mailbox's day, as
 * SEND_EMAIL counts it): a lead whose mailbox, campaign or tenant has nothing left today waits for the
 * window on the next day. A new lead takes the campaign mailbox with the most left today, and keeps it.
 */
function planBatch(plan: Plan, now: Date): { actions: LeadAction[]; sends: LeadAction[] } {
  const actions: LeadAction[] = [];
  const sends: LeadAction[] = [];
  const tenantLeft = { n: (plan.tenant?.daily_send_limit ?? 0) - (plan.tenant?.planned_today ?? 0) };
  const campaigns = new Map(plan.campaigns.map((c) => [c.id, { ...c, left: c.daily_limit - c.planned_today }]));
  const mailboxLeft = new Map<string, number>();
  for (const m of plan.mailboxes) mailboxLeft.set(m.mailbox_id, m.allowance - m.planned_today);
  const stepsByCampaign = groupBy(plan.steps, (s) => s.campaign_id);
  for (const steps of stepsByCampaign.values()) steps.sort((a, b) => a.position - b.position);
  const boxesByCampaign = groupBy(plan.mailboxes, (m) => m.campaign_id);
  /** The campaign's active mailbox with the most left today (the first of equals, in the plan's order). */
  const roomiestOf = (boxes: CampaignMailbox[]) => {
    let best: CampaignMailbox | undefined;
    for (const m of boxes) {
      if (m.status === "active" && (best === undefined || (mailboxLeft.get(m.mailbox_id) ?? 0) > (mailboxLeft.get(best.mailbox_id) ?? 0))) best = m;
    }
    return best;
  };

  for (const lead of plan.due) {
    const base = { campaign_id: lead.campaign_id, lead_id: lead.lead_id, step: lead.current_step, email_id: null, step_id: null, variant: null, subject: null, reason: null };
    const act = (action: Partial<LeadAction> & Pick<LeadAction, "action">) => actions.push({ ...base, mailbox_id: lead.mailbox_id, next_send_at: null, ...action });
    const campaign = campaigns.get(lead.campaign_id);
    if (!campaign) continue;
    if (lead.stop) {
      act({ action: "stopped", reason: lead.stop });
      continue;
    }
    const steps = stepsByCampaign.get(lead.campaign_id) ?? [];
    const step = steps[lead.current_step];
    if (!step) {
      act({ action: "finish" });
      continue;
    }
    const window = windowOf(campaign, lead);
    if (lead.next_send_at === null && step.delay_hours > 0) {
      // The first step's delay counts from the tick that first finds the lead in a running campaign.
      act({ action: "postpone", next_send_at: intoWindow(window, new Date(now.getTime() + step.delay_hours * 3600_000)).toISOString() });
      continue;
    }
    if (secondsUntilWindow(window, now) > 0) {
      act({ action: "postpone", next_send_at: intoWindow(window, now).toISOString() });
      continue;
    }
    const boxes = boxesByCampaign.get(lead.campaign_id) ?? [];
    const roomiest = roomiestOf(boxes);
    const own = boxes.find((m) => m.mailbox_id === lead.mailbox_id);
    // A lead keeps its mailbox; when that one is paused or bounce-protected it waits, or moves if the campaign says so.
    const box = own && (own.status === "active" || campaign.mailbox_fallback !== "move" || !roomiest) ? own : roomiest;
    if (!box) {
      act({ action: "postpone", next_send_at: new Date(now.getTime() + jobsConfig.sendEmail.inactiveMailboxRetrySeconds * 1000).toISOString() });
      continue;
    }
    if (box.status !== "active") {
      act({ action: "postpone", mailbox_id: box.mailbox_id, next_send_at: new Date(now.getTime() + jobsConfig.sendEmail.inactiveMailboxRetrySeconds * 1000).toISOString() });
      continue;
    }
    if ((mailboxLeft.get(box.mailbox_id) ?? 0) <= 0 || campaign.left <= 0 || tenantLeft.n <= 0) {
      act({ action: "postpone", mailbox_id: box.mailbox_id, next_send_at: intoWindow(window, nextUtcDay(now)).toISOString() });
      continue;
    }
    const variant = variantFor(step.variants, lead.lead_id, `${lead.campaign_id}:${step.position}`);
    if (!variant.text && !variant.html) {
      act({ action: "skipped", reason: "step_without_template" });
      continue;
    }
    const variables: LeadVariables = {
      email: lead.email,
      firstName: lead.first_name,
      lastName: lead.last_name,
      company: lead.company,
      customFields: lead.custom_fields ?? {},
    };
    // Decided here (a missing variable skips the lead) with the subject; SEND_EMAIL renders the body when it sends
    // and stores it then (sequence-content.ts).
    const outcome = decideStep(variant, variables, lead.thread_subject);
    if ("skipped" in outcome) {
      act({ action: "skipped", reason: outcome.skipped });
      continue;
    }
    const emailId = timeOrderedId();
    const next = steps[lead.current_step + 1];
    const nextAt = next ? intoWindow(window, new Date(now.getTime() + next.delay_hours * 3600_000)).toISOString() : null;
    const action: LeadAction = {
      ...base,
      action: "send",
      email_id: emailId,
      step_id: step.id,
      variant: outcome.variant,
      mailbox_id: box.mailbox_id,
      subject: outcome.subject,
      next_send_at: nextAt,
    };
    actions.push(action);
    sends.push(action);
    mailboxLeft.set(box.mailbox_id, (mailboxLeft.get(box.mailbox_id) ?? 0) - 1);
    campaign.left -= 1;
    tenantLeft.n -= 1;
  }
  return { actions, sends };
}

/**
 * The batch's one OLTP transaction. Its write statement claims the leads still where the plan read them (active, at
 * the same step, due, campaign running) with FOR UPDATE SKIP LOCKED, so a concurrent or repeated tick claims none of
 * them twice; it inserts the claimed sends' emails (never to a lead suppressed meanwhile), their queued events,
 * SEND_EMAIL ledger rows, usage and day plans, and moves each claimed lead on. Two reads follow in the same
 * transaction (the same round trip), the next batch's standing and due leads: their snapshot shows this write, so
 * the leads it moved are no longer due and its plans are counted, and their rows travel as rows, not as JSON.
 */
function writeStatements(services: Services, scope: TenantScope, now: Date, day: string, actions: LeadAction[], sends: LeadAction[]) {
  const t = scope.tenantId;
  const sendJobs = services.jobs.prepare(
    t,
    sends.map((s) => ({ type: "SEND_EMAIL", id: s.email_id!, payload: { emailId: s.email_id }, idempotencyKey: `email:${s.email_id}` })),
  );
  const main = sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(actions)}::jsonb) as r(
        campaign_id uuid, lead_id uuid, step int, action text, email_id uuid, step_id uuid, variant text,
        mailbox_id uuid, subject text, next_send_at timestamptz, reason text)
    ), claimed as (
      -- The claimed leads' actions: the CTEs below read these rows, not input joined to them again (the planner
      -- estimates a CTE at one row and would nest-loop every join between two of them).
      select r.*, cl.thread_email_id from campaign_leads cl
      join input r on r.campaign_id = cl.campaign_id and r.lead_id = cl.lead_id
      where cl.tenant_id = ${t} and cl.status = 'active' and cl.current_step = r.step
        and (cl.next_send_at is null or cl.next_send_at <= ${now.toISOString()}::timestamptz)
        and exists (select 1 from campaigns c where c.tenant_id = cl.tenant_id and c.id = cl.campaign_id and c.status = 'running')
      for update of cl skip locked
    ), email as (
      insert into emails (id, tenant_id, campaign_id, step_id, variant, lead_id, mailbox_id, subject, content_storage_key)
      select r.email_id, l.tenant_id, r.campaign_id, r.step_id, r.variant, l.id, m.id, r.subject, ${pendingSequenceKey("")} || r.email_id::text
      from claimed r
      join leads l on l.tenant_id = ${t} and l.id = r.lead_id and l.unsubscribed_at is null and l.bounced_at is null
        and not ${isSuppressed(sql`l.tenant_id`, sql`l.email`)}
      join mailboxes m on m.tenant_id = ${t} and m.id = r.mailbox_id
      where r.action = 'send'
      returning id, tenant_id, campaign_id, lead_id, mailbox_id, queued_at
    ), event as (
      insert into email_events (tenant_id, email_id, type, occurred_at)
      select tenant_id, id, 'queued', queued_at from email
    ), ledger as (
      -- The SEND_EMAIL ledger rows of the emails this statement inserted, and only those.
      ${sendJobs.insertSql(sql`r.id in (select id from email)`)}
    ), usage as (
      insert into usage_counters (tenant_id, period_start, emails_queued)
      select tenant_id, date_trunc('month', now() at time zone 'UTC') at time zone 'UTC', count(*)::int from email group by tenant_id
      on conflict (tenant_id, period_start) do update set emails_queued = usage_counters.emails_queued + excluded.emails_queued
    ), planned as (
      insert into sequencer_daily_plans as p (tenant_id, campaign_id, mailbox_id, day, planned)
      select tenant_id, campaign_id, mailbox_id, ${day}::date, count(*)::int from email group by tenant_id, campaign_id, mailbox_id
      on conflict (tenant_id, campaign_id, mailbox_id, day) do update set planned = p.planned + excluded.planned
    ), moved as (
      update campaign_leads cl set
        status = case r.action
                   when 'send' then case when not r.sent then 'stopped' when r.next_send_at is null then 'finished' else 'active' end
                   when 'postpone' then 'active'
                   when 'finish' then 'finished'
                   else r.action end,
        stop_reason = case when r.action = 'send' and not r.sent then 'suppressed' else r.reason end,
        current_step = case when r.sent then cl.current_step + 1 else cl.current_step end,
        next_send_at = case when r.sent or r.action = 'postpone' then r.next_send_at else null end,
        mailbox_id = coalesce(r.mailbox_id, cl.mailbox_id),
        thread_email_id = case when r.sent then coalesce(cl.thread_email_id, r.email_id) else cl.thread_email_id end
      -- Whether the lead's email was inserted: a hashed lookup of the inserted ids.
      from (select c.*, coalesce(c.email_id in (select id from email), false) as sent from claimed c) r
      where cl.tenant_id = ${t} and cl.campaign_id = r.campaign_id and cl.lead_id = r.lead_id
      returning 1
    )
    select (select count(*)::int from moved) as claimed, coalesce((select json_agg(id) from email), '[]'::json) as created`;
  return {
    sendJobs,
    build: (db: NeonHttpDatabase): NonEmptyBatch => [db.execute(main), db.execute(standingQuery(t, day)), db.execute(dueQuery(t, now.toISOString()))],
  };
}

/**
 * One tenant's batch: plan in memory from the plan (carried from the previous batch, its due leads read by that
 * batch's transaction; or read whole now), then one write transaction that also reads the next due leads; the
 * SEND_EMAIL messages after commit. The bodies are rendered and stored by SEND_EMAIL (sequence-content.ts), so a batch touches
 * neither R2 nor the content catalog: one OLTP round trip per batch after a tenant's first.
 */
export async function advanceTenant(services: Services, tenantId: string, carried?: Plan): Promise<TenantBatchResult> {
  const scope = tenantSystemScope(tenantId);
  const now = services.clock.now();
  const day = localDate("UTC", now);
  const plan = carried ?? (await readPlan(services, scope, now, day));
  if (plan.tenant?.status !== "active" || plan.due.length === 0) return { claimed: 0, created: 0, more: false };
  const { actions, sends } = planBatch(plan, now);
  if (actions.length === 0) return { claimed: 0, created: 0, more: false };

  const write = writeStatements(services, scope, now, day, actions, sends);
  const [main, standing, due] = await tenantBatch(services.store("oltp"), scope, write.build);
  const result = rowsOf(main)[0] as { claimed: number; created: string[] };
  const created = new Set(result.created);
  await services.jobs.send(write.sendJobs.messages.filter((m) => created.has(m.message.jobId)));
  const next = carryPlan(rowsOf(standing)[0] as Plan["tenant"], rowsOf(due) as unknown as DueLead[], plan, sends.filter((s) => created.has(s.email_id!)));
  return { claimed: Number(result.claimed), created: created.size, more: next.tenant?.status === "active" && next.due.length > 0, next };
}

/** Tenants with a running campaign, or a scheduled one whose start has come: the one cross-tenant read (system role). */
async function tenantsWithCampaigns(services: Services, now: Date): Promise<string[]> {
  const [rows] = await internalBatch(services.store("oltp"), "system", null, (db) => [
    db.execute(sql`select distinct tenant_id from campaigns
                   where status = 'running' or (status = 'scheduled' and starts_at <= ${now.toISOString()}::timestamptz)`),
  ]);
  return rowsOf(rows).map((r) => String(r.tenant_id));
}

/**
 * A tick: rounds over the tenants with campaigns, each tenant one batch per round (a few at a time),
 * until none has more due or the tick's batches are spent. The round order starts at a random tenant,
 * so no tenant is always last. Returns what it did and whether work is left.
 */
export async function runSequencerTick(services: Services): Promise<{ batches: number; claimed: number; created: number; more: boolean }> {
  const tenants = await tenantsWithCampaigns(services, services.clock.now());
  const offset = tenants.length > 0 ? Math.floor(Math.random() * tenants.length) : 0;
  let pending = [...tenants.slice(offset), ...tenants.slice(0, offset)];
  const totals = { batches: 0, claimed: 0, created: 0 };
  // Each tenant's next plan, read by its previous batch's write transaction.
  const plans = new Map<string, Plan>();
  while (pending.length > 0 && totals.batches < sequencerConfig.maxBatchesPerTick) {
    const round = pending.slice(0, sequencerConfig.maxBatchesPerTick - totals.batches);
    const next: string[] = [];
    for (let start = 0; start < round.length; start += sequencerConfig.tenantConcurrency) {
      const slice = round.slice(start, start + sequencerConfig.tenantConcurrency);
      const results = await Promise.all(slice.map((tenantId) => advanceTenant(services, tenantId, plans.get(tenantId))));
      results.forEach((result, i) => {
        totals.batches += 1;
        totals.claimed += result.claimed;
        totals.created += result.created;
        if (result.more && result.claimed > 0) {
          next.push(slice[i]!);
          if (result.next) plans.set(slice[i]!, result.next);
        }
      });
    }
    pending = [...next, ...pending.slice(round.length)];
  }
  return { ...totals, more: pending.length > 0 };
}

/**
 * The tick as a platform job. It is idempotent (every write claims its leads first), so a redelivery
 * or two ticks at once send nothing twice. A tick that spent its batches with work left continues in
 * a fresh delivery rather than waiting for the next cron run.
 */
export const sequenceCampaignsJob = defineJob({
  type: "SEQUENCE_CAMPAIGNS",
  payload: z.object({}).strict(),
  queue: "normal",
  ledger: true,
  maxAttempts: 3,
  backoff: { baseSeconds: 30, maxSeconds: 300 },
  run: async ({ services }) => {
    const tick = await runSequencerTick(services);
    services.logger.info("sequencer tick", tick);
    return tick.more ? { continueWith: {} } : { progress: tick };
  },
});
