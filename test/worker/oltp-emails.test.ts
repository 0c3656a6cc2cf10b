
import { describe, expect, it } from "vitest";
import { cronTasks, testServices } from "../support/runtime";
import { createTenant } from "../support/factories";
import { campaignWithSteps, expectCode, fakeEmail, mailboxFor, rejection } from "../support/oltp";
import { commitJobsWithoutSending, ledgerRow } from "../support/jobs";
import { asRole } from "../support/lifecycle";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { request, trpcClient } from "../support/worker";

async function sendingSetup() {
  const tenant = await createTenant();
  const { mailbox } = await mailboxFor(tenant.admin.token);
  const client = trpcClient(tenant.admin.token, { batch: false });
  const lead = await client.leads.create.mutate({ email: fakeEmail() });
  return { tenant, mailbox, lead, client };
}

describe("email metadata", () => {
  it("create records metadata and its queued event in one round trip; status is the system's, not the caller's", async () => {
    const { tenant, mailbox, lead, client } = await sendingSetup();
    const campaign = await campaignWithSteps(tenant.admin.token, 1);
    // A draft campaign sends nothing (emails under it are refused): this one has started.
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await resetRoundTrips();
    const email = await client.emails.create.mutate({
      leadId: lead.id,
      mailboxId: mailbox.id,
      campaignId: campaign.id,
      subject: "Quick question",
      contentStorageKey: "content/abc",
      ...({ status: "delivered", tenantId: crypto.randomUUID(), id: crypto.randomUUID() } as object),
    });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(email).toMatchObject({ status: "queued", tenantId: tenant.id, campaignId: campaign.id, contentStorageKey: "content/abc" });
    expect(email.unsubscribeToken).toMatch(/^[\w-]+\.[\w-]+$/);
    await resetRoundTrips();
    const full = await client.emails.get.query({ id: email.id });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(full.events.map((e) => e.type)).toEqual(["queued"]);
  });

  it("emails, their events and ledger rows have time-ordered ids (UUIDv7): the service's and the database default's alike", async () => {
    const { tenant, mailbox, lead, client } = await sendingSetup();
    const campaign = await campaignWithSteps(tenant.admin.token, 1);
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    const create = () => client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, campaignId: campaign.id, subject: "Hi", contentStorageKey: "content/abc" });
    const first = await create();
    const second = await create();
    // The first 48 bits are milliseconds of Unix time; the version nibble is 7 and the variant 10xx.
    const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const millisOf = (id: string) => Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16);
    expect(first.id).toMatch(v7);
    // Ordered as created, so a batch's keys sit together in the id index.
    expect(second.id > first.id).toBe(true);
    const [events = [], jobs = []] = await asRole(
      "oltp",
      "system",
      (sql) => [sql`select id, occurred_at from email_events where email_id = ${first.id}`, sql`select uuid_v7() as id, clock_timestamp() as at`],
      tenant.id,
    );
    // email_events.id comes from the column default, uuid_v7() (drizzle/oltp/0029): its time is the row's.
    expect(events).toHaveLength(1);
    expect(String(events[0]!.id)).toMatch(v7);
    expect(Math.abs(millisOf(String(events[0]!.id)) - new Date(String(events[0]!.occurred_at)).getTime())).toBeLessThan(5_000);
    expect(String(jobs[0]!.id)).toMatch(v7);
    expect(Math.abs(millisOf(String(jobs[0]!.id)) - new Date(String(jobs[0]!.at)).getTime())).toBeLessThan(5_000);
    const [message] = await commitJobsWithoutSending(tenant.id, tenant.admin.id, [{ type: "NOOP", payload: {} }]);
    expect(message!.jobId).toMatch(v7);
    expect(await ledgerRow(message!.jobId)).toMatchObject({ id: message!.jobId });
  });

  it("refuses another tenant's lead, mailbox or campaign as NOT_FOUND or CONFLICT, and writes nothing", async () => {
    const { lead, mailbox, client } = await sendingSetup();
    const other = await sendingSetup();
    const base = { subject: "s", contentStorageKey: "k" };
    await expectCode(client.emails.create.mutate({ ...base, leadId: other.lead.id, mailboxId: mailbox.id }), "NOT_FOUND");
    await expectCode(client.emails.create.mutate({ ...base, leadId: lead.id, mailboxId: other.mailbox.id }), "NOT_FOUND");
    const foreignCampaign = await campaignWithSteps(other.tenant.admin.token, 0);
    const refused = await rejection(client.emails.create.mutate({ ...base, leadId: lead.id, mailboxId: mailbox.id, campaignId: foreignCampaign.id }));
    expect(refused.httpStatus).toBeLessThan(500);
    expect((await client.emails.list.query({})).items).toEqual([]);
  });

  it("events advance the status only forward, stamp their time once, and a bounce suppresses the lead", async () => {
    const { lead, mailbox, client } = await sendingSetup();
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s", contentStorageKey: "k" });
    const record = (type: "sent" | "delivered" | "opened" | "replied" | "bounced") =>
      client.emails.recordEvent.mutate({ emailId: email.id, type, providerMessageId: "pm-1" });
    expect(await record("sent")).toMatchObject({ status: "sent", providerMessageId: "pm-1" });
    expect((await record("replied")).status).toBe("replied");
    const late = await record("opened");
    expect(late.status).toBe("replied");
    expect(late.openedAt).not.toBeNull();
    expect((await client.emails.get.query({ id: email.id })).events.map((e) => e.type)).toEqual(["queued", "sent", "replied", "opened"]);

    const second = await client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s2", contentStorageKey: "k2" });
    expect((await client.emails.recordEvent.mutate({ emailId: second.id, type: "bounced" })).status).toBe("bounced");
    expect((await client.leads.get.query({ id: lead.id })).bouncedAt).not.toBeNull();
    const refused = await rejection(client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s3", contentStorageKey: "k3" }));
    expect(refused).toMatchObject({ code: "CONFLICT", details: { lead: "bounced" } });
    expect((await client.emails.list.query({ status: "bounced" })).items.map((e) => e.id)).toEqual([second.id]);
    expect((await client.emails.list.query({ leadId: lead.id })).items).toHaveLength(2);
  });
});

describe("unsubscribe by signed link", () => {
  it("needs no login, unsubscribes once, stops enrolments, and a second use changes nothing", async () => {
    const { tenant, lead, mailbox, client } = await sendingSetup();
    const campaign = await campaignWithSteps(tenant.admin.token, 1);
    await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [lead.id] });
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s", contentStorageKey: "k" });
    const url = `/v1/unsubscribe?token=${email.unsubscribeToken}`;

    const page = await request(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('method="post"');
    expect((await client.leads.get.query({ id: lead.id })).unsubscribedAt).toBeNull();

    const first = await request(url, { method: "POST", body: "List-Unsubscribe=One-Click", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ unsubscribed: true, alreadyUnsubscribed: false });
    const again = await request(url, { method: "POST" });
    expect(await again.json()).toEqual({ unsubscribed: true, alreadyUnsubscribed: true });

    const stored = await client.leads.get.query({ id: lead.id });
    expect(stored.unsubscribedAt).not.toBeNull();
    const events = (await client.emails.get.query({ id: email.id })).events.map((e) => e.type);
    expect(events.filter((t) => t === "unsubscribed")).toHaveLength(1);
    // The list maps its own rows: an unsubscribed lead's time reads as get reads it.
    expect((await client.leads.list.query({ campaignId: campaign.id, suppressed: true })).items).toEqual([stored]);
    await expectCode(client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s", contentStorageKey: "k" }), "CONFLICT");
    const other = await client.campaigns.create.mutate({ name: "Later" });
    expect(await client.campaigns.enrolLeads.mutate({ id: other.id, leadIds: [lead.id] })).toEqual({ enrolled: 0, skipped: 1 });
  });

  it("a tampered, truncated or missing token answers 400 and unsubscribes nobody", async () => {
    const { lead, mailbox, client } = await sendingSetup();
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "s", contentStorageKey: "k" });
    const [payload, signature] = email.unsubscribeToken.split(".");
    const otherLead = await client.leads.create.mutate({ email: fakeEmail() });
    const forgedPayload = btoa(`${email.tenantId}.${otherLead.id}.${email.id}`).replaceAll("=", "");
    for (const token of [`${forgedPayload}.${signature}`, `${payload}.${signature!.slice(0, -2)}`, payload!, ""]) {
      const response = await request(`/v1/unsubscribe?token=${encodeURIComponent(token)}`, { method: "POST" });
      expect(response.status, token).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("BAD_REQUEST");
    }
    expect((await client.leads.get.query({ id: otherLead.id })).unsubscribedAt).toBeNull();
    expect((await client.leads.get.query({ id: lead.id })).unsubscribedAt).toBeNull();
  });
});

describe("email event retention", () => {
  it("the pruning cron deletes events past retention in every tenant and keeps recent ones", async () => {
    const a = await sendingSetup();
    const b = await sendingSetup();
    const old = new Date(Date.now() - 200 * 86_400_000);
    const emails = [];
    for (const setup of [a, b]) {
      const email = await setup.client.emails.create.mutate({ leadId: setup.lead.id, mailboxId: setup.mailbox.id, subject: "s", contentStorageKey: "k" });
      await setup.client.emails.recordEvent.mutate({ emailId: email.id, type: "sent", occurredAt: old.toISOString() });
      emails.push({ setup, email });
    }
    // The task as the pruning trigger runs it, without the other tiers' tasks of the same trigger.
    const task = cronTasks.pruning.find((t) => t.name === "oltp.pruneEmailEvents");
    await task!.run(testServices());
    for (const { setup, email } of emails) {
      const full = await setup.client.emails.get.query({ id: email.id });
      expect(full.events.map((e) => e.type)).toEqual(["queued"]);
      expect(full.sentAt).not.toBeNull();
    }
  });
});
