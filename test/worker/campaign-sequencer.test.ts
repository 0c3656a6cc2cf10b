// The campaign sequencer (SEQUENCE_CAMPAIGNS) on a set clock: due leads get their step once, follow-ups thread, skips say why.
import { emailsSent } from "../support/notifications";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { sequencerConfig } from "../../src/tiers/jobs/services/sequencer";
import { shiftedClock } from "../../src/platform/clock";
import { clockedWorker } from "../support/clock";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { pauseLeftoverCampaigns, tick } from "../support/campaigns";
import { asOltpSystem, ledgerRow, queueEmail, sendingMailbox } from "../support/jobs";
import { cronTasks, prepareJobs, queueNames, testServices } from "../support/runtime";
import { internalBatch, tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { failingBinding, failMidTransaction, postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

/** A Monday at 10:00 UTC some weeks ahead, so the window (09:00-17:00 UTC, weekdays) is open. */
const monday = (() => {
  const at = new Date(Date.now() + 21 * 86_400_000);
  at.setUTCDate(at.getUTCDate() + ((8 - at.getUTCDay()) % 7));
  at.setUTCHours(10, 0, 0, 0);
  return at;
})();
const at = (days: number, hours = 0) => clockedWorker(shiftedClock(new Date(monday.getTime() + days * 86_400_000 + hours * 3_600_000)));

async function enrolmentState(tenantId: string, campaignId: string) {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    sql`select l.email, cl.status, cl.current_step, cl.stop_reason, cl.mailbox_id from campaign_leads cl join leads l on l.tenant_id = cl.tenant_id and l.id = cl.lead_id
        where cl.tenant_id = ${tenantId} and cl.campaign_id = ${campaignId} order by l.email`,
  ]);
  return rows;
}

/** A running campaign on one mailbox, window open all week, with the given steps and `leads` fresh leads enrolled. */
async function runningCampaign(
  tenant: TestTenant,
  steps: Array<{ delayDays?: number; variants: Array<{ label: string; subject: string; text: string }> }>,
  leads: number,
  mailbox: { dailyLimit?: number } = {},
) {
  const client = trpcClient(tenant.admin.token, { batch: false });
  const box = await sendingMailbox(tenant.admin.token, { dailyLimit: mailbox.dailyLimit ?? 500, warmupEnabled: false });
  const campaign = await client.campaigns.create.mutate({ name: "C", sendDays: [0, 1, 2, 3, 4, 5, 6], windowStartMinute: 0, windowEndMinute: 1440, dailyLimit: 10_000 });
  await client.campaigns.setSteps.mutate({ id: campaign.id, steps });
  const { ids } = await client.leads.bulkUpsert.mutate({ leads: Array.from({ length: leads }, (_, i) => ({ email: `l${i}-${crypto.randomUUID().slice(0, 8)}@seq.example` })) });
  await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [box.id] });
  await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids });
  await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
  return { client, box, campaign, ids };
}

const twoSteps = [
  { variants: [{ label: "A", subject: "Hi", text: "Hello" }] },
  { delayDays: 1, variants: [{ label: "A", subject: "", text: "Again" }] },
];

describe("SEQUENCE_CAMPAIGNS", () => {
  let tenant: TestTenant;
  beforeAll(async () => {
    await pauseLeftoverCampaigns();
    tenant = await createTenant();
  });

  it("creates each due lead's step once, threads the follow-up two days later, skips a lead lacking a variable, and completes", async () => {
    const client = trpcClient(tenant.admin.token, { batch: false });
    const box = await sendingMailbox(tenant.admin.token, { dailyLimit: 100, warmupEnabled: false });
    const campaign = await client.campaigns.create.mutate({ name: "Seq", timeZone: "UTC", windowStartMinute: 540, windowEndMinute: 1020, sendDays: [1, 2, 3, 4, 5] });
    await client.campaigns.setSteps.mutate({
      id: campaign.id,
      steps: [
        { variants: [{ label: "A", subject: 'Hello {{firstName | "there"}}', text: "Hi {{firstName}} at {{company}}", html: "<p>Hi {{company}}</p>" }] },
        { delayDays: 2, variants: [{ label: "A", subject: "", text: "Following up, {{firstName}}" }] },
      ],
    });
    const { ids } = await client.leads.bulkUpsert.mutate({
      leads: [
        { email: "ann@seq.example", firstName: "Ann", company: "Acme <Ltd>" },
        { email: "bob@seq.example", firstName: "Bob", company: "Globex" },
        { email: "cat@seq.example", firstName: "Cat" },
      ],
    });
    await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [box.id] });
    await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids });
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });

    const first = at(0);
    await tick(first);
    await tick(first);
    const created = await client.emails.list.query({ campaignId: campaign.id });
    expect(created.items.map((e) => e.subject).sort()).toEqual(["Hello Ann", "Hello Bob"]);
    expect(created.items.every((e) => e.status === "queued" && e.mailboxId === box.id && e.variant === "A")).toBe(true);
    expect(first.held.JOBS_HIGH.held.map((m) => m.type)).toEqual(["SEND_EMAIL", "SEND_EMAIL"]);
    expect(await first.deliver("JOBS_HIGH", queueNames.high)).toBe(2);
    const ann = created.items.find((e) => e.subject === "Hello Ann")!;
    expect((await client.emails.get.query({ id: ann.id })).status).toBe("sent");
    const body = await client.content.get.query({ emailId: ann.id });
    expect(body).toMatchObject({ text: "Hi Ann at Acme <Ltd>", html: "<p>Hi Acme &lt;Ltd&gt;</p>" });
    expect(body.headers["Message-ID"]).toMatch(new RegExp(`^<${ann.id}@`));
    expect(await enrolmentState(tenant.id, campaign.id)).toMatchObject([
      { email: "ann@seq.example", status: "active", current_step: 1, mailbox_id: box.id },
      { email: "bob@seq.example", status: "active", current_step: 1 },
      { email: "cat@seq.example", status: "skipped", current_step: 0, stop_reason: "missing_variable:company" },
    ]);

    // A day later nothing is due; two days later the follow-ups go, under the first emails.
    await tick(at(1));
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(2);
    const third = at(2, 1);
    await tick(third);
    const all = (await client.emails.list.query({ campaignId: campaign.id })).items;
    expect(all).toHaveLength(4);
    const followUp = all.find((e) => e.subject === "Re: Hello Ann")!;
    // Not rendered until it is sent: the content tier has nothing for it yet; SEND_EMAIL renders and stores it.
    await expect(client.content.get.query({ emailId: followUp.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    expect(await third.deliver("JOBS_HIGH", queueNames.high)).toBe(2);
    const threaded = await client.content.get.query({ emailId: followUp.id });
    expect(threaded).toMatchObject({ text: "Following up, Ann", headers: { "In-Reply-To": body.headers["Message-ID"], References: body.headers["Message-ID"] } });
    await tick(third);
    expect(await enrolmentState(tenant.id, campaign.id)).toMatchObject([
      { status: "finished", current_step: 2 },
      { status: "finished", current_step: 2 },
      { status: "skipped" },
    ]);
    expect((await client.campaigns.get.query({ id: campaign.id })).status).toBe("completed");
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(4);
    // The batch's catalog rows count every reference: each object's ref_count is its parts plus the parts compressed against it.
    const [, counts = []] = await asOltpSystem((sql) => [
      sql`select set_config('app.current_tenant_id', ${tenant.id}, true)`,
      sql`select o.hash, o.ref_count as seen,
                 (select count(*) from email_content_parts p where p.tenant_id = o.tenant_id and p.hash = o.hash)
               + (select count(*) from email_content_parts p join content_objects d on d.tenant_id = p.tenant_id and d.hash = p.hash
                  where p.tenant_id = o.tenant_id and d.dictionary_hash = o.hash) as actual
          from content_objects o where o.tenant_id = ${tenant.id}`,
    ]);
    expect(counts.length).toBeGreaterThanOrEqual(5);
    expect(counts.filter((c) => Number(c.seen) !== Number(c.actual))).toEqual([]);
  }, 60_000);

  it("two ticks at once claim each lead once", async () => {
    const client = trpcClient(tenant.admin.token, { batch: false });
    const box = await sendingMailbox(tenant.admin.token, { dailyLimit: 500, warmupEnabled: false });
    const campaign = await client.campaigns.create.mutate({ name: "Race", sendDays: [0, 1, 2, 3, 4, 5, 6], windowStartMinute: 0, windowEndMinute: 1440 });
    await client.campaigns.setSteps.mutate({ id: campaign.id, steps: [{ variants: [{ label: "A", subject: "Hi", text: "Hello" }] }] });
    const { ids } = await client.leads.bulkUpsert.mutate({ leads: Array.from({ length: 60 }, (_, i) => ({ email: `race-${i}-${crypto.randomUUID().slice(0, 6)}@race.example` })) });
    await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [box.id] });
    await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids });
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    const worker = at(0);
    await Promise.all([tick(worker), tick(worker), tick(worker)]);
    const emails = await client.emails.list.query({ campaignId: campaign.id, limit: 100 });
    expect(emails.items).toHaveLength(60);
    expect(new Set(emails.items.map((e) => e.leadId)).size).toBe(60);
  }, 60_000);

  it("a reply stops the lead's sequence, a bounce stops and suppresses it; the sent follow-up carries the thread headers", async () => {
    const t = await createTenant();
    const { client, campaign } = await runningCampaign(t, twoSteps, 3);
    await tick(at(0));
    const [replied, bounced, quiet] = (await client.emails.list.query({ campaignId: campaign.id })).items;
    await client.emails.recordEvent.mutate({ emailId: replied!.id, type: "replied" });
    await client.emails.recordEvent.mutate({ emailId: bounced!.id, type: "bounced" });
    const later = at(1, 1);
    await tick(later);
    const followUps = (await client.emails.list.query({ campaignId: campaign.id })).items.filter((e) => e.subject === "Re: Hi");
    expect(followUps.map((e) => e.leadId)).toEqual([quiet!.leadId]);
    const states = await enrolmentState(t.id, campaign.id);
    expect(states.map((s) => String(s.stop_reason)).sort()).toEqual(["bounced", "null", "replied"]);
    expect((await client.leads.get.query({ id: bounced!.leadId })).bouncedAt).not.toBeNull();
    await later.deliver("JOBS_HIGH", queueNames.high);
    const sent = (await emailsSent()).find((e) => e.idempotencyKey === followUps[0]!.id);
    expect(sent?.headers?.["In-Reply-To"]).toMatch(new RegExp(`^<${quiet!.id}@`));
  }, 60_000);

  it("a suspended tenant's campaigns create nothing and its queued emails wait; the tenant's daily send limit holds in the sequencer", async () => {
    const t = await createTenant();
    const { client, campaign } = await runningCampaign(t, twoSteps, 3);
    await asOltpSystem((sql) => [sql`select set_config('app.current_tenant_id', ${t.id}, true)`, sql`update tenants set status = 'suspended' where id = ${t.id}`]);
    await tick(at(0));
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(0);
    await asOltpSystem((sql) => [
      sql`select set_config('app.current_tenant_id', ${t.id}, true)`,
      sql`update tenants set status = 'active', daily_send_limit = 2 where id = ${t.id}`,
    ]);
    await tick(at(0));
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(2);
    const states = await enrolmentState(t.id, campaign.id);
    expect(states.filter((s) => s.current_step === 0)).toHaveLength(1);
    await tick(at(1, 1));
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(4);
  }, 60_000);

  it("the 5-minute cron enqueues one tick per slot, however often it runs", async () => {
    const task = cronTasks.aggregation.find((c) => c.name === "jobs.sequenceCampaigns")!;
    const clock = shiftedClock(new Date(Date.UTC(2031, 0, 1, 0, 2, 0) + Math.floor(Math.random() * 1e6) * 300_000));
    // The tick's message is kept here, not run by Miniflare's consumer in the background of later tests.
    const sent: unknown[] = [];
    const services = { ...testServices(clock), jobs: { ...testServices(clock).jobs, send: async (messages: unknown[]) => void sent.push(...messages) } };
    await task.run(services);
    await task.run(services);
    expect(sent).toHaveLength(1);
    const slot = Math.floor(clock.now().getTime() / 300_000);
    const [rows = []] = await asOltpSystem((sql) => [sql`select type from jobs where tenant_id is null and idempotency_key = ${`tick:${slot}`}`]);
    expect(rows).toEqual([{ type: "SEQUENCE_CAMPAIGNS" }]);
  });

  it("campaigns.get shows progress per step and variant in one round trip; preview renders a lead's email or why it is skipped; removed leads get nothing", async () => {
    const t = await createTenant();
    const steps = [
      { variants: [{ label: "A", subject: 'Hi {{firstName | "you"}}', text: "A" }, { label: "B", subject: "Hello", text: "B" }] },
      { delayDays: 1, variants: [{ label: "A", subject: "", text: "Again from {{custom.city}}" }] },
    ];
    const { client, campaign, ids } = await runningCampaign(t, steps, 6);
    const preview = await client.campaigns.preview.query({ campaignId: campaign.id, leadId: ids[0]!, step: 0 });
    expect(["Hi you", "Hello"]).toContain(preview.subject);
    expect(await client.campaigns.preview.query({ campaignId: campaign.id, leadId: ids[0]!, step: 1 })).toMatchObject({ skipped: "missing_variable:custom.city" });
    expect(await client.campaigns.removeLeads.mutate({ id: campaign.id, leadIds: [ids[5]!] })).toEqual({ removed: 1 });

    await tick(at(0));
    await resetRoundTrips();
    const full = await client.campaigns.get.query({ id: campaign.id });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(full.progress.leads).toEqual({ total: 6, waiting: 5, due: 0, finished: 0, stopped: 1, skipped: 0 });
    expect(full.progress.reasons).toEqual({ removed: 1 });
    expect(full.progress.steps[0]).toMatchObject({ position: 0, emails: 5, sent: 0, waiting: 0, due: 0 });
    expect(full.progress.steps[0]!.variants.reduce((n, v) => n + v.emails, 0)).toBe(5);
    expect(full.progress.steps[1]).toMatchObject({ position: 1, waiting: 5, emails: 0 });
    const emails = (await client.emails.list.query({ campaignId: campaign.id })).items;
    expect(emails.map((e) => e.leadId)).not.toContain(ids[5]);
    const previewed = emails.find((e) => e.leadId === ids[0]);
    expect(previewed?.subject).toBe(preview.subject);

    await tick(at(1, 1));
    const after = await client.campaigns.get.query({ id: campaign.id });
    expect(after.progress.leads).toMatchObject({ skipped: 5, stopped: 1 });
    expect(after.progress.reasons).toEqual({ removed: 1, "missing_variable:custom.city": 5 });
  }, 60_000);

  it("a tick killed midway (its connection dying mid-transaction; the queue failing after commit) and run again sends nothing twice and loses nothing; a send whose render dies at R2 is retried and sent once", async () => {
    const t = await createTenant();
    const { client, campaign } = await runningCampaign(t, twoSteps, 30);
    // The batch's write transaction dies after its first statement claimed the leads, created the emails and their
    // SEND_EMAIL ledger rows and moved the leads on, before the next plan's statements: the server rolls all of it back.
    await failMidTransaction("oltp", "), moved as (");
    const dying = at(0);
    const prepared = prepareJobs(null, [{ type: "SEQUENCE_CAMPAIGNS", payload: {} }], dying.clock);
    await internalBatch(tierStore(parseEnv(env), "oltp"), "system", null, (db) => [prepared.insert(db)]);
    dying.held.JOBS_NORMAL.held.push(prepared.messages[0]!.message);
    await dying.deliver("JOBS_NORMAL", queueNames.normal);
    expect((await ledgerRow(prepared.messages[0]!.message.jobId))?.status).toBe("pending");
    expect((await client.emails.list.query({ campaignId: campaign.id })).items).toHaveLength(0);
    expect((await enrolmentState(t.id, campaign.id)).every((s) => s.current_step === 0 && s.status === "active")).toBe(true);

    // Now the queue fails after the commit: the emails and their SEND_EMAIL rows exist, the messages are lost.
    const lostQueue = clockedWorker(at(0).clock, { JOBS_HIGH: failingBinding(env.JOBS_HIGH, "queue") });
    await tick(lostQueue);
    const created = (await client.emails.list.query({ campaignId: campaign.id, limit: 100 })).items;
    expect(created).toHaveLength(30);
    const [pending = []] = await asOltpSystem((sql) => [
      sql`select count(*)::int as n from jobs where tenant_id = ${t.id} and type = 'SEND_EMAIL' and status = 'pending' and id = any(${created.map((e) => e.id)}::uuid[])`,
    ]);
    expect(pending[0]).toEqual({ n: 30 });

    // Run again: nothing twice; every lead once.
    const again = at(0, 1);
    await tick(again);
    await tick(again);
    const after = (await client.emails.list.query({ campaignId: campaign.id, limit: 100 })).items;
    expect(after).toHaveLength(30);
    expect(new Set(after.map((e) => e.leadId)).size).toBe(30);

    // The sends render their bodies; R2 takes the first 10 puts, then fails: those sends fail their attempt and are
    // delivered again, as the queue would, with R2 back. Every lead gets its email once, with its body.
    let puts = 0;
    const bucket = env.CONTENT_BUCKET;
    const flaky = new Proxy(bucket, {
      get(target, property) {
        const value = Reflect.get(target, property) as unknown;
        if (typeof value !== "function") return value;
        if (property === "put") return (...args: unknown[]) => (++puts > 10 ? Promise.reject(new Error("R2 unreachable (injected)")) : value.apply(target, args));
        return value.bind(target);
      },
    });
    const ids = after.map((e) => e.id);
    // The lost messages, as the ledger holds them (each SEND_EMAIL job's id is its email's).
    const message = (emailId: string) => ({ jobId: emailId, type: "SEND_EMAIL", tenantId: t.id, payload: { emailId }, enqueuedAt: new Date(monday).toISOString() });
    const sending = clockedWorker(at(0, 1).clock, { CONTENT_BUCKET: flaky });
    const before = await emailsSent();
    sending.held.JOBS_HIGH.held.push(...ids.map(message));
    await sending.deliver("JOBS_HIGH", queueNames.high);
    expect(puts).toBeGreaterThan(10);
    const halfway = (await client.emails.list.query({ campaignId: campaign.id, limit: 100 })).items;
    expect(halfway.filter((e) => e.status === "sent").length).toBeLessThan(30);
    const retry = at(0, 2);
    retry.held.JOBS_HIGH.held.push(...halfway.filter((e) => e.status === "queued").map((e) => message(e.id)));
    await retry.deliver("JOBS_HIGH", queueNames.high);
    const done = (await client.emails.list.query({ campaignId: campaign.id, limit: 100 })).items;
    expect(done.map((e) => e.status)).toEqual(Array(30).fill("sent"));
    const provider = (await emailsSent()).slice(before.length).filter((m) => ids.includes(m.idempotencyKey ?? ""));
    expect(provider).toHaveLength(30);
    expect(new Set(provider.map((m) => m.idempotencyKey)).size).toBe(30);
    for (const email of done.slice(0, 3)) expect((await client.content.get.query({ emailId: email.id })).text).toBe("Hello");
  }, 90_000);

  it("fairness: a small tenant's first sends are not delayed behind a big tenant's campaign", async () => {
    const [big, small] = await Promise.all([createTenant(), createTenant()]);
    // 2,000 leads (scaled down from 50,000: a tick's budget is scaled the same way below) and 50.
    const bigCampaign = await runningCampaign(big, twoSteps, 1000);
    const more = await bigCampaign.client.leads.bulkUpsert.mutate({ leads: Array.from({ length: 1000 }, (_, i) => ({ email: `m${i}-${crypto.randomUUID().slice(0, 8)}@seq.example` })) });
    await bigCampaign.client.campaigns.enrolLeads.mutate({ id: bigCampaign.campaign.id, leadIds: more.ids });
    const smallCampaign = await runningCampaign(small, twoSteps, 50);

    // A budget of one batch for every tenant with a campaign, plus 5: the big tenant's 20 batches cannot fit in one tick.
    const [tenants = []] = await asOltpSystem((sql) => [sql`select count(distinct tenant_id)::int as n from campaigns where status = 'running'`]);
    const budget = sequencerConfig.maxBatchesPerTick;
    sequencerConfig.maxBatchesPerTick = Number(tenants[0]!.n) + 5;
    try {
      // One delivery of one tick: its continuation stays held.
      const worker = at(0);
      const prepared = prepareJobs(null, [{ type: "SEQUENCE_CAMPAIGNS", payload: {} }], worker.clock);
      await internalBatch(tierStore(parseEnv(env), "oltp"), "system", null, (db) => [prepared.insert(db)]);
      worker.held.JOBS_NORMAL.held.push(prepared.messages[0]!.message);
      await worker.deliver("JOBS_NORMAL", queueNames.normal);
    } finally {
      sequencerConfig.maxBatchesPerTick = budget;
    }
    const smallDone = await smallCampaign.client.campaigns.get.query({ id: smallCampaign.campaign.id });
    const bigSoFar = await bigCampaign.client.campaigns.get.query({ id: bigCampaign.campaign.id });
    // Nothing of the big campaign is left due for a real tick to pick up while later test files run.
    await bigCampaign.client.campaigns.transition.mutate({ id: bigCampaign.campaign.id, action: "complete" });
    expect(smallDone.progress.steps[0]).toMatchObject({ emails: 50 });
    expect(bigSoFar.progress.steps[0]!.emails).toBeGreaterThanOrEqual(sequencerConfig.batchSize);
    expect(bigSoFar.progress.steps[0]!.emails).toBeLessThanOrEqual(6 * sequencerConfig.batchSize);
  }, 180_000);

  it("a tenant with more than a batch due advances it all in one tick: each batch reads the next one's leads past those it moved, and counts its sends against the allowances it carries", async () => {
    const t = await createTenant();
    const size = sequencerConfig.batchSize;
    // More than two batches of leads, and a mailbox that takes one batch and 30 more today.
    const { client, campaign, box } = await runningCampaign(t, twoSteps, 2 * size + 50, { dailyLimit: size + 30 });
    const worker = at(0);
    await tick(worker);
    const states = await enrolmentState(t.id, campaign.id);
    // Every lead was decided in this one tick: one batch's sends, 30 more, the rest postponed to tomorrow's window.
    expect(states.filter((s) => s.current_step === 1)).toHaveLength(size + 30);
    expect(states.filter((s) => s.current_step === 0 && s.status === "active")).toHaveLength(size + 20);
    const [planned = []] = await asOltpSystem((sql) => [
      sql`select coalesce(sum(planned), 0)::int as n from sequencer_daily_plans where tenant_id = ${t.id} and mailbox_id = ${box.id}`,
    ]);
    expect(planned[0]!.n).toBe(size + 30);
    const sql = oltpSql();
    const [, waiting = []] = await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${t.id}, true)`,
      sql`select count(*)::int as n from campaign_leads where tenant_id = ${t.id} and campaign_id = ${campaign.id} and current_step = 0
          and next_send_at > ${worker.clock.now().toISOString()}::timestamptz`,
    ]);
    expect(waiting[0]!.n).toBe(size + 20);
    await client.campaigns.transition.mutate({ id: campaign.id, action: "complete" });
  }, 120_000);

  it("a paused mailbox's leads wait for it, or move to another of the campaign's mailboxes when the campaign says so, still threaded", async () => {
    const t = await createTenant();
    const admin = trpcClient(t.admin.token, { batch: false });
    const results: Record<string, { sender: string[]; inReplyTo: string | undefined; first: string }> = {};
    for (const fallback of ["wait", "move"] as const) {
      const { client, box, campaign, ids } = await runningCampaign(t, twoSteps, 1);
      const spare = await sendingMailbox(t.admin.token, { dailyLimit: 500, warmupEnabled: false });
      await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [box.id, spare.id] });
      await client.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
      await client.campaigns.update.mutate({ id: campaign.id, mailboxFallback: fallback });
      await client.campaigns.transition.mutate({ id: campaign.id, action: "resume" });
      await tick(at(0));
      const [first] = (await client.emails.list.query({ campaignId: campaign.id })).items;
      await admin.mailboxes.update.mutate({ id: first!.mailboxId, status: "paused" });
      const later = at(1, 1);
      await tick(later);
      // The body (and its thread headers) is rendered when SEND_EMAIL sends it.
      await later.deliver("JOBS_HIGH", queueNames.high);
      const emails = (await client.emails.list.query({ campaignId: campaign.id })).items.reverse();
      const followUp = emails[1] ? await client.content.get.query({ emailId: emails[1].id }) : undefined;
      results[fallback] = { sender: emails.map((e) => e.mailboxId), inReplyTo: followUp?.headers["In-Reply-To"], first: `<${first!.id}@` };
      expect(ids).toHaveLength(1);
    }
    expect(results.wait!.sender).toHaveLength(1);
    const moved = results.move!;
    expect(moved.sender).toHaveLength(2);
    expect(moved.sender[1]).not.toBe(moved.sender[0]);
    expect(moved.inReplyTo?.startsWith(moved.first)).toBe(true);
  }, 60_000);

  it("SEND_EMAIL holds the tenant's daily send limit across its mailboxes, and sends nothing more to a lead that replied in the campaign", async () => {
    const t = await createTenant();
    await asOltpSystem((sql) => [sql`select set_config('app.current_tenant_id', ${t.id}, true)`, sql`update tenants set daily_send_limit = 3 where id = ${t.id}`]);
    const worker = at(0);
    const sim = worker.client(t.admin.token);
    const boxes = await Promise.all([0, 1].map(() => sendingMailbox(t.admin.token, { dailyLimit: 500, warmupEnabled: false })));
    const emails = [];
    for (let i = 0; i < 5; i++) emails.push(await queueEmail(t.admin.token, boxes[i % 2]!.id, {}, sim));
    await worker.deliver("JOBS_HIGH", queueNames.high);
    const rows = await Promise.all(emails.map((e) => ledgerRow(e.id)));
    expect(rows.filter((r) => r?.status === "succeeded")).toHaveLength(3);
    expect(rows.filter((r) => r?.status === "pending").map((r) => r?.last_error)).toEqual(["The tenant's daily send limit is reached", "The tenant's daily send limit is reached"]);

    const { client, campaign, box } = await runningCampaign(t, twoSteps, 1);
    const lead = await client.leads.create.mutate({ email: `r-${crypto.randomUUID().slice(0, 8)}@seq.example` });
    const body = { text: "x", html: "", headers: {} };
    const first = await sim.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, campaignId: campaign.id, subject: "One", body });
    const second = await sim.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, campaignId: campaign.id, subject: "Two", body });
    await sim.emails.recordEvent.mutate({ emailId: first.id, type: "replied" });
    await worker.deliver("JOBS_HIGH", queueNames.high);
    expect((await ledgerRow(second.id))?.progress).toMatchObject({ outcome: "lead_replied" });
    expect((await client.emails.get.query({ id: second.id })).status).toBe("failed");
  }, 60_000);
});
