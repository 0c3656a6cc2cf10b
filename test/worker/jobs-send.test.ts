import { beforeAll, describe, expect, it } from "vitest";
import { jobRuntimeConfig } from "../../src/platform/jobs/config";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { queueNames } from "../support/runtime";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { commitJobsWithoutSending, deliver, dueInSeconds, ledgerRow, queueEmail, sendingMailbox, waitFor } from "../support/jobs";
import { fakeEmail } from "../support/oltp";
import { trpcClient } from "../support/worker";

/** Waits for a job to finish; the low queue gathers a batch for up to 30 s (wrangler.toml), hence the margin. */
const settled = (id: string) =>
  waitFor(async () => {
    const row = await ledgerRow(id);
    return row && ["succeeded", "failed", "dead"].includes(String(row.status)) ? row : undefined;
  }, 50_000);

/** A deferred job: pending again, its attempt given back, due later, with the reason kept. */
const deferred = (id: string) =>
  waitFor(async () => {
    const row = await ledgerRow(id);
    return row?.status === "pending" && row.last_error ? row : undefined;
  }, 30_000);

describe("SEND_EMAIL", () => {
  let a: TestTenant;
  beforeAll(async () => {
    a = await createTenant();
  });

  it("priorities route to their queues: a queued email is sent from the high queue, an import runs from the low one", async () => {
    const box = await sendingMailbox(a.admin.token);
    const email = await queueEmail(a.admin.token, box.id);
    const job = await settled(email.id);
    expect(job).toMatchObject({ type: "SEND_EMAIL", status: "succeeded", priority: "high", last_queue: queueNames.high, attempts: 1 });
    const sent = await trpcClient(a.admin.token, { batch: false }).emails.get.query({ id: email.id });
    expect(sent).toMatchObject({ status: "sent", providerMessageId: `recorded-${email.id}` });
    expect(sent.events.map((e) => e.type)).toEqual(["queued", "sent"]);

    const imported = await trpcClient(a.admin.token, { batch: false }).jobs.importLeads.mutate({ fileName: "l.csv", csv: `email\n${fakeEmail()}` });
    expect(await settled(imported.id)).toMatchObject({ status: "succeeded", priority: "low", last_queue: queueNames.low });
  }, 90_000);

  it("a mailbox's warmup allowance caps the day's sends; the rest are deferred to the next day, not failed", async () => {
    // Warmup day 0: min(daily limit 10, start 2) = 2 sends today.
    const box = await sendingMailbox(a.admin.token, { dailyLimit: 10, warmupEnabled: true, warmupStart: 2 });
    const emails = [];
    for (let i = 0; i < 3; i++) emails.push(await queueEmail(a.admin.token, box.id));
    const rows = await Promise.all(
      emails.map((e) =>
        waitFor(async () => {
          const row = await ledgerRow(e.id);
          return row?.status === "succeeded" || (row?.status === "pending" && row.last_error) ? row : undefined;
        }, 30_000),
      ),
    );
    expect(rows.filter((r) => r.status === "succeeded")).toHaveLength(2);
    const [late] = rows.filter((r) => r.status === "pending");
    expect(late).toMatchObject({ attempts: 0, last_error: "The mailbox's daily limit is reached" });
    expect(await dueInSeconds(String(late!.id))).toBeGreaterThan(0);
    const statuses = await Promise.all(emails.map((e) => trpcClient(a.admin.token, { batch: false }).emails.get.query({ id: e.id })));
    expect(statuses.map((e) => e.status).sort()).toEqual(["queued", "sent", "sent"]);
  });

  it("the campaign's send window is applied in the lead's time zone", async () => {
    const box = await sendingMailbox(a.admin.token);
    // A one-hour window around the current time in UTC+6 (Etc/GMT-6): closed in UTC, open there.
    const now = new Date();
    const localHour = (now.getUTCHours() + 6) % 24;
    const campaign = await trpcClient(a.admin.token, { batch: false }).campaigns.create.mutate({
      name: "Windowed",
      timeZone: "UTC",
      windowStartMinute: localHour * 60,
      windowEndMinute: localHour * 60 + 60,
      sendDays: [0, 1, 2, 3, 4, 5, 6],
    });
    // A draft campaign sends nothing (emails under it are refused): this one has started.
    await trpcClient(a.admin.token, { batch: false }).campaigns.setSteps.mutate({ id: campaign.id, steps: [{ variants: [{ label: "A", subject: "Hi", text: "Hello" }] }] });
    await trpcClient(a.admin.token, { batch: false }).campaigns.transition.mutate({ id: campaign.id, action: "start" });
    const inZone = await queueEmail(a.admin.token, box.id, { campaignId: campaign.id, customFields: { timezone: "Etc/GMT-6" } });
    const campaignZone = await queueEmail(a.admin.token, box.id, { campaignId: campaign.id });
    expect(await settled(inZone.id)).toMatchObject({ status: "succeeded" });
    const waiting = await deferred(campaignZone.id);
    expect(waiting).toMatchObject({ attempts: 0, last_error: "Outside the campaign's send window in UTC" });
    // It is due when the window opens in UTC, 5 to 6 hours from now.
    const dueIn = await dueInSeconds(campaignZone.id);
    expect(dueIn).toBeGreaterThan(5 * 3600 - 60);
    expect(dueIn).toBeLessThanOrEqual(6 * 3600);
  });

  it("a mailbox whose bounce rate crosses the threshold is paused and raised once; its emails wait", async () => {
    const box = await sendingMailbox(a.admin.token, { dailyLimit: 100, warmupEnabled: false });
    const client = trpcClient(a.admin.token, { batch: false });
    const { bounceMinSample, bounceRateThreshold } = jobsConfig.sendEmail;
    const bounces = Math.ceil(bounceMinSample * bounceRateThreshold);
    // Sent earlier; the provider's reports (sent, bounced) arrive through emails.recordEvent.
    for (let i = 0; i < bounceMinSample; i++) {
      const lead = await client.leads.create.mutate({ email: fakeEmail() });
      const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, subject: "Earlier", contentStorageKey: `bodies/${i}` });
      await client.emails.recordEvent.mutate({ emailId: email.id, type: i < bounces ? "bounced" : "sent" });
    }
    expect((await client.mailboxes.get.query({ id: box.id })).status).toBe("active");
    const next = await queueEmail(a.admin.token, box.id);
    expect(await deferred(next.id)).toMatchObject({ attempts: 0, last_error: "The mailbox is bounce_protected" });
    expect((await client.mailboxes.get.query({ id: box.id })).status).toBe("bounce_protected");
    expect((await client.emails.get.query({ id: next.id })).status).toBe("queued");
    const another = await queueEmail(a.admin.token, box.id);
    expect(await deferred(another.id)).toMatchObject({ last_error: "The mailbox is bounce_protected" });
    const events = await client.admin.systemEvents.list.query({ eventType: "mailbox_bounce_protected" });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({ occurrences: 1, dedupKey: `mailbox.bounce_protected:${box.id}`, details: { sent: bounceMinSample, bounced: bounces } });
  }, 120_000);
});

describe("per-tenant fairness", () => {
  it("a tenant at its cap of running bulk jobs is put back without using attempts, while another tenant's bulk job and its own sends run", async () => {
    const [busy, quiet] = await Promise.all([createTenant(), createTenant()]);
    const cap = jobRuntimeConfig.fairness.maxRunningBulkPerTenant;
    const importJob = (t: TestTenant) => ({
      type: "IMPORT_LEADS" as const,
      payload: { storageKey: `imports/${t.id}/x.csv`, fileName: "x.csv", requestedBy: t.admin.id },
    });
    // The busy tenant's big import is running in `cap` chunks already.
    const running = await commitJobsWithoutSending(busy.id, busy.admin.id, Array.from({ length: cap }, () => importJob(busy)));
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`update jobs set status = 'running', attempts = 1, started_at = now() where id = any(${running.map((m) => m.jobId)}::uuid[])`,
    ]);
    const [more] = await commitJobsWithoutSending(busy.id, busy.admin.id, [importJob(busy)]);
    const quietImport = await trpcClient(quiet.admin.token, { batch: false }).jobs.importLeads.mutate({ fileName: "q.csv", csv: `email\n${fakeEmail()}` });

    // One low-queue batch with both tenants' jobs: the busy tenant's is re-sent for later, the quiet one's runs.
    const quietMessage = { jobId: quietImport.id, type: "IMPORT_LEADS" as const, tenantId: quiet.id, payload: {}, enqueuedAt: new Date().toISOString() };
    expect(await deliver(queueNames.low, [more!, quietMessage])).toMatchObject({ acked: 2, retries: [] });
    expect(await ledgerRow(more!.jobId)).toMatchObject({ status: "pending", attempts: 0 });
    expect(await settled(quietImport.id)).toMatchObject({ status: "succeeded", tenant_id: quiet.id });

    // Its sends are not capped: they use the high queue and are never counted with bulk work.
    const box = await sendingMailbox(busy.admin.token);
    const email = await queueEmail(busy.admin.token, box.id);
    expect(await settled(email.id)).toMatchObject({ status: "succeeded", last_queue: queueNames.high });
  }, 60_000);
});
