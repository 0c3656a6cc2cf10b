
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { cronTasks, testServices } from "../support/runtime";
import { olapConfig } from "../../src/tiers/olap/config";
import { internalBatch } from "../../src/platform/db";
import { reconcileAndRaise, reconcileCampaignTotals } from "../../src/tiers/olap/services/reconciliation";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { operator } from "../support/notifications";
import { aggregate, noonOf, olapStore, oltpStore, runPendingJobs, utcDay } from "../support/olap";
import { expectCode, fakeEmail, mailboxFor, startedCampaign } from "../support/oltp";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

const zero = { queued: 0, sent: 0, delivered: 0, opened: 0, replied: 0, bounced: 0, failed: 0, unsubscribed: 0, clicked: 0, complained: 0 };
const range = { from: utcDay(-40), to: utcDay(1) };

interface Estate {
  tenant: TestTenant;
  mailboxId: string;
  campaignId: string;
  steps: [string, string];
  leads: [string, string];
  emails: [string, string, string];
}

/**
 * Three emails of one campaign from one warming mailbox: e1 (lead 1, step 1), e2 (lead 2, step 1),
 * e3 (lead 1, step 2, with a stored body). Sent today; e1 and e3 delivered, e1 opened, e2 bounced,
 * and e3's reply occurred yesterday (a late fact).
 */
async function estate(): Promise<Estate> {
  const tenant = await createTenant();
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const { mailbox } = await mailboxFor(tenant.admin.token);
  const campaign = await startedCampaign(tenant.admin.token, 2);
  const steps = (await admin.campaigns.get.query({ id: campaign.id })).steps.map((s) => s.id) as [string, string];
  const leads = [(await admin.leads.create.mutate({ email: fakeEmail() })).id, (await admin.leads.create.mutate({ email: fakeEmail() })).id] as [string, string];
  const base = { mailboxId: mailbox.id, campaignId: campaign.id, subject: "Hi" };
  const key = () => `bodies/${crypto.randomUUID()}`;
  const e1 = await admin.emails.create.mutate({ ...base, leadId: leads[0], stepId: steps[0], contentStorageKey: key() });
  const e2 = await admin.emails.create.mutate({ ...base, leadId: leads[1], stepId: steps[0], contentStorageKey: key() });
  const body = { text: Array.from({ length: 4000 }, () => crypto.randomUUID()).join(" ") };
  const e3 = await admin.emails.create.mutate({ ...base, leadId: leads[0], stepId: steps[1], body });
  const report = (emailId: string, type: "sent" | "delivered" | "opened" | "replied" | "bounced", day = 0) =>
    admin.emails.recordEvent.mutate({ emailId, type, occurredAt: noonOf(day).toISOString() });
  for (const e of [e1, e2, e3]) await report(e.id, "sent");
  await report(e1.id, "delivered");
  await report(e3.id, "delivered");
  await report(e1.id, "opened");
  await report(e2.id, "bounced");
  await report(e3.id, "replied", -1);
  return { tenant, mailboxId: mailbox.id, campaignId: campaign.id, steps, leads, emails: [e1.id, e2.id, e3.id] };
}

async function storedBytes(tenantId: string): Promise<number> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    sql`select coalesce(sum(stored_size), 0)::float8 as bytes from content_objects where tenant_id = ${tenantId}`,
  ]);
  return Number(rows[0]?.bytes);
}

describe("one ETL pass feeds the mailbox, lead, sequence-step, warmup and billing aggregates", () => {
  let e: Estate;
  let member: ReturnType<typeof trpcClient>;
  let admin: ReturnType<typeof trpcClient>;
  beforeAll(async () => {
    e = await estate();
    member = trpcClient(e.tenant.member.token, { batch: false });
    admin = trpcClient(e.tenant.admin.token, { batch: false });
    await aggregate();
  });

  it("mailbox health counts the mailbox's facts by day with rates and warmup progress", async () => {
    const health = await member.analytics.mailboxHealth.query({ ...range, mailboxId: e.mailboxId });
    expect(health.mailboxes).toHaveLength(1);
    const [mailbox] = health.mailboxes;
    expect(mailbox!.periods).toEqual([
      { period: utcDay(-1), ...zero, replied: 1 },
      { period: utcDay(0), ...zero, queued: 3, sent: 3, delivered: 2, opened: 1, bounced: 1 },
    ]);
    expect(mailbox!.rates).toEqual({ delivery: 0.6667, bounce: 0.3333, reply: 0.5 });
    // A new mailbox warms up from day 0: 5 of its 50 a day (README, SEND_EMAIL).
    expect(mailbox!.warmup).toMatchObject({ day: utcDay(0), warmupDay: 0, allowance: 5, dailyLimit: 50, progress: 0.1 });
    expect(Date.parse(health.reflectsAt!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("lead engagement counts per lead and ranks the most engaged first", async () => {
    const engagement = await member.analytics.leadEngagement.query({ ...range });
    expect(engagement.totals).toEqual({ ...zero, queued: 3, sent: 3, delivered: 2, opened: 1, bounced: 1, replied: 1 });
    expect(engagement.topLeads.map((l) => l.leadId)).toEqual([e.leads[0], e.leads[1]]);
    expect(engagement.topLeads[0]).toMatchObject({ sent: 2, replied: 1, opened: 1 });
    const one = await member.analytics.leadEngagement.query({ ...range, leadId: e.leads[1] });
    expect(one.totals).toEqual({ ...zero, queued: 1, sent: 1, bounced: 1 });
  });

  it("the sequence funnel counts each step of the campaign", async () => {
    const funnel = await member.analytics.sequenceFunnel.query({ ...range, campaignId: e.campaignId });
    expect(funnel.steps.map((s) => [s.stepId, s.sent, s.delivered, s.opened, s.replied, s.bounced])).toEqual([
      [e.steps[0], 2, 1, 1, 0, 1],
      [e.steps[1], 1, 1, 0, 1, 0],
    ]);
    expect(funnel.steps[1]!.rates).toEqual({ delivery: 1, open: 0, reply: 1 });
  });

  it("billing usage counts emails, samples storage from the content catalog and prices both", async () => {
    const usage = await admin.analytics.billingUsage.query({ ...range });
    const today = usage.periods.find((p) => p.period === utcDay(0))!;
    const storageMb = Math.round(((await storedBytes(e.tenant.id)) / 1_048_576) * 1000) / 1000;
    expect(storageMb).toBeGreaterThan(0);
    expect(today).toMatchObject({ emailsSent: 3, emailsDelivered: 2, emailsBounced: 1, storageMb });
    const { perEmail, perMbDay } = olapConfig.billing;
    expect(today.estimatedCost).toBeCloseTo(3 * perEmail + storageMb * perMbDay, 4);
    expect(usage.periods.find((p) => p.period === utcDay(-1))).toMatchObject({ emailsSent: 0, storageMb: 0 });
    await expectCode(member.analytics.billingUsage.query({ ...range }), "FORBIDDEN");
  });

  it("week and month granularities roll the days up", async () => {
    const monthly = await member.analytics.mailboxHealth.query({ ...range, granularity: "month" });
    const months = new Set([utcDay(-1).slice(0, 7), utcDay(0).slice(0, 7)]);
    expect(monthly.mailboxes[0]!.periods.map((p) => p.period.slice(0, 7))).toEqual([...months]);
    expect(monthly.mailboxes[0]!.totals).toMatchObject({ sent: 3, replied: 1 });
    const weekly = await admin.analytics.billingUsage.query({ ...range, granularity: "week" });
    for (const p of weekly.periods) expect(new Date(`${p.period}T00:00:00Z`).getUTCDay()).toBe(1);
    expect(weekly.totals.emailsSent).toBe(3);
  });

  it("each dashboard read is one OLAP round trip and touches no other database", async () => {
    const reads = [
      () => member.analytics.mailboxHealth.query({ ...range }),
      () => member.analytics.leadEngagement.query({ ...range }),
      () => member.analytics.sequenceFunnel.query({ ...range, campaignId: e.campaignId }),
      () => admin.analytics.billingUsage.query({ ...range }),
    ];
    for (const read of reads) {
      // The counters are per database, and a queue batch of an earlier file may land mid-read (Miniflare delivers a
      // batch that is not full after its timeout): the read's own count is the smallest of three readings. A read
      // that did touch another database would show it every time.
      const readings: Array<{ oltp: number; notifications: number; olap: number }> = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        await resetRoundTrips();
        await read();
        const counts = await postgresRoundTrips();
        readings.push({ oltp: counts.oltp ?? 0, notifications: counts.notifications ?? 0, olap: counts.olap ?? 0 });
      }
      const fewest = readings.reduce((a, b) => (b.oltp + b.notifications + b.olap < a.oltp + a.notifications + a.olap ? b : a));
      expect(fewest).toEqual({ oltp: 0, notifications: 0, olap: 1 });
    }
  });

  it("running the ETL again, or re-reading every fact from a zero watermark, changes no number", async () => {
    const before = [
      await member.analytics.mailboxHealth.query({ ...range }),
      await member.analytics.leadEngagement.query({ ...range }),
      await member.analytics.sequenceFunnel.query({ ...range, campaignId: e.campaignId }),
      (await admin.analytics.billingUsage.query({ ...range })).periods,
    ];
    await aggregate();
    await internalBatch(olapStore(), "analytics", null, (db) => [db.execute(sql`update etl_watermarks set position = 0 where source = 'email_events'`)]);
    const rerun = await aggregate();
    expect(rerun.tables.mailbox_analytics).toBeGreaterThanOrEqual(2);
    const after = [
      await member.analytics.mailboxHealth.query({ ...range }),
      await member.analytics.leadEngagement.query({ ...range }),
      await member.analytics.sequenceFunnel.query({ ...range, campaignId: e.campaignId }),
      (await admin.analytics.billingUsage.query({ ...range })).periods,
    ];
    const strip = (values: unknown[]) => JSON.parse(JSON.stringify(values, (k, v) => (k === "reflectsAt" ? undefined : v)));
    expect(strip(after)).toEqual(strip(before));
  });

  it("another tenant sees none of these aggregates", async () => {
    const intruder = trpcClient((await createTenant()).admin.token, { batch: false });
    expect((await intruder.analytics.mailboxHealth.query({ ...range, mailboxId: e.mailboxId })).mailboxes).toEqual([]);
    expect((await intruder.analytics.sequenceFunnel.query({ ...range, campaignId: e.campaignId })).steps).toEqual([]);
    expect((await intruder.analytics.leadEngagement.query({ ...range, leadId: e.leads[0] })).totals).toEqual(zero);
  });
});

describe("rebuild and reconciliation", () => {
  const corrupt = (e: Estate) =>
    internalBatch(olapStore(), "analytics", null, (db) => [
      db.execute(sql`update campaign_analytics set sent = 999 where tenant_id = ${e.tenant.id} and campaign_id = ${e.campaignId} and day = ${utcDay(0)}::date`),
      db.execute(sql`delete from mailbox_analytics where tenant_id = ${e.tenant.id} and day = ${utcDay(-1)}::date`),
      // A row no source fact supports.
      db.execute(sql`insert into lead_analytics (tenant_id, lead_id, day, opened) values (${e.tenant.id}, ${crypto.randomUUID()}, ${utcDay(-2)}::date, 7)`),
    ]);

  it("an operator's rebuild (an AGGREGATE_ANALYTICS job) restores a tenant's corrupted and lost rows from the source", async () => {
    const e = await estate();
    await aggregate();
    const member = trpcClient(e.tenant.member.token, { batch: false });
    const performance = () => member.analytics.campaignPerformance.query({ ...range, campaignId: e.campaignId });
    const health = () => member.analytics.mailboxHealth.query({ ...range });
    const engagement = () => member.analytics.leadEngagement.query({ ...range });
    const good = [await performance(), await health(), await engagement()];
    await corrupt(e);
    expect((await performance()).totals.sent).toBe(999);
    expect((await health()).mailboxes[0]!.periods).toHaveLength(1);
    expect((await engagement()).totals.opened).toBe(8);

    await expectCode(trpcClient(e.tenant.admin.token, { batch: false }).analytics.rebuild.mutate({ tenantId: e.tenant.id, ...range }), "FORBIDDEN");
    const staff = trpcClient((await operator()).token, { batch: false });
    await expectCode(staff.analytics.rebuild.mutate({ tenantId: e.tenant.id, from: range.to, to: range.from }), "VALIDATION_FAILED");
    const { jobId } = await staff.analytics.rebuild.mutate({ tenantId: e.tenant.id, ...range });
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    await runPendingJobs("AGGREGATE_ANALYTICS");
    const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x) => (k === "reflectsAt" ? undefined : x)));
    expect(strip([await performance(), await health(), await engagement()])).toEqual(strip(good));
  });

  it("reconciliation passes on healthy aggregates and raises one de-duplicated system event on a mismatch", async () => {
    const e = await estate();
    await aggregate();
    const healthy = await reconcileCampaignTotals(oltpStore(), olapStore(), { tenantId: e.tenant.id, now: new Date() });
    expect(healthy).toMatchObject({ checkedCampaigns: 1, mismatches: [] });

    await corrupt(e);
    const broken = await reconcileCampaignTotals(oltpStore(), olapStore(), { tenantId: e.tenant.id, now: new Date() });
    expect(broken.mismatches).toEqual([
      { tenantId: e.tenant.id, campaignId: e.campaignId, type: "sent", olap: 999, source: { aggregated: 3, now: 3 } },
    ]);

    // The cron samples every active campaign here: the sample is larger than this test database's campaigns.
    const task = cronTasks.consistency.find((t) => t.name === "olap.reconcileCampaignTotals")!;
    await task.run(testServices());
    await reconcileAndRaise(testServices());
    const staff = trpcClient((await operator()).token, { batch: false });
    const events = await staff.admin.systemEvents.list.query({ limit: 10, tenantId: null, resolved: false });
    const mismatch = events.items.filter((ev) => ev.eventType === "analytics_mismatch");
    expect(mismatch).toHaveLength(1);
    expect(mismatch[0]!.occurrences).toBeGreaterThanOrEqual(2);
    expect(mismatch[0]!.dedupKey).toBe("olap.reconciliation_mismatch");
  });
});
