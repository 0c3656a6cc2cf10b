// OLAP test helpers: run the ETL as the cron does, and build campaigns with email facts through the real procedures.
import { env } from "cloudflare:workers";
import { tierStore } from "../../src/core/db";
import { parseEnv } from "../../src/core/env";
import { aggregateCampaignEvents } from "../../src/tiers/olap/etl/campaign-events";
import { createTenant, type TestTenant } from "./factories";
import { campaignWithSteps, fakeEmail, mailboxFor } from "./oltp";
import { trpcClient } from "./worker";

export const oltpStore = () => tierStore(parseEnv(env), "oltp");
export const olapStore = () => tierStore(parseEnv(env), "olap");

export const aggregate = () => aggregateCampaignEvents(oltpStore(), olapStore());

/** YYYY-MM-DD of the UTC day `offset` days from today. */
export const utcDay = (offset = 0) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
/** Noon UTC of that day, far from any midnight a slow test could cross. */
export const noonOf = (offset: number) => new Date(`${utcDay(offset)}T12:00:00.000Z`);

export interface CampaignFixture {
  tenant: TestTenant;
  campaignId: string;
  emailIds: string[];
}

/** A tenant with one campaign and `emails` queued emails on it (each records a `queued` fact now). */
export async function campaignWithEmails(emails: number): Promise<CampaignFixture> {
  const tenant = await createTenant();
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const { mailbox } = await mailboxFor(tenant.admin.token);
  const campaign = await campaignWithSteps(tenant.admin.token, 0);
  const emailIds: string[] = [];
  for (let i = 0; i < emails; i++) {
    const lead = await admin.leads.create.mutate({ email: fakeEmail() });
    const email = await admin.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, campaignId: campaign.id, subject: "Hi", contentStorageKey: `bodies/${crypto.randomUUID()}` });
    emailIds.push(email.id);
  }
  return { tenant, campaignId: campaign.id, emailIds };
}

export type ReportedType = "sent" | "delivered" | "bounced" | "opened" | "replied" | "failed";

export async function report(fixture: CampaignFixture, emailId: string, type: ReportedType, occurredAt: Date) {
  await trpcClient(fixture.tenant.admin.token, { batch: false }).emails.recordEvent.mutate({ emailId, type, occurredAt });
}

export function performance(fixture: CampaignFixture, from = utcDay(-120), to = utcDay(1), token = fixture.tenant.member.token) {
  return trpcClient(token, { batch: false }).analytics.campaignPerformance.query({ campaignId: fixture.campaignId, from, to });
}
