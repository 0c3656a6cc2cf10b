import { beforeAll, describe, expect, it } from "vitest";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { localDate } from "../../src/tiers/jobs/services/send-email";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { asOltpSystem, dueInSeconds, ledgerRow, queueEmail, runCron, sendingMailbox, waitFor } from "../support/jobs";
import { clockAtUtc, clockedWorker } from "../support/clock";
import { queueNames } from "../support/runtime";
import { trpcClient } from "../support/worker";

/** Sent, or deferred (pending again with its reason kept): where a SEND_EMAIL job comes to rest. */
const atRest = (id: string) =>
  waitFor(async () => {
    const row = await ledgerRow(id);
    return row?.status === "succeeded" || (row?.status === "pending" && row.last_error) ? row : undefined;
  }, 30_000);

/** A campaign whose window is always open, so only its daily limit can hold an email back. */
async function openCampaign(token: string, dailyLimit: number, timeZone: string) {
  const client = trpcClient(token, { batch: false });
  const campaign = await client.campaigns.create.mutate({
    name: `Limited ${crypto.randomUUID().slice(0, 6)}`,
    timeZone,
    windowStartMinute: 0,
    windowEndMinute: 1440,
    sendDays: [0, 1, 2, 3, 4, 5, 6],
    dailyLimit,
  });
  // A draft campaign sends nothing (emails under it are refused): this one has started.
  await client.campaigns.setSteps.mutate({ id: campaign.id, steps: [{ variants: [{ label: "A", subject: "Hi", text: "Hello" }] }] });
  await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
  return campaign;
}

async function counters(tenantId: string, ids: { campaignId?: string; mailboxId: string }) {
  const [campaign = [], mailbox = []] = await asOltpSystem((sql) => [
    sql`select to_char(day, 'YYYY-MM-DD') as day, sent from campaign_daily_sends where tenant_id = ${tenantId} and campaign_id = ${ids.campaignId ?? null}`,
    sql`select to_char(day, 'YYYY-MM-DD') as day, sent from mailbox_daily_sends where tenant_id = ${tenantId} and mailbox_id = ${ids.mailboxId}`,
  ]);
  return { campaign, mailbox };
}

describe("campaign daily limit", () => {
  let a: TestTenant;
  beforeAll(async () => {
    a = await createTenant();
  });

  // Every hour matters: UTC+14 puts the campaign's date a day ahead for most of the UTC day, and from 10:00 UTC on its
  // next local midnight is more than the 12 hours a queue may delay a message, so the deferral is capped there.
  it.each(["00:10", "05:45", "09:59", "10:30", "16:30", "23:50"])(
    "at %s UTC, a campaign's emails beyond its daily limit, counted on the campaign's own calendar day, are deferred to its next day (at most 12 h at a time), not failed",
    async (hhmm) => {
      const zone = "Pacific/Kiritimati";
      // A tenant per hour: a plan allows a tenant only a few mailboxes.
      const t = await createTenant();
      const at = clockedWorker(clockAtUtc(hhmm));
      const box = await sendingMailbox(t.admin.token, { dailyLimit: 100, warmupEnabled: false });
      const campaign = await openCampaign(t.admin.token, 2, zone);
      const emails = [];
      for (let i = 0; i < 3; i++) emails.push(await queueEmail(t.admin.token, box.id, { campaignId: campaign.id }, at.client(t.admin.token)));
      expect(await at.deliver("JOBS_HIGH", queueNames.high)).toBe(3);
      const rows = await Promise.all(emails.map((e) => ledgerRow(e.id)));
      expect(rows.map((r) => r?.status).sort()).toEqual(["pending", "succeeded", "succeeded"]);
      const late = rows.find((r) => r?.status === "pending")!;
      expect(late).toMatchObject({ attempts: 0, last_error: "The campaign's daily limit is reached" });
      // Due at the campaign's next local midnight (plus up to 5 minutes of spread), or in 12 h when that is further.
      const now = at.clock.now();
      const [hour, minute] = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
        .format(now)
        .split(":")
        .map(Number);
      const untilMidnight = (24 * 60 - (hour! * 60 + minute!)) * 60;
      const cap = 12 * 3600;
      const dueIn = await dueInSeconds(String(late.id));
      expect(dueIn).toBeGreaterThan(Math.min(untilMidnight, cap) - 120);
      expect(dueIn).toBeLessThanOrEqual(Math.min(untilMidnight + 300, cap));

      // The counter is the campaign's date in its zone; the mailbox's is the UTC date; the mailbox gave up no send for the deferred email.
      const counted = await counters(t.id, { campaignId: campaign.id, mailboxId: box.id });
      expect(counted.campaign).toEqual([{ day: localDate(zone, now), sent: 2 }]);
      expect(counted.mailbox).toEqual([{ day: now.toISOString().slice(0, 10), sent: 2 }]);
      const statuses = await Promise.all(emails.map((e) => trpcClient(t.admin.token, { batch: false }).emails.get.query({ id: e.id })));
      expect(statuses.map((e) => e.status).sort()).toEqual(["queued", "sent", "sent"]);
    },
  );

  it("a send is taken from both allowances or from neither: the mailbox's limit gives the campaign's share back", async () => {
    const box = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: true, warmupStart: 1 });
    const campaign = await openCampaign(a.admin.token, 5, "UTC");
    const first = await queueEmail(a.admin.token, box.id, { campaignId: campaign.id });
    expect(await atRest(first.id)).toMatchObject({ status: "succeeded" });
    const second = await queueEmail(a.admin.token, box.id, { campaignId: campaign.id });
    expect(await atRest(second.id)).toMatchObject({ status: "pending", last_error: "The mailbox's daily limit is reached" });
    const counted = await counters(a.id, { campaignId: campaign.id, mailboxId: box.id });
    expect(counted.campaign.map((r) => r.sent)).toEqual([1]);
    expect(counted.mailbox.map((r) => r.sent)).toEqual([1]);
  });
});

describe("warmup and send counters upkeep", () => {
  let a: TestTenant;
  beforeAll(async () => {
    a = await createTenant();
  });

  /** Moves a mailbox's creation to `days` ago, as if it had been added then. */
  async function age(mailboxId: string, days: number) {
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${a.id}, true)`,
      sql`update mailboxes set created_at = now() - make_interval(days => ${days}) where tenant_id = ${a.id} and id = ${mailboxId}`,
    ]);
  }
  const warmupDay = async (id: string) => (await trpcClient(a.admin.token, { batch: false }).mailboxes.get.query({ id })).warmupDay;

  it("the daily task advances each warming mailbox once a day, however often it runs, so its allowance ramps", async () => {
    const warming = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: true, warmupStart: 2, warmupIncrement: 3 });
    const newToday = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: true });
    const notWarming = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: false });
    // Already at its limit: min(10, 5 + 1 * 5) = 10, so there is nothing left to ramp.
    const rampDone = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: true, warmupStart: 5, warmupIncrement: 5 });
    // A mailbox whose domain was never verified sends nothing, so it does not ramp up either (another tenant: a's mailbox allowance is spoken for).
    const b = await createTenant();
    const other = trpcClient(b.admin.token, { batch: false });
    const pendingDomain = await other.domains.add.mutate({ name: `mail-${crypto.randomUUID().slice(0, 8)}.example.com` });
    const unverified = await other.mailboxes.add.mutate({ domainId: pendingDomain.id, address: `w@${pendingDomain.name}`, dailyLimit: 10, warmupEnabled: true });
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${b.id}, true)`,
      sql`update mailboxes set created_at = now() - interval '1 day' where tenant_id = ${b.id} and id = ${unverified.id}`,
    ]);
    for (const box of [warming, notWarming, rampDone]) await age(box.id, 1);
    await asOltpSystem((sql) => [sql`update mailboxes set warmup_day = 1 where id = ${rampDone.id}`]);

    await runCron("consistency");
    await runCron("consistency");
    expect(await warmupDay(warming.id)).toBe(1);
    expect(await warmupDay(newToday.id)).toBe(0);
    expect(await warmupDay(notWarming.id)).toBe(0);
    expect(await warmupDay(rampDone.id)).toBe(1);
    expect((await other.mailboxes.get.query({ id: unverified.id })).warmupDay).toBe(0);
    const [marks = []] = await asOltpSystem((sql) => [
      sql`select to_char(advanced_on, 'YYYY-MM-DD') as day from mailbox_warmup where mailbox_id = ${warming.id}`,
    ]);
    expect(marks).toEqual([{ day: new Date().toISOString().slice(0, 10) }]);

    // The next day (its mark moved back a day) it advances once more: allowance min(10, 2 + 2 * 3) = 8.
    await asOltpSystem((sql) => [sql`update mailbox_warmup set advanced_on = advanced_on - 1 where mailbox_id = ${warming.id}`]);
    await runCron("consistency");
    await runCron("consistency");
    expect(await warmupDay(warming.id)).toBe(2);
  });

  it("the pruning trigger deletes send counters older than a few days and warmup marks of deleted mailboxes", async () => {
    const box = await sendingMailbox(a.admin.token, { warmupEnabled: true });
    const campaign = await openCampaign(a.admin.token, 10, "UTC");
    const kept = jobsConfig.sendEmail.countersKeptDays;
    const gone = crypto.randomUUID();
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${a.id}, true)`,
      sql`insert into mailbox_daily_sends (tenant_id, mailbox_id, day, sent) values
            (${a.id}, ${box.id}, current_date - ${kept + 1}::int, 3), (${a.id}, ${box.id}, current_date - 1, 2), (${a.id}, ${box.id}, current_date, 1)`,
      sql`insert into campaign_daily_sends (tenant_id, campaign_id, day, sent) values
            (${a.id}, ${campaign.id}, current_date - ${kept + 2}::int, 3), (${a.id}, ${campaign.id}, current_date, 1)`,
      sql`insert into mailbox_warmup (tenant_id, mailbox_id, advanced_on) values (${a.id}, ${box.id}, current_date), (${a.id}, ${gone}, current_date)`,
    ]);
    await runCron("pruning");
    const [mailboxDays = [], campaignDays = [], marks = []] = await asOltpSystem((sql) => [
      sql`select (current_date - day) as age from mailbox_daily_sends where mailbox_id = ${box.id} order by day`,
      sql`select (current_date - day) as age from campaign_daily_sends where campaign_id = ${campaign.id} order by day`,
      sql`select mailbox_id from mailbox_warmup where tenant_id = ${a.id} and mailbox_id in (${box.id}, ${gone})`,
    ]);
    expect(mailboxDays.map((r) => Number(r.age))).toEqual([1, 0]);
    expect(campaignDays.map((r) => Number(r.age))).toEqual([0]);
    expect(marks).toEqual([{ mailbox_id: box.id }]);
  });
});
