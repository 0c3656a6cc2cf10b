// The campaign engine end to end in simulated time: 3 steps over 200 leads in 4 time zones from 3 mailboxes, to `completed`.
import { describe, expect, it } from "vitest";
import { localDate } from "../../src/tiers/jobs/services/send-email";
import { emailsSent } from "../support/notifications";
import { pauseLeftoverCampaigns, tick } from "../support/campaigns";
import { clockedWorker, settableClock } from "../support/clock";
import { createTenant } from "../support/factories";
import { asOltpSystem, sendingMailbox } from "../support/jobs";
import { queueNames } from "../support/runtime";
import { trpcClient } from "../support/worker";

const zones = ["America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney"];
const limits = [30, 40, 50];
const hour = 3_600_000;
const day = 24 * hour;

function localTime(timeZone: string, at: Date): { weekday: number; minute: number } {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "numeric", minute: "numeric", hourCycle: "h23" }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return { weekday: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(part("weekday")), minute: Number(part("hour")) * 60 + Number(part("minute")) };
}

interface SentRow {
  id: string;
  lead_id: string;
  mailbox_id: string;
  step: number;
  subject: string;
  status: string;
  sent_at: string | null;
  timezone: string;
}

describe("campaign engine, end to end", () => {
  it("3 steps (0, 2 and 3 days) over 200 leads in 4 time zones and 3 limited mailboxes run to completed: each lead its 3 emails once, in its window, threaded, no mailbox over its limit; a reply and a bounce stop; a 2-day pause skips and repeats nothing", async () => {
    await pauseLeftoverCampaigns();
    const tenant = await createTenant();
    const client = trpcClient(tenant.admin.token, { batch: false });
    const boxes = await Promise.all(limits.map((dailyLimit) => sendingMailbox(tenant.admin.token, { dailyLimit, warmupEnabled: false })));
    // A Monday, 00:00 UTC, some weeks ahead.
    const start = new Date(Date.now() + 28 * day);
    start.setUTCDate(start.getUTCDate() + ((8 - start.getUTCDay()) % 7));
    start.setUTCHours(0, 0, 0, 0);

    const campaign = await client.campaigns.create.mutate({
      name: "E2E",
      timeZone: "UTC",
      windowStartMinute: 9 * 60,
      windowEndMinute: 17 * 60,
      sendDays: [1, 2, 3, 4, 5],
      dailyLimit: 10_000,
      startsAt: new Date(start.getTime() + 6 * hour).toISOString(),
    });
    await client.campaigns.setSteps.mutate({
      id: campaign.id,
      steps: [
        { variants: [{ label: "A", subject: "Quick question, {{firstName}}", text: "Hi {{firstName}}, about {{company}}.", html: "<p>Hi {{firstName}}</p>" }] },
        { delayDays: 2, variants: [{ label: "A", subject: "", text: "Following up, {{firstName}}." }] },
        { delayDays: 3, variants: [{ label: "A", subject: "", text: "Last note for {{company}}." }] },
      ],
    });
    const { ids } = await client.leads.bulkUpsert.mutate({
      leads: Array.from({ length: 200 }, (_, i) => ({
        email: `e2e-${i}-${crypto.randomUUID().slice(0, 6)}@leads.example`,
        firstName: `Lead${i}`,
        company: `Company ${i}`,
        customFields: { timezone: zones[i % zones.length]! },
      })),
    });
    await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: boxes.map((b) => b.id) });
    expect(await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids })).toEqual({ enrolled: 200, skipped: 0 });
    expect((await client.campaigns.transition.mutate({ id: campaign.id, action: "schedule" })).status).toBe("scheduled");

    const clock = settableClock(start);
    const worker = clockedWorker(clock);
    const sim = worker.client(tenant.admin.token);
    const emailsOf = async () => {
      const [rows = []] = await asOltpSystem((sql) => [
        sql`select set_config('app.current_tenant_id', ${tenant.id}, true)`,
        sql`select e.id, e.lead_id, e.mailbox_id, s.position as step, e.subject, e.status, e.sent_at, l.custom_fields->>'timezone' as timezone
            from emails e join sequence_steps s on s.tenant_id = e.tenant_id and s.id = e.step_id join leads l on l.tenant_id = e.tenant_id and l.id = e.lead_id
            where e.tenant_id = ${tenant.id} and e.campaign_id = ${campaign.id}`,
      ]).then((results) => results.slice(1));
      return rows as unknown as SentRow[];
    };

    let replied: string | undefined;
    let bounced: string | undefined;
    let pausedAt: number | undefined;
    let emailsAtPause = 0;
    for (let t = 0; t < 24 * 21; t++) {
      clock.set(new Date(start.getTime() + t * hour));
      await tick(worker);
      // Bounded: a message the consumer kept putting back at once would otherwise spin here until the test's timeout.
      for (let round = 0; (await worker.deliver("JOBS_HIGH", queueNames.high)) > 0; round++) {
        if (round >= 200) {
          const types = worker.held.JOBS_HIGH.held.map((m) => m.type);
          throw new Error(`the high queue was still delivering after 200 rounds at hour ${t}: ${JSON.stringify(types)}`);
        }
      }
      await worker.deliver("JOBS_NORMAL", queueNames.normal);

      if (t === 6) expect((await sim.campaigns.get.query({ id: campaign.id })).status).toBe("running");
      if (t < 6) expect((await emailsOf()).length).toBe(0);
      // Once the first day's sends are out: one lead replies, another bounces.
      if (!replied && t >= 30) {
        const firsts = (await emailsOf()).filter((e) => e.step === 0 && e.status === "sent");
        replied = firsts[0]!.lead_id;
        bounced = firsts[1]!.lead_id;
        await sim.emails.recordEvent.mutate({ emailId: firsts[0]!.id, type: "replied" });
        await sim.emails.recordEvent.mutate({ emailId: firsts[1]!.id, type: "bounced" });
      }
      // Day 3 (Thursday) noon: paused for 2 days, then resumed.
      if (t === 3 * 24 + 12) {
        expect((await sim.campaigns.transition.mutate({ id: campaign.id, action: "pause" })).status).toBe("paused");
        pausedAt = t;
        emailsAtPause = (await emailsOf()).length;
      }
      if (pausedAt !== undefined && t === pausedAt + 48) {
        expect((await emailsOf()).length).toBe(emailsAtPause);
        expect((await sim.campaigns.transition.mutate({ id: campaign.id, action: "resume" })).status).toBe("running");
      }
      if (t > 5 * 24 && t % 24 === 0 && (await sim.campaigns.get.query({ id: campaign.id })).status === "completed") break;
    }

    const final = await sim.campaigns.get.query({ id: campaign.id });
    expect(final.status).toBe("completed");
    const emails = await emailsOf();
    const byLead = new Map<string, SentRow[]>();
    for (const e of emails) byLead.set(e.lead_id, [...(byLead.get(e.lead_id) ?? []), e]);

    // Every lead exactly its 3 emails (none twice, none skipped); the replied and bounced ones only their first.
    for (const id of ids) {
      const own = (byLead.get(id) ?? []).sort((a, b) => a.step - b.step);
      const expected = id === replied || id === bounced ? [0] : [0, 1, 2];
      expect(own.map((e) => e.step), id).toEqual(expected);
      expect(new Set(own.map((e) => e.mailbox_id)).size).toBe(1);
      if (expected.length === 3) {
        expect(own.map((e) => e.status)).toEqual(["sent", "sent", "sent"]);
        expect(own[1]!.subject).toBe(`Re: ${own[0]!.subject}`);
        const [s0, s1, s2] = own.map((e) => new Date(e.sent_at!).getTime());
        expect(s1! - s0!).toBeGreaterThanOrEqual(2 * day - hour);
        expect(s2! - s1!).toBeGreaterThanOrEqual(3 * day - hour);
      }
    }
    expect(final.progress.leads).toMatchObject({ total: 200, finished: 198, stopped: 2 });
    expect(final.progress.reasons).toEqual({ replied: 1, bounced: 1 });
    expect((await sim.leads.get.query({ id: bounced! })).bouncedAt).not.toBeNull();

    // Each send inside its lead's window (09:00-17:00, Monday to Friday, in the lead's zone).
    for (const e of emails.filter((x) => x.sent_at)) {
      const local = localTime(e.timezone, new Date(e.sent_at!));
      expect(local.weekday, `${e.id} ${e.sent_at} ${e.timezone}`).toBeGreaterThanOrEqual(1);
      expect(local.weekday).toBeLessThanOrEqual(5);
      expect(local.minute).toBeGreaterThanOrEqual(9 * 60);
      expect(local.minute).toBeLessThan(17 * 60);
    }
    // No mailbox over its limit on any (UTC) day.
    const perDay = new Map<string, number>();
    for (const e of emails.filter((x) => x.sent_at)) {
      const key = `${e.mailbox_id} ${localDate("UTC", new Date(e.sent_at!))}`;
      perDay.set(key, (perDay.get(key) ?? 0) + 1);
    }
    for (const [key, n] of perDay) expect(n, key).toBeLessThanOrEqual(limits[boxes.findIndex((b) => key.startsWith(b.id))]!);

    // Follow-ups reached the provider under their thread's first email.
    const firstOf = new Map(emails.filter((e) => e.step === 0).map((e) => [e.lead_id, e.id]));
    const followUps = emails.filter((e) => e.step > 0);
    const atProvider = await emailsSent();
    for (const e of followUps) {
      const sent = atProvider.find((s) => s.idempotencyKey === e.id);
      expect(sent?.headers?.["In-Reply-To"]).toMatch(new RegExp(`^<${firstOf.get(e.lead_id)}@`));
    }
    expect(atProvider.filter((s) => emails.some((e) => e.id === s.idempotencyKey))).toHaveLength(emails.filter((e) => e.sent_at).length);
  }, 900_000);
});
