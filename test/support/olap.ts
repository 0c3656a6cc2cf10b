// OLAP test helpers: run the ETL as the cron does, and build campaigns with email facts through the real procedures.
import { env } from "cloudflare:workers";
import { systemClock } from "../../src/platform/clock";
import { tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { aggregateEmailEvents, catchUpEmailEvents } from "../../src/tiers/olap/etl/email-events";
import { queueNames, type JobMessage } from "./runtime";
import { createTenant, oltpSql, type TestTenant } from "./factories";
import { clockedWorker } from "./clock";
import { deliver } from "./jobs";
import { fakeEmail, mailboxFor, startedCampaign } from "./oltp";
import { trpcClient } from "./worker";

export const oltpStore = () => tierStore(parseEnv(env), "oltp");
export const olapStore = () => tierStore(parseEnv(env), "olap");

export const aggregate = () => aggregateEmailEvents(oltpStore(), olapStore());
/** The job's catch-up: bounded runs of at most `maxFacts` new facts each, back to back (at most `maxRuns`). */
export const aggregateInRuns = (maxFacts: number, maxRuns = 10_000) => catchUpEmailEvents(oltpStore(), olapStore(), { maxFacts, maxRuns });

/** YYYY-MM-DD of the UTC day `offset` days from today. */
export const utcDay = (offset = 0) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
/** Noon UTC of that day, far from any midnight a slow test could cross. */
export const noonOf = (offset: number) => new Date(`${utcDay(offset)}T12:00:00.000Z`);

export interface CampaignFixture {
  tenant: TestTenant;
  campaignId: string;
  emailIds: string[];
}

/**
 * A tenant with one campaign and `emails` queued emails on it (each records a `queued` fact now). The emails are
 * created through a Worker whose queues are held, so no SEND_EMAIL runs in the background: a test's facts are the
 * only ones (a send racing a test's unsubscribe would add a `failed` fact at a moment no test controls).
 */
export async function campaignWithEmails(emails: number): Promise<CampaignFixture> {
  const tenant = await createTenant();
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const heldSends = clockedWorker(systemClock).client(tenant.admin.token);
  const { mailbox } = await mailboxFor(tenant.admin.token);
  const campaign = await startedCampaign(tenant.admin.token, 1);
  const emailIds: string[] = [];
  for (let i = 0; i < emails; i++) {
    const lead = await admin.leads.create.mutate({ email: fakeEmail() });
    const email = await heldSends.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, campaignId: campaign.id, subject: "Hi", contentStorageKey: `bodies/${crypto.randomUUID()}` });
    emailIds.push(email.id);
  }
  return { tenant, campaignId: campaign.id, emailIds };
}

export type ReportedType = "sent" | "delivered" | "bounced" | "opened" | "replied" | "failed";

export async function report(fixture: CampaignFixture, emailId: string, type: ReportedType, occurredAt: Date) {
  await trpcClient(fixture.tenant.admin.token, { batch: false }).emails.recordEvent.mutate({ emailId, type, occurredAt: occurredAt.toISOString() });
}

export function performance(fixture: CampaignFixture, from = utcDay(-120), to = utcDay(1), token = fixture.tenant.member.token) {
  return trpcClient(token, { batch: false }).analytics.campaignPerformance.query({ campaignId: fixture.campaignId, from, to });
}

/** Pending ledger jobs of one type, as the messages the queue would carry (seen as the platform, 'system' role). */
export async function pendingJobs(type: string): Promise<JobMessage[]> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_role', 'system', true)`,
    sql`select id, tenant_id, type, payload from jobs where type = ${type} and status = 'pending' order by created_at`,
  ]);
  return rows.map((r) => ({
    jobId: String(r.id),
    type: r.type as JobMessage["type"],
    tenantId: r.tenant_id === null ? null : String(r.tenant_id),
    payload: r.payload as Record<string, unknown>,
    enqueuedAt: new Date().toISOString(),
  }));
}

/** Drains one job type as the normal queue would: every pending ledger row delivered to the Worker's consumer. */
export async function runPendingJobs(type: string) {
  const messages = await pendingJobs(type);
  if (messages.length === 0) return { acked: 0, retries: [] as unknown[] };
  return deliver(queueNames.normal, messages);
}
