// Issue 18, "Analytics": OLAP counts emails per kind (a repeated provider fact counts once, a late one lands on its
// own day without doubling), the recipient kinds (clicked, complained, unsubscribed) move their counts, campaign
// performance rolls up by week and month, and the funnel and engagement rows carry their step and lead. The property
// test drives random sends, repeats and late facts through emails.recordEvent and checks OLAP against the source.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TierStore } from "../../src/platform/db";
import { aggregateEmailEvents } from "../../src/tiers/olap/etl/email-events";
import { reconcileCampaignTotals } from "../../src/tiers/olap/services/reconciliation";
import { aggregate, aggregateInRuns, campaignWithEmails, noonOf, olapStore, oltpStore, utcDay, type CampaignFixture } from "../support/olap";
import { oltpSql } from "../support/factories";
import { fakeEmail, mailboxFor, startedCampaign } from "../support/oltp";
import { trpcClient } from "../support/worker";
import { createTenant } from "../support/factories";

type Kind = "sent" | "delivered" | "bounced" | "opened" | "replied" | "failed" | "clicked" | "complained" | "unsubscribed";
const kinds: Kind[] = ["sent", "delivered", "bounced", "opened", "replied", "failed", "clicked", "complained", "unsubscribed"];

const record = (fixture: CampaignFixture, emailId: string, type: Kind, occurredAt: Date) =>
  trpcClient(fixture.tenant.admin.token, { batch: false }).emails.recordEvent.mutate({ emailId, type, occurredAt: occurredAt.toISOString() });
const performance = (fixture: CampaignFixture, granularity: "day" | "week" | "month" = "day") =>
  trpcClient(fixture.tenant.member.token, { batch: false }).analytics.campaignPerformance.query({
    campaignId: fixture.campaignId, from: utcDay(-60), to: utcDay(1), granularity,
  });
const billing = (fixture: CampaignFixture) =>
  trpcClient(fixture.tenant.admin.token, { batch: false }).analytics.billingUsage.query({ from: utcDay(-60), to: utcDay(1) });

/** count(distinct email) per kind of the campaign's source facts, read from OLTP in the tenant's RLS context. */
async function sourceCounts(fixture: CampaignFixture): Promise<Record<string, number>> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${fixture.tenant.id}, true)`,
    sql`select ev.type, count(distinct ev.email_id)::int as n from email_events ev
        join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
        where ev.tenant_id = ${fixture.tenant.id} and m.campaign_id = ${fixture.campaignId} group by ev.type`,
  ]);
  return Object.fromEntries(rows.map((r) => [String(r.type), Number(r.n)]));
}

describe("facts count once per email and kind", () => {
  it("a provider repeating a delivery fact counts it once: delivered 1, sent 1, delivery rate 100%, billed once", async () => {
    const fixture = await campaignWithEmails(1);
    const [email] = fixture.emailIds as [string];
    await record(fixture, email, "sent", noonOf(0));
    await record(fixture, email, "delivered", noonOf(0));
    await record(fixture, email, "delivered", noonOf(0));
    await aggregate();
    await record(fixture, email, "delivered", noonOf(0));
    await record(fixture, email, "sent", noonOf(0));
    await aggregate();
    const perf = await performance(fixture);
    expect(perf.totals).toMatchObject({ sent: 1, delivered: 1 });
    expect(perf.rates.delivery).toBe(1);
    const bill = await billing(fixture);
    expect(bill.totals).toMatchObject({ emailsSent: 1, emailsDelivered: 1 });
    // Reconciliation compares emails, not facts: the repeats raise no mismatch.
    const check = await reconcileCampaignTotals(oltpStore(), olapStore(), { tenantId: fixture.tenant.id, now: new Date() });
    expect(check).toMatchObject({ checkedCampaigns: 1, mismatches: [] });
  });

  it("a repeated fact on a later day adds nothing there, and a late earlier one moves the count to its own day", async () => {
    const fixture = await campaignWithEmails(1);
    const [email] = fixture.emailIds as [string];
    await record(fixture, email, "sent", noonOf(-2));
    await record(fixture, email, "delivered", noonOf(-2));
    await aggregate();
    await record(fixture, email, "delivered", noonOf(-1));
    await aggregate();
    expect((await performance(fixture)).days.map((d) => [d.day, d.delivered])).toEqual([[utcDay(-2), 1], [utcDay(0), 0]]);
    await record(fixture, email, "delivered", noonOf(-3));
    await aggregate();
    const days = (await performance(fixture)).days;
    expect(days.map((d) => [d.day, d.sent, d.delivered])).toEqual([[utcDay(-3), 0, 1], [utcDay(-2), 1, 0], [utcDay(0), 0, 0]]);
    expect((await performance(fixture)).totals.delivered).toBe(1);
  });
});

describe("recipient kinds", () => {
  it("clicked, complained and unsubscribed are recorded, counted in OLAP, and a complaint suppresses the lead", async () => {
    const fixture = await campaignWithEmails(2);
    const [a, b] = fixture.emailIds as [string, string];
    await record(fixture, a, "delivered", noonOf(0));
    await record(fixture, a, "clicked", noonOf(0));
    await record(fixture, a, "clicked", noonOf(0));
    await record(fixture, a, "unsubscribed", noonOf(0));
    const complained = await record(fixture, b, "complained", noonOf(0));
    expect(complained.status).toBe("queued");
    await aggregate();
    expect((await performance(fixture)).totals).toMatchObject({ clicked: 1, unsubscribed: 1, complained: 1 });
    const admin = trpcClient(fixture.tenant.admin.token, { batch: false });
    const lead = await admin.leads.get.query({ id: complained.leadId });
    expect(lead.unsubscribedAt).not.toBeNull();
  });
});

describe("dashboard rows", () => {
  it("campaign performance by week and by month is keyed by the period's first day", async () => {
    const fixture = await campaignWithEmails(2);
    const [a, b] = fixture.emailIds as [string, string];
    await record(fixture, a, "sent", noonOf(-40));
    await record(fixture, b, "sent", noonOf(-1));
    await aggregate();
    const weekly = await performance(fixture, "week");
    expect(weekly.granularity).toBe("week");
    for (const p of weekly.periods) expect(new Date(`${p.period}T00:00:00Z`).getUTCDay()).toBe(1);
    expect(weekly.periods.reduce((sum, p) => sum + p.sent, 0)).toBe(2);
    const monthly = await performance(fixture, "month");
    expect(monthly.periods.map((p) => p.period)).toEqual([...new Set([utcDay(-40), utcDay(-1), utcDay(0)].map((d) => `${d.slice(0, 7)}-01`))]);
    const daily = await performance(fixture);
    expect(daily.periods.map((p) => p.period)).toEqual(daily.days.map((d) => d.day));
  });

  it("funnel rows carry the step's position and subject, engagement rows the lead's address and name", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const { mailbox } = await mailboxFor(tenant.admin.token);
    const campaign = await startedCampaign(tenant.admin.token, 2);
    const steps = (await admin.campaigns.get.query({ id: campaign.id })).steps;
    const lead = await admin.leads.create.mutate({ email: fakeEmail(), firstName: "Ada", lastName: "Lovelace" });
    const email = await admin.emails.create.mutate({
      leadId: lead.id, mailboxId: mailbox.id, campaignId: campaign.id, stepId: steps[1]!.id, subject: "Hi", contentStorageKey: `bodies/${crypto.randomUUID()}`,
    });
    await admin.emails.recordEvent.mutate({ emailId: email.id, type: "replied", occurredAt: noonOf(0).toISOString() });
    await aggregate();
    const member = trpcClient(tenant.member.token, { batch: false });
    const range = { from: utcDay(-1), to: utcDay(1) };
    const funnel = await member.analytics.sequenceFunnel.query({ ...range, campaignId: campaign.id });
    expect(funnel.steps).toEqual([expect.objectContaining({ stepId: steps[1]!.id, position: steps[1]!.position, subject: steps[1]!.variants[0]!.subject })]);
    const engagement = await member.analytics.leadEngagement.query({ ...range });
    expect(engagement.topLeads).toEqual([expect.objectContaining({ leadId: lead.id, email: lead.email, name: "Ada Lovelace", replied: 1 })]);
  });
});

describe("property: OLAP equals count(distinct email) per kind of the source facts", () => {
  it("after random sends, repeated facts and late facts, with aggregation runs in between", { timeout: 120_000 }, async () => {
    const step = fc.record({
      email: fc.nat({ max: 2 }),
      kind: fc.constantFrom(...kinds),
      daysAgo: fc.nat({ max: 4 }),
      /** Repeat the fact this many extra times (a provider retrying its webhook). */
      repeats: fc.nat({ max: 2 }),
      aggregateAfter: fc.boolean(),
    });
    // Each aggregation reads the facts in bounded runs of 1–3 facts (or in one), so a chunk boundary falls between
    // a fact and its repeat, a late fact and the fact it displaces, at random.
    const runSize = fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), runSize, async (steps, maxFacts) => {
        const fixture = await campaignWithEmails(3);
        await aggregate(); // what earlier tests left, in one run: the bounded runs below read this test's facts
        const run = () => (maxFacts === undefined ? aggregate() : aggregateInRuns(maxFacts));
        for (const s of steps) {
          for (let i = 0; i <= s.repeats; i++) await record(fixture, fixture.emailIds[s.email]!, s.kind, noonOf(-s.daysAgo));
          if (s.aggregateAfter) await run();
        }
        await run();
        const source = await sourceCounts(fixture);
        const olap = await performance(fixture);
        const expected = Object.fromEntries(Object.keys(olap.totals).map((k) => [k, source[k] ?? 0]));
        expect(olap.totals).toEqual(expected);
        expect(olap.days.reduce((sum, d) => sum + d.delivered, 0)).toBe(source.delivered ?? 0);
        const bill = await billing(fixture);
        expect([bill.totals.emailsSent, bill.totals.emailsDelivered, bill.totals.emailsBounced]).toEqual([
          source.sent ?? 0, source.delivered ?? 0, source.bounced ?? 0,
        ]);
      }),
      { numRuns: 8 },
    );
  });
});

/**
 * OLAP stores over the real database whose first round trip (an ETL run's watermark read) returns only once every
 * one of them has made it: runs given these start from the same watermark, as two concurrent cron jobs can.
 */
function olapStoresMeetingAfterFirstTrip(n: number): TierStore[] {
  let arrived = 0;
  let release!: () => void;
  const allArrived = new Promise<void>((resolve) => {
    release = resolve;
  });
  return Array.from({ length: n }, () => {
    const store = olapStore();
    let first = true;
    const db = new Proxy(store.db, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop !== "batch" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          const result: unknown = await value.apply(target, args);
          if (first) {
            first = false;
            if (++arrived === n) release();
            await allArrived;
          }
          return result;
        };
      },
    });
    return { ...store, db };
  });
}

describe("an incremental run adds its changes exactly once", () => {
  it("two runs started together from the same watermark: one applies the changes, the other writes nothing", async () => {
    const fixture = await campaignWithEmails(3);
    await aggregate();
    const [a, b, c] = fixture.emailIds as [string, string, string];
    await record(fixture, a, "sent", noonOf(-1));
    await record(fixture, b, "sent", noonOf(-1));
    await aggregate();
    // New facts: c sent, a delivered, and a late earlier "sent" of a that moves its count from day -1 to day -2.
    await record(fixture, c, "sent", noonOf(0));
    await record(fixture, a, "delivered", noonOf(0));
    await record(fixture, a, "sent", noonOf(-2));
    // Both read the watermark in their first round trip, and neither goes on until both have: they read the same
    // changes, whatever the machine's load (without the barrier one run could finish before the other started).
    const [first, second] = olapStoresMeetingAfterFirstTrip(2) as [TierStore, TierStore];
    const runs = await Promise.all([aggregateEmailEvents(oltpStore(), first), aggregateEmailEvents(oltpStore(), second)]);
    expect(runs.map((r) => r.advanced).sort()).toEqual([false, true]);
    const perf = await performance(fixture);
    expect(perf.totals).toMatchObject({ sent: 3, delivered: 1 });
    expect(perf.days.map((d) => [d.day, d.sent, d.delivered])).toEqual([[utcDay(-2), 1, 0], [utcDay(-1), 1, 0], [utcDay(0), 1, 1]]);
    expect(await sourceCounts(fixture)).toMatchObject({ sent: 3, delivered: 1 });
    const bill = await billing(fixture);
    expect([bill.totals.emailsSent, bill.totals.emailsDelivered]).toEqual([3, 1]);
  });

  it("a key whose only count moves to another day is removed, not kept at zero", async () => {
    const fixture = await campaignWithEmails(1);
    await aggregate();
    const [a] = fixture.emailIds as [string];
    await record(fixture, a, "opened", noonOf(-1));
    await aggregate();
    await record(fixture, a, "opened", noonOf(-3));
    await aggregate();
    const perf = await performance(fixture);
    // The fixture's queued fact keeps today's row; day -1 had only the open, which now counts on day -3.
    expect(perf.days.map((d) => [d.day, d.opened])).toEqual([[utcDay(-3), 1], [utcDay(0), 0]]);
  });
});

describe("a backlog is read in bounded runs", () => {
  it("a run reads at most its bound of new facts; runs back to back reach what one run would, a late fact across a bound included", async () => {
    const fixture = await campaignWithEmails(2);
    await aggregate();
    const [a, b] = fixture.emailIds as [string, string];
    await record(fixture, a, "sent", noonOf(-1));
    await record(fixture, a, "delivered", noonOf(-1));
    await record(fixture, b, "sent", noonOf(-1));
    await record(fixture, a, "delivered", noonOf(-2)); // late: moves a's delivered to day -2
    await record(fixture, b, "opened", noonOf(0));
    // Its first run stops at the bound with more to read (what it recomputes, it recomputes from every fact of those days).
    const first = await aggregateInRuns(2, 1);
    expect(first).toMatchObject({ runs: 1, more: true, advanced: true });
    const rest = await aggregateInRuns(2);
    expect(rest.more).toBe(false);
    expect(rest.runs).toBeGreaterThanOrEqual(2);
    const perf = await performance(fixture);
    expect(perf.totals).toMatchObject({ sent: 2, delivered: 1, opened: 1 });
    expect(perf.days.map((d) => [d.day, d.sent, d.delivered, d.opened])).toEqual([
      [utcDay(-2), 0, 1, 0], [utcDay(-1), 2, 0, 0], [utcDay(0), 0, 0, 1],
    ]);
    expect(await sourceCounts(fixture)).toMatchObject({ sent: 2, delivered: 1, opened: 1 });
  });

  it("a transaction that recorded more facts than the bound is read whole, in one run", async () => {
    const fixture = await campaignWithEmails(3);
    await aggregate();
    // One statement, one transaction: a sent and a delivered fact for each of the 3 emails (6 facts, bound 2).
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${fixture.tenant.id}, true)`,
      sql`insert into email_events (tenant_id, email_id, type, occurred_at)
          select ${fixture.tenant.id}, e.id, t.type, ${noonOf(-1).toISOString()}::timestamptz
          from unnest(${fixture.emailIds}::uuid[]) as e(id) cross join unnest(array['sent', 'delivered']) as t(type)`,
    ]);
    const run = await aggregateInRuns(2, 1);
    expect(run).toMatchObject({ runs: 1, advanced: true });
    expect((await performance(fixture)).totals).toMatchObject({ sent: 3, delivered: 3 });
  });
});
