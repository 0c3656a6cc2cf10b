// Inbound facts at the edge, end to end: signed provider webhooks, a MIME reply to the email handler, opens and clicks.
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { derToP1363, verifySendgridSignature } from "../../src/tiers/jobs/inbound/webhooks";
import { clockedWorker, settableClock } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { deliver, sendingMailbox } from "../support/jobs";
import { emailsTo } from "../support/notifications";
import { aggregate, noonOf, utcDay } from "../support/olap";
import { fakeEmail } from "../support/oltp";
import { queueNames } from "../support/runtime";
import { failingBinding, setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

const base = "https://edp.test";
const webhookSecret = `whsec_${btoa("inbound-test-secret-0123456789abcdef")}`;

/** A SendGrid-style key pair: SendGrid keeps the private key and shows the public one as base64 SubjectPublicKeyInfo. */
async function sendgridKeys() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", pair.publicKey)) as ArrayBuffer);
  return { privateKey: pair.privateKey, publicKey: btoa(String.fromCharCode(...spki)) };
}

/** WebCrypto signs r‖s; SendGrid sends the signature DER-encoded, as Go's and OpenSSL's ECDSA do. */
function p1363ToDer(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let value = bytes;
    while (value.length > 1 && value[0] === 0 && value[1]! < 0x80) value = value.subarray(1);
    if (value[0]! >= 0x80) value = Uint8Array.from([0, ...value]);
    return [0x02, value.length, ...value];
  };
  const body = [...integer(raw.subarray(0, 32)), ...integer(raw.subarray(32))];
  return Uint8Array.from([0x30, body.length, ...body]);
}

async function sendgridSignature(privateKey: CryptoKey, timestamp: string, body: string) {
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(timestamp + body)));
  return btoa(String.fromCharCode(...p1363ToDer(raw)));
}

interface Setup {
  tenant: TestTenant;
  worker: ReturnType<typeof clockedWorker>;
  clock: ReturnType<typeof settableClock>;
  campaignId: string;
  leadId: string;
  leadEmail: string;
  emailId: string;
  messageId: string;
  sentHtml: string | undefined;
}

/**
 * A campaign (tracked or not) with one enrolled lead, whose first email is created through emails.create and
 * sent by SEND_EMAIL to the provider stand-in, at a clock the test sets. The Worker knows the webhook secrets.
 */
async function sentCampaignEmail(options: { track?: boolean; bindings?: Record<string, unknown> } = {}): Promise<Setup> {
  const tenant = await createTenant();
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const mailbox = await sendingMailbox(tenant.admin.token, { warmupEnabled: false });
  const campaign = await admin.campaigns.create.mutate({
    name: `Inbound ${crypto.randomUUID().slice(0, 6)}`,
    sendDays: [0, 1, 2, 3, 4, 5, 6],
    windowStartMinute: 0,
    windowEndMinute: 1440,
    trackEngagement: options.track ?? false,
  });
  const variant = { label: "A", subject: "Hello", text: "Hi there" };
  await admin.campaigns.setSteps.mutate({ id: campaign.id, steps: [{ variants: [variant] }, { delayDays: 2, variants: [{ ...variant, subject: "" }] }] });
  await admin.campaigns.setMailboxes.mutate({ id: campaign.id, mailboxIds: [mailbox.id] });
  const leadEmail = fakeEmail();
  const lead = await admin.leads.create.mutate({ email: leadEmail });
  await admin.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [lead.id] });
  // A draft campaign takes no email: the campaign is started (its own sequencer ticks are not run here).
  await admin.campaigns.transition.mutate({ id: campaign.id, action: "start" });

  // Tomorrow noon: after the database's own now(), so the email's `queued` event (stamped by it) sorts first.
  const clock = settableClock(noonOf(1));
  const worker = clockedWorker(clock, { PUBLIC_BASE_URL: base, WEBHOOK_SIGNING_SECRET: webhookSecret, ...options.bindings });
  const html = `<html><body><p>See <a href="https://shop.example/pricing?plan=pro&amp;ref=mail">our prices</a> or <a href="mailto:sales@example.com">write</a>.</p></body></html>`;
  const email = await worker.client(tenant.admin.token).emails.create.mutate({
    leadId: lead.id,
    mailboxId: mailbox.id,
    campaignId: campaign.id,
    subject: "Hello",
    body: { text: "See our prices", html, headers: {} },
  });
  while ((await worker.deliver("JOBS_HIGH", queueNames.high)) > 0);
  // What the send enqueued besides (content indexing) runs now: the normal queue holds only the test's facts after this.
  await worker.deliver("JOBS_NORMAL", queueNames.normal);
  // What comes back comes a minute after the send.
  clock.advance(60_000);
  const sent = (await emailsTo(leadEmail)).find((e) => e.idempotencyKey === email.id);
  expect(sent, "SEND_EMAIL sent the email").toBeDefined();
  return { tenant, worker, clock, campaignId: campaign.id, leadId: lead.id, leadEmail, emailId: email.id, messageId: sent!.headers?.["Message-ID"] ?? "", sentHtml: sent!.html };
}

/** The email's events as its tenant's admin reads them. */
const eventsOf = async (setup: Setup) => (await trpcClient(setup.tenant.admin.token, { batch: false }).emails.get.query({ id: setup.emailId })).events;

function standardWebhook(setup: Setup, events: unknown[], id = `msg_${crypto.randomUUID()}`) {
  const body = JSON.stringify({ events });
  const at = setup.clock.now();
  return {
    body,
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": new Webhook(webhookSecret).sign(id, at, body) },
  };
}

const post = (setup: Setup, path: string, request: { body: string; headers: Record<string, string> }) =>
  setup.worker.request(path, { method: "POST", body: request.body, headers: request.headers });

describe("inbound facts at the edge", () => {
  it("every sent email carries its stable Message-ID, <email id@sending domain>", async () => {
    const setup = await sentCampaignEmail();
    expect(setup.messageId).toMatch(new RegExp(`^<${setup.emailId}@mail-[0-9a-f]{8}\\.example\\.com>$`));
  });

  it("a signed bounce webhook, sent twice, gives one bounce event, a suppressed lead and a stopped sequence", async () => {
    const setup = await sentCampaignEmail();
    const webhook = standardWebhook(setup, [{ id: "evt-bounce-1", type: "bounced", messageId: setup.messageId }]);
    for (let i = 0; i < 2; i++) {
      const response = await post(setup, "/v1/webhooks/standard", webhook);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ accepted: 1, ignored: 0 });
    }
    // Nothing is written by the route: the facts wait on the queue until the consumer runs.
    expect((await eventsOf(setup)).map((e) => e.type)).toEqual(["queued", "sent"]);
    expect(await setup.worker.deliver("JOBS_NORMAL", queueNames.normal)).toBe(2);

    const events = await eventsOf(setup);
    expect(events.filter((e) => e.type === "bounced")).toHaveLength(1);
    const admin = trpcClient(setup.tenant.admin.token, { batch: false });
    expect((await admin.emails.get.query({ id: setup.emailId })).status).toBe("bounced");
    expect((await admin.leads.get.query({ id: setup.leadId })).bouncedAt).not.toBeNull();
    const campaign = await admin.campaigns.get.query({ id: setup.campaignId });
    expect(campaign.progress.leads.stopped).toBe(1);
    expect(campaign.progress.reasons).toEqual({ bounced: 1 });
    // A later delivery of the same event, after the first landed, changes nothing either.
    await post(setup, "/v1/webhooks/standard", standardWebhook(setup, [{ id: "evt-bounce-1", type: "bounced", emailId: setup.emailId }]));
    await setup.worker.deliver("JOBS_NORMAL", queueNames.normal);
    expect((await eventsOf(setup)).filter((e) => e.type === "bounced")).toHaveLength(1);
  });

  it("a bad signature or a stale timestamp is 401 and queues and records nothing", async () => {
    const setup = await sentCampaignEmail();
    const good = standardWebhook(setup, [{ id: "evt-forged", type: "bounced", emailId: setup.emailId }]);
    const tampered = { ...good, body: good.body.replace("bounced", "replied") };
    const wrongKey = { ...good, headers: { ...good.headers, "webhook-signature": new Webhook(`whsec_${btoa("another-secret-0123456789abcdefgh")}`).sign(good.headers["webhook-id"], setup.clock.now(), good.body) } };
    setup.clock.advance(301_000);
    const stale = good;
    const unsigned = { ...good, headers: { "content-type": "application/json" } };
    for (const request of [tampered, wrongKey, stale, unsigned]) {
      const response = await post(setup, "/v1/webhooks/standard", request);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("WEBHOOK_SIGNATURE_INVALID");
    }
    expect(setup.worker.held.JOBS_NORMAL.held).toHaveLength(0);
    expect(await setup.worker.deliver("JOBS_NORMAL", queueNames.normal)).toBe(0);
    expect((await eventsOf(setup)).map((e) => e.type)).toEqual(["queued", "sent"]);
    // An unknown provider is no route.
    expect((await post(setup, "/v1/webhooks/nosuch", good)).status).toBe(404);
  });

  it("SendGrid's signed event batch (ECDSA over timestamp + body) is verified and mapped; a blocked bounce and a processed event record nothing", async () => {
    const keys = await sendgridKeys();
    const setup = await sentCampaignEmail({ bindings: { SENDGRID_WEBHOOK_PUBLIC_KEY: keys.publicKey } });
    const timestamp = String(Math.floor(setup.clock.now().getTime() / 1000));
    const at = Number(timestamp);
    const body = JSON.stringify([
      { email: setup.leadEmail, timestamp: at, event: "processed", sg_event_id: "sg-1", "smtp-id": setup.messageId },
      { email: setup.leadEmail, timestamp: at, event: "bounce", type: "blocked", sg_event_id: "sg-2", "smtp-id": setup.messageId },
      { email: setup.leadEmail, timestamp: at, event: "delivered", sg_event_id: "sg-3", "smtp-id": setup.messageId },
      { email: setup.leadEmail, timestamp: at + 60, event: "open", sg_event_id: "sg-4", email_id: setup.emailId },
    ]);
    const signature = await sendgridSignature(keys.privateKey, timestamp, body);
    const headers = { "content-type": "application/json", "x-twilio-email-event-webhook-signature": signature, "x-twilio-email-event-webhook-timestamp": timestamp };
    const forged = await post(setup, "/v1/webhooks/sendgrid", { body: body.replace("delivered", "spamreport"), headers });
    expect(forged.status).toBe(401);
    const response = await post(setup, "/v1/webhooks/sendgrid", { body, headers });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 2, ignored: 2 });
    await setup.worker.deliver("JOBS_NORMAL", queueNames.normal);
    const email = await trpcClient(setup.tenant.admin.token, { batch: false }).emails.get.query({ id: setup.emailId });
    expect(email.events.map((e) => e.type)).toEqual(["queued", "sent", "delivered", "opened"]);
    expect(email.status).toBe("opened");
    expect(new Date(email.openedAt!).getTime()).toBe((at + 60) * 1000);
  });

  it("SendGrid's own published test vector verifies, and the same signature over another body does not", async () => {
    const publicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const signature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
    const payload = JSON.stringify({ category: "example_payload", event: "test_event", message_id: "message_id" });
    expect(await verifySendgridSignature(publicKey, signature, "1588788367", payload)).toBe(true);
    expect(await verifySendgridSignature(publicKey, signature, "1588788368", payload)).toBe(false);
    expect(derToP1363(new Uint8Array([0x30, 0x02, 0x05, 0x00]))).toBeNull();
  });

  it("with OLTP down the webhook still answers 200, and the event lands once OLTP is back", async () => {
    const setup = await sentCampaignEmail();
    await setDatabaseFault("oltp", "down");
    try {
      const response = await post(setup, "/v1/webhooks/standard", standardWebhook(setup, [{ id: "evt-outage", type: "delivered", messageId: setup.messageId }]));
      expect(response.status).toBe(200);
      // The consumer cannot record it: the message is put back for later, not dropped.
      const [fact] = setup.worker.held.JOBS_NORMAL.held;
      await setup.worker.deliver("JOBS_NORMAL", queueNames.normal);
      expect(setup.worker.held.JOBS_NORMAL.later).toHaveLength(1);
      // Even a delivery whose queue retries are used up is put back as a fresh message, not retried into the dead-letter queue.
      const exhausted = await deliver(queueNames.normal, [fact!], 6);
      expect(exhausted).toEqual({ acked: 1, retries: [] });
    } finally {
      await setDatabaseFault("oltp", "none");
    }
    setup.clock.advance(3_600_000);
    expect(await setup.worker.deliver("JOBS_NORMAL", queueNames.normal)).toBe(1);
    expect((await eventsOf(setup)).map((e) => e.type)).toEqual(["queued", "sent", "delivered"]);
  });

  it("a queue that refuses the facts makes the webhook 503, so the provider sends it again", async () => {
    const setup = await sentCampaignEmail();
    const down = clockedWorker(setup.clock, { WEBHOOK_SIGNING_SECRET: webhookSecret, JOBS_NORMAL: failingBinding(env.JOBS_NORMAL, "queue") });
    const response = await down.request("/v1/webhooks/standard", { method: "POST", ...standardWebhook(setup, [{ id: "evt-503", type: "delivered", emailId: setup.emailId }]) });
    expect(response.status).toBe(503);
  });

  it("a MIME reply handed to the email handler stops the lead's sequence and shows in leadEngagement after aggregation", async () => {
    const corpus = inject("contentCorpus").find((f) => f.folder === "spamassassin-nice" && f.name === "002.eml");
    const setup = await sentCampaignEmail();
    // A real reply from the shared corpus (../shared/corpus), answering our email: its In-Reply-To names our Message-ID,
    // its References the thread. Where the corpus is absent (a checkout without ../shared), a multipart reply written
    // out here in full, as a mail client would send it, stands in.
    const original = corpus
      ? new TextDecoder("latin1").decode(Uint8Array.from(atob(corpus.base64), (c) => c.charCodeAt(0)))
      : [
          "Return-Path: <lead@client.example>",
          "Received: from mail.client.example (mail.client.example [203.0.113.7]) by mx.reply.example; Mon, 30 Nov 2026 12:00:00 +0000",
          "From: A Lead <lead@client.example>",
          "To: sales@reply.example",
          "Subject: Re: Hello",
          "Date: Mon, 30 Nov 2026 12:00:00 +0000",
          "Message-Id: <placeholder@client.example>",
          "In-Reply-To: <placeholder@reply.example>",
          "References: <older@reply.example>",
          "MIME-Version: 1.0",
          'Content-Type: multipart/alternative; boundary="b1"',
          "",
          "--b1",
          "Content-Type: text/plain; charset=utf-8",
          "Content-Transfer-Encoding: quoted-printable",
          "",
          "Thanks, let's talk next week.=0A=0A> Hi there",
          "--b1",
          "Content-Type: text/html; charset=utf-8",
          "",
          "<p>Thanks, let's talk next week.</p><blockquote>Hi there</blockquote>",
          "--b1--",
          "",
        ].join("\r\n");
    const raw = original
      .replace(/^Message-Id: .*$/m, `Message-Id: <${crypto.randomUUID()}@client.example>`)
      .replace(/^In-Reply-To: .*$/m, `In-Reply-To: ${setup.messageId}`)
      .replace(/^References: (.*)$/m, `References: $1 ${setup.messageId}`);
    expect(await setup.worker.email(raw, { from: setup.leadEmail, to: "sales@reply.example" })).toEqual({ rejected: undefined });
    // Email Routing redelivers: the same reply again records nothing more.
    await setup.worker.email(raw, { from: setup.leadEmail, to: "sales@reply.example" });
    expect(await setup.worker.deliver("JOBS_NORMAL", queueNames.normal)).toBe(2);

    const admin = trpcClient(setup.tenant.admin.token, { batch: false });
    expect((await eventsOf(setup)).filter((e) => e.type === "replied")).toHaveLength(1);
    const campaign = await admin.campaigns.get.query({ id: setup.campaignId });
    expect(campaign.progress.reasons).toEqual({ replied: 1 });
    await aggregate();
    const engagement = await admin.analytics.leadEngagement.query({ leadId: setup.leadId, from: utcDay(-1), to: utcDay(2) });
    expect(engagement.totals.replied).toBe(1);
    expect(engagement.topLeads[0]).toMatchObject({ leadId: setup.leadId, replied: 1 });
  });

  it("mail that answers none of our emails records nothing", async () => {
    const setup = await sentCampaignEmail();
    const raw = `From: someone@else.example\r\nTo: sales@reply.example\r\nSubject: hello\r\nMessage-ID: <${crypto.randomUUID()}@else.example>\r\nIn-Reply-To: <not-ours@else.example>\r\n\r\nHi\r\n`;
    await setup.worker.email(raw, { from: "someone@else.example", to: "sales@reply.example" });
    expect(setup.worker.held.JOBS_NORMAL.held).toHaveLength(0);
  });

  it("an open and a click of a tracked campaign's email are recorded once each and appear in campaignPerformance; a click token for another URL is refused", async () => {
    const setup = await sentCampaignEmail({ track: true });
    const html = setup.sentHtml ?? "";
    const click = html.match(/href="(https:\/\/edp\.test\/t\/c\/[^"]+)"/)?.[1];
    const pixel = html.match(/src="(https:\/\/edp\.test\/t\/o\/[^"]+\.gif)"/)?.[1];
    expect(click).toBeDefined();
    expect(pixel).toBeDefined();
    expect(html).toContain('href="mailto:sales@example.com"');
    expect(html).not.toContain("shop.example");

    const opened = await setup.worker.request(pixel!);
    expect(opened.status).toBe(200);
    expect(opened.headers.get("content-type")).toBe("image/gif");
    for (let i = 0; i < 2; i++) {
      const followed = await setup.worker.request(click!, { redirect: "manual" });
      expect(followed.status).toBe(302);
      expect(followed.headers.get("location")).toBe("https://shop.example/pricing?plan=pro&ref=mail");
    }

    // The same signature over a payload naming another URL: refused, nothing queued.
    const token = click!.slice(`${base}/t/c/`.length);
    const [payload, signature] = token.split(".");
    const claims = JSON.parse(atob(payload!.replaceAll("-", "+").replaceAll("_", "/"))) as { u: string };
    const forgedPayload = btoa(JSON.stringify({ ...claims, u: "https://evil.example/" })).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
    const queuedBefore = setup.worker.held.JOBS_NORMAL.held.length;
    const forged = await setup.worker.request(`/t/c/${forgedPayload}.${signature}`, { redirect: "manual" });
    expect(forged.status).toBe(403);
    expect(forged.headers.get("location")).toBeNull();
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("LINK_INVALID");
    expect(setup.worker.held.JOBS_NORMAL.held).toHaveLength(queuedBefore);
    // An open token cannot pass for a click.
    expect((await setup.worker.request(`/t/c/${pixel!.slice(`${base}/t/o/`.length, -4)}`, { redirect: "manual" })).status).toBe(403);

    await setup.worker.deliver("JOBS_NORMAL", queueNames.normal);
    const types = (await eventsOf(setup)).map((e) => e.type);
    expect(types.filter((t) => t === "opened")).toHaveLength(1);
    expect(types.filter((t) => t === "clicked")).toHaveLength(1);

    await aggregate();
    const performance = await trpcClient(setup.tenant.member.token, { batch: false }).analytics.campaignPerformance.query({ campaignId: setup.campaignId, from: utcDay(-1), to: utcDay(2) });
    expect(performance.totals).toMatchObject({ sent: 1, opened: 1, clicked: 1 });
  });

  it("an untracked campaign's email goes out with its links as written", async () => {
    const setup = await sentCampaignEmail({ track: false });
    expect(setup.sentHtml).toContain('href="https://shop.example/pricing?plan=pro&amp;ref=mail"');
    expect(setup.sentHtml).not.toContain("/t/");
  });
});
