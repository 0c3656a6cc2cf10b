// The tenant suppression list end to end: fed by the unsubscribe link and engagement facts, outliving its lead and an erasure, checked wherever email could go out.
import { beforeAll, describe, expect, it } from "vitest";
import { shiftedClock } from "../../src/platform/clock";
import { pauseLeftoverCampaigns, tick } from "../support/campaigns";
import { clockedWorker } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { deliver, queueEmail, sendingMailbox } from "../support/jobs";
import { emailsTo } from "../support/notifications";
import { expectCode, rejection } from "../support/oltp";
import { queueNames } from "../support/runtime";
import { request, trpcClient } from "../support/worker";

/** A Monday at 10:00 UTC some weeks ahead: the campaigns' all-week window is open. */
const monday = (() => {
  const at = new Date(Date.now() + 28 * 86_400_000);
  at.setUTCDate(at.getUTCDate() + ((8 - at.getUTCDay()) % 7));
  at.setUTCHours(10, 0, 0, 0);
  return at;
})();
const at = (days: number, hours = 0) => clockedWorker(shiftedClock(new Date(monday.getTime() + days * 86_400_000 + hours * 3_600_000)));

const twoSteps = [
  { variants: [{ label: "A", subject: "Hi", text: "Hello" }] },
  { delayDays: 1, variants: [{ label: "A", subject: "", text: "Again" }] },
];

/** A running two-step campaign on a verified mailbox, with `addresses` enrolled as new leads. */
async function runningCampaign(tenant: TestTenant, addresses: string[]) {
  const client = trpcClient(tenant.admin.token, { batch: false });
  const box = await sendingMailbox(tenant.admin.token, { dailyLimit: 500, warmupEnabled: false });
  const campaign = await client.campaigns.create.mutate({ name: "C", sendDays: [0, 1, 2, 3, 4, 5, 6], windowStartMinute: 0, windowEndMinute: 1440, dailyLimit: 10_000 });
  await client.campaigns.setSteps.mutate({ id: campaign.id, steps: twoSteps });
  const { ids } = await client.leads.bulkUpsert.mutate({ leads: addresses.map((email) => ({ email })) });
  await client.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [box.id] });
  await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: ids });
  await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
  return { client, box, campaign, ids };
}

const address = (tag: string) => `${tag}-${crypto.randomUUID().slice(0, 8)}@suppress.example`;

describe("suppression list", () => {
  beforeAll(async () => {
    await pauseLeftoverCampaigns();
  });
  it("unsubscribe (the one-click header URL) -> delete lead -> re-create -> enrol -> nothing is sent; sent emails carry both List-Unsubscribe headers", async () => {
    const t = await createTenant();
    const gone = address("gone");
    const { client, campaign, box } = await runningCampaign(t, [gone]);
    const first = at(0);
    await tick(first);
    await first.deliver("JOBS_HIGH", queueNames.high);
    const [sent] = await emailsTo(gone);
    expect(sent?.headers?.["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
    const oneClick = /^<(https:\/\/edp\.test\/v1\/unsubscribe\?token=[^>]+)>$/.exec(sent?.headers?.["List-Unsubscribe"] ?? "");
    expect(oneClick).not.toBeNull();

    // What a mailbox provider does with the header (RFC 8058): a POST of List-Unsubscribe=One-Click to the URL.
    const url = new URL(oneClick![1]!);
    const response = await request(url.pathname + url.search, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(response.status).toBe(200);
    const listed = await client.suppressions.list.query({});
    expect(listed.items).toEqual([expect.objectContaining({ address: gone, reason: "unsubscribe", erasedAt: null })]);
    expect(listed.items[0]).not.toHaveProperty("addressHash");

    const [old] = (await client.leads.list.query({ search: gone })).items;
    await client.leads.bulkDelete.mutate({ ids: [old!.id] });
    const again = await client.leads.create.mutate({ email: gone.toUpperCase() });
    expect(await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [again.id] })).toEqual({ enrolled: 0, skipped: 1 });
    expect((await rejection(client.emails.create.mutate({ leadId: again.id, mailboxId: box.id, subject: "Direct", body: { text: "x" } }))).details).toEqual({ lead: "suppressed" });
    const upserted = await client.leads.upsert.mutate({ email: gone });
    expect(upserted.id).toBe(again.id);

    const next = at(1, 1);
    await tick(next);
    await next.deliver("JOBS_HIGH", queueNames.high);
    expect(await emailsTo(gone)).toHaveLength(1);
  }, 90_000);

  it("after an erasure of the address the list keeps only its keyed hash (the receipt says so), and a re-created lead is still never mailed", async () => {
    const t = await createTenant();
    const erased = address("erased");
    const { client, campaign, ids } = await runningCampaign(t, [erased]);
    const first = at(0);
    await tick(first);
    const [email] = (await client.emails.list.query({ campaignId: campaign.id })).items;
    await client.emails.recordEvent.mutate({ emailId: email!.id, type: "complained" });
    expect((await client.suppressions.list.query({})).items).toEqual([expect.objectContaining({ address: erased, reason: "complaint" })]);

    const { requestId, jobId } = await client.lifecycle.eraseSubject.mutate({ subject: { email: erased } });
    await deliver(queueNames.normal, [{ jobId, type: "ERASE_SUBJECT", tenantId: t.id, payload: { requestId }, enqueuedAt: new Date().toISOString() }]);
    const receipt = await client.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.status).toBe("completed");
    expect(receipt.receipt).toMatchObject({ tiers: { oltp: { counts: { leads: 1, suppressionsKeptAsHash: 1 } } }, suppression: { keptAsHash: 1 } });
    const [kept] = (await client.suppressions.list.query({})).items;
    expect(kept).toMatchObject({ address: null, reason: "complaint" });
    expect(kept!.erasedAt).not.toBeNull();
    await expectCode(client.leads.get.query({ id: ids[0]! }), "NOT_FOUND");

    // The same address comes back (an import, a form): matched by its hash, the entry holds it again and nothing is sent.
    const { ids: [back] } = await client.leads.bulkUpsert.mutate({ leads: [{ email: erased }] });
    expect((await client.suppressions.list.query({})).items[0]).toMatchObject({ address: erased });
    expect(await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [back!] })).toEqual({ enrolled: 0, skipped: 1 });
    await first.deliver("JOBS_HIGH", queueNames.high);
    expect(await emailsTo(erased)).toEqual([]);
  }, 90_000);

  it("an address suppressed after enrolment: SEND_EMAIL fails its queued email and the sequencer stops the lead; removing the entry lets it be mailed again", async () => {
    const t = await createTenant();
    const [kept, blocked] = [address("kept"), address("blocked")];
    const { client, campaign } = await runningCampaign(t, [kept, blocked]);
    const first = at(0);
    await tick(first);
    expect(await client.suppressions.add.mutate({ address: blocked.toUpperCase() })).toMatchObject({ address: blocked, reason: "admin" });
    // Adding it again answers the same entry.
    expect((await client.suppressions.add.mutate({ address: blocked, reason: "complaint" })).reason).toBe("admin");
    await first.deliver("JOBS_HIGH", queueNames.high);
    const emails = (await client.emails.list.query({ campaignId: campaign.id })).items;
    expect((await emailsTo(kept)).length).toBe(1);
    expect(await emailsTo(blocked)).toEqual([]);
    const statuses = Object.fromEntries(await Promise.all(emails.map(async (e) => [(await client.leads.get.query({ id: e.leadId })).email, e.status])));
    expect(statuses).toEqual({ [kept]: "sent", [blocked]: "failed" });

    const next = at(1, 1);
    await tick(next);
    const followUps = (await client.emails.list.query({ campaignId: campaign.id })).items.filter((e) => e.subject === "Re: Hi");
    expect(followUps).toHaveLength(1);

    expect(await client.suppressions.remove.mutate({ address: blocked })).toEqual({ removed: true });
    expect(await client.suppressions.remove.mutate({ address: blocked })).toEqual({ removed: false });
    expect((await client.suppressions.list.query({})).items).toEqual([]);
  }, 90_000);

  it("a CSV imported through the jobs tier fills the list row by row; a lead imported later with a listed address is never enrolled", async () => {
    const t = await createTenant();
    const client = trpcClient(t.admin.token, { batch: false });
    const [one, two, three] = [address("csv1"), address("csv2"), address("csv3")];
    await client.suppressions.add.mutate({ address: three, reason: "complaint" });
    const csv = ["email;reason", `${one};hard_bounce`, `${two.toUpperCase()};`, `${one};complaint`, "not-an-address;admin", `${address("x")};bogus`, `${three};unsubscribe`].join("\r\n");
    const job = await client.jobs.importSuppressions.mutate({ fileName: "blocked.csv", csv });
    expect(job).toMatchObject({ type: "IMPORT_SUPPRESSIONS", progress: { rowsTotal: 6, rowsDone: 0 } });
    await deliver(queueNames.low, [{ jobId: job.id, type: "IMPORT_SUPPRESSIONS", tenantId: t.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const done = await client.jobs.get.query({ id: job.id });
    expect(done).toMatchObject({ status: "succeeded", progress: { rowsTotal: 6, rowsDone: 6, added: 2, existing: 2, invalid: 2, errorCount: 2 } });
    expect((done.progress as { rowErrors: Array<{ line: number; message: string }> }).rowErrors.map((e) => e.line)).toEqual([5, 6]);
    // A redelivery changes nothing.
    await deliver(queueNames.low, [{ jobId: job.id, type: "IMPORT_SUPPRESSIONS", tenantId: t.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const reasons = Object.fromEntries((await client.suppressions.list.query({})).items.map((i) => [i.address, i.reason]));
    expect(reasons).toEqual({ [one]: "hard_bounce", [two]: "admin", [three]: "complaint" });

    const campaign = await client.campaigns.create.mutate({ name: "Later" });
    const imported = await client.jobs.importLeads.mutate({ fileName: "leads.csv", csv: `email\n${one}\n${address("fresh")}` });
    await deliver(queueNames.low, [{ jobId: imported.id, type: "IMPORT_LEADS", tenantId: t.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const leads = (await client.leads.list.query({})).items;
    expect(leads).toHaveLength(2);
    expect(await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: leads.map((l) => l.id) })).toEqual({ enrolled: 1, skipped: 1 });
  }, 60_000);

  it("with UNSUBSCRIBE_MAILTO set, List-Unsubscribe also names the mailto, after the one-click URL", async () => {
    const t = await createTenant();
    const worker = clockedWorker(shiftedClock(monday), { UNSUBSCRIBE_MAILTO: "unsubscribe@edp.test" });
    const box = await sendingMailbox(t.admin.token);
    const email = await queueEmail(t.admin.token, box.id, {}, worker.client(t.admin.token));
    await worker.deliver("JOBS_HIGH", queueNames.high);
    const lead = await trpcClient(t.admin.token, { batch: false }).leads.get.query({ id: email.leadId });
    const [sent] = await emailsTo(lead.email);
    expect(sent?.headers?.["List-Unsubscribe"]).toMatch(/^<https:\/\/edp\.test\/v1\/unsubscribe\?token=[^>]+>, <mailto:unsubscribe@edp\.test\?subject=unsubscribe%20[^>]+>$/);
    expect(sent?.headers?.["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
  });

  it("members cannot read or change the list", async () => {
    const t = await createTenant();
    const member = trpcClient(t.member.token, { batch: false });
    await expectCode(member.suppressions.list.query({}), "FORBIDDEN");
    await expectCode(member.suppressions.add.mutate({ address: address("m") }), "FORBIDDEN");
    await expectCode(member.jobs.importSuppressions.mutate({ fileName: "x.csv", csv: "email\nx@example.test" }), "FORBIDDEN");
  });
});
