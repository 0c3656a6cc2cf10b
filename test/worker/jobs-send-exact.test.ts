// What reaches the provider and when (issue 18, Sending): attachments and stored headers, campaigns that may not
// send, held emails released by resume, and an email whose SEND_EMAIL job dies.
import { beforeAll, describe, expect, it } from "vitest";
import { outgoingHeaders } from "../../src/platform/email";
import { createTenant, type TestTenant } from "../support/factories";
import { asOltpSystem, deliver, dueInSeconds, ledgerRow, sendingMailbox, waitFor } from "../support/jobs";
import { emailsTo, setEmailMode } from "../support/notifications";
import { fakeEmail, rejection } from "../support/oltp";
import { queueNames } from "../support/runtime";
import { trpcClient } from "../support/worker";

const settled = (id: string, timeoutMs = 30_000) =>
  waitFor(async () => {
    const row = await ledgerRow(id);
    return row && ["succeeded", "failed", "dead"].includes(String(row.status)) ? row : undefined;
  }, timeoutMs);

const heldBy = (id: string, reason: string) =>
  waitFor(async () => {
    const row = await ledgerRow(id);
    return row?.status === "pending" && row.last_error === reason ? row : undefined;
  }, 30_000);

/** Bytes no text encoding survives unchanged: every value 0-255, as in a PDF. */
const pdfBytes = Uint8Array.from({ length: 3000 }, (_, i) => (i * 37 + 11) % 256);
const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

async function campaignWithSteps(client: ReturnType<typeof trpcClient>) {
  const campaign = await client.campaigns.create.mutate({ name: "Exact", sendDays: [0, 1, 2, 3, 4, 5, 6], windowStartMinute: 0, windowEndMinute: 1440 });
  await client.campaigns.setSteps.mutate({ id: campaign.id, steps: [{ variants: [{ label: "A", subject: "Hi", text: "Hello" }] }] });
  return campaign;
}

describe("SEND_EMAIL: what reaches the provider", () => {
  let a: TestTenant;
  let client: ReturnType<typeof trpcClient>;
  /** One mailbox for the suite: a tenant has a handful. */
  let box: { id: string };
  beforeAll(async () => {
    a = await createTenant();
    client = trpcClient(a.admin.token, { batch: false });
    box = await sendingMailbox(a.admin.token, { dailyLimit: 100, warmupEnabled: false });
  });

  it("an email's attachments (byte for byte) and its stored headers reach the provider", async () => {
    const address = fakeEmail();
    const lead = await client.leads.create.mutate({ email: address });
    const email = await client.emails.create.mutate({
      leadId: lead.id,
      mailboxId: box.id,
      subject: "Your report",
      body: { text: "Attached.", html: "<p>Attached.</p>", headers: { "X-Campaign-Ref": "q3-report", "Reply-To": "desk@example.com" } },
      attachments: [
        { filename: "report.pdf", mimeType: "application/pdf", content: base64(pdfBytes) },
        { filename: "note.txt", mimeType: "text/plain", content: base64(new TextEncoder().encode("plain note")), disposition: "inline" },
      ],
    });
    expect(await settled(email.id)).toMatchObject({ status: "succeeded" });
    const [received, ...more] = await emailsTo(address);
    expect(more).toEqual([]);
    expect(received!.headers).toMatchObject({ "X-Campaign-Ref": "q3-report", "Reply-To": "desk@example.com" });
    expect(received!.attachments).toEqual([
      { filename: "report.pdf", contentType: "application/pdf", disposition: "attachment", content: base64(pdfBytes) },
      { filename: "note.txt", contentType: "text/plain", disposition: "inline", content: base64(new TextEncoder().encode("plain note")) },
    ]);
  });

  it("an email under a draft or a completed campaign is refused at create with CONFLICT naming the status; nothing is queued", async () => {
    const draft = await campaignWithSteps(client);
    const completed = await campaignWithSteps(client);
    await client.campaigns.transition.mutate({ id: completed.id, action: "start" });
    await client.campaigns.transition.mutate({ id: completed.id, action: "complete" });
    for (const [campaign, status] of [
      [draft, "draft"],
      [completed, "completed"],
    ] as const) {
      const lead = await client.leads.create.mutate({ email: fakeEmail() });
      const refused = await rejection(
        client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, campaignId: campaign.id, subject: "No", body: { text: "No" } }),
      );
      expect(refused).toMatchObject({ code: "CONFLICT", httpStatus: 409, details: { campaign: status } });
      const listed = await client.emails.list.query({ leadId: lead.id, limit: 10 });
      expect(listed.items).toEqual([]);
    }
  });

  it("after campaigns.resume the campaign's held emails go out in the next delivery, not after their deferral", async () => {
    const campaign = await campaignWithSteps(client);
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await client.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
    const address = fakeEmail();
    const lead = await client.leads.create.mutate({ email: address });
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, campaignId: campaign.id, subject: "Held", body: { text: "Held" } });
    await heldBy(email.id, "The campaign is paused");
    expect(await dueInSeconds(email.id)).toBeGreaterThan(60);

    await client.campaigns.transition.mutate({ id: campaign.id, action: "resume" });
    expect(await settled(email.id, 20_000)).toMatchObject({ status: "succeeded" });
    expect((await client.emails.get.query({ id: email.id })).status).toBe("sent");
    expect(await emailsTo(address)).toHaveLength(1);
  });

  it("an email whose SEND_EMAIL job runs out of attempts becomes failed, with the last error among its events", async () => {
    const address = fakeEmail();
    // The provider refuses the request (400): not a bounce, not an outage, so each attempt counts.
    await setEmailMode(address, "refuse");
    const lead = await client.leads.create.mutate({ email: address });
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, subject: "Refused", body: { text: "Refused" } });
    await waitFor(async () => {
      const row = await ledgerRow(email.id);
      return row?.status === "pending" && Number(row.attempts) >= 1 ? row : undefined;
    });
    // Its last attempt, now rather than after the backoff.
    await asOltpSystem((sql) => [sql`update jobs set attempts = max_attempts - 1 where id = ${email.id} and status = 'pending'`]);
    await deliver(queueNames.high, [{ jobId: email.id, type: "SEND_EMAIL", tenantId: a.id, payload: { emailId: email.id }, enqueuedAt: new Date().toISOString() }]);
    expect(await settled(email.id)).toMatchObject({ status: "dead" });
    const got = await client.emails.get.query({ id: email.id });
    expect(got.status).toBe("failed");
    expect(got.failedAt).not.toBeNull();
    expect(got.events.find((e) => e.type === "failed")?.details).toMatchObject({ reason: expect.stringContaining("400") });
    expect(await emailsTo(address)).toEqual([]);
  });

  it("an email whose content a caller keeps elsewhere is left as it is when SEND_EMAIL refuses it", async () => {
    const lead = await client.leads.create.mutate({ email: fakeEmail() });
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, subject: "Elsewhere", contentStorageKey: "elsewhere/body" });
    expect(await settled(email.id)).toMatchObject({ status: "failed" });
    expect((await client.emails.get.query({ id: email.id })).status).toBe("queued");
  });

  it("an email whose SEND_EMAIL job is dead-lettered becomes failed, with the job's last error as the reason", async () => {
    const campaign = await campaignWithSteps(client);
    await client.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await client.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
    const lead = await client.leads.create.mutate({ email: fakeEmail() });
    const email = await client.emails.create.mutate({ leadId: lead.id, mailboxId: box.id, campaignId: campaign.id, subject: "Dies", body: { text: "Dies" } });
    await heldBy(email.id, "The campaign is paused");

    const message = { jobId: email.id, type: "SEND_EMAIL" as const, tenantId: a.id, payload: { emailId: email.id }, enqueuedAt: new Date().toISOString() };
    expect(await deliver(queueNames.dead, [message])).toMatchObject({ acked: 1, retries: [] });
    expect(await ledgerRow(email.id)).toMatchObject({ status: "dead" });
    const got = await client.emails.get.query({ id: email.id });
    expect(got.status).toBe("failed");
    expect(got.events.find((e) => e.type === "failed")?.details).toMatchObject({ reason: "The campaign is paused" });
    // A redelivered dead letter changes nothing.
    await deliver(queueNames.dead, [message]);
    expect((await client.emails.get.query({ id: email.id })).events.filter((e) => e.type === "failed")).toHaveLength(1);
  });
});

describe("outgoing headers", () => {
  it("are assembled in one place: stored headers first, a generated header replaces a stored one of the same name whatever its case", () => {
    const stored = { "X-Campaign-Ref": "q3", "list-unsubscribe": "<mailto:forged@example.com>", "Message-ID": "<forged@example.com>" };
    const generated = { "List-Unsubscribe": "<https://edp.test/v1/unsubscribe?t=abc>", "Message-ID": "<e1@mail.example.com>" };
    expect(outgoingHeaders(stored, generated)).toEqual({
      "X-Campaign-Ref": "q3",
      "List-Unsubscribe": "<https://edp.test/v1/unsubscribe?t=abc>",
      "Message-ID": "<e1@mail.example.com>",
    });
    expect(outgoingHeaders({})).toBeUndefined();
  });
});
