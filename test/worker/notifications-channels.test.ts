// Email and webhook notifications reach real HTTP stand-ins (scripts/stack/provider-standins.ts); every attempt is in
// the delivery history; failures retry, stop or disable as designed; preferences decide which channels deliver.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { systemClock } from "../../src/platform/clock";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import { clockedWorker } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { asSystem, emailsTo, setEmailMode, sleep, webhookReceiver } from "../support/notifications";
import { queueNames, testServices } from "../support/runtime";
import { setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

const admin = (t: TestTenant) => trpcClient(t.admin.token, { batch: false }).notifications;

async function outboxOf(tenantId: string, notificationId: string) {
  const [rows = []] = await asSystem((sql) => [sql`select * from notification_outbox where notification_id = ${notificationId} order by created_at`], tenantId);
  return rows;
}

/** Runs SEND_NOTIFICATION for one outbox row through the Worker's queue handler, as a queue delivery would. */
async function deliver(tenantId: string, outboxId: string, notificationId: string) {
  const body = testServices().jobs.direct("SEND_NOTIFICATION", tenantId, { outboxId, notificationId }, outboxId).message;
  const batch = createMessageBatch(queueNames.normal, [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

const emailInput = (t: TestTenant, type = "report.ready", title = "Your report is ready") =>
  ({ userId: t.member.id, type, title, message: "It has 3 rows.\n\nSee <b>attached</b> & more.", channel: "email" }) as const;
const createEmail = (t: TestTenant, type?: string, title?: string) => admin(t).create.mutate(emailInput(t, type, title));

/**
 * Failure modes run on a Worker whose queues are held (test/support/clock.ts): the test delivers the job once
 * itself, and a retry is only recorded, never re-sent, so no failing delivery keeps retrying (and touching the
 * notifications database) into later test files.
 */
function heldWorker() {
  const w = clockedWorker(systemClock);
  return {
    create: (t: TestTenant, input: Parameters<ReturnType<typeof admin>["create"]["mutate"]>[0]) => w.client(t.admin.token).notifications.create.mutate(input),
    deliverHeld: () => w.deliver("JOBS_NORMAL", queueNames.normal),
  };
}

describe("email notifications", () => {
  afterEach(() => setDatabaseFault("oltp", "none"));

  it("reach the HTTP email provider once, rendered from the type's template and escaped, with the attempt on record", async () => {
    const t = await createTenant();
    const created = await createEmail(t, "report.ready", "Report <script>x</script>");
    const [row] = await outboxOf(t.id, created.id);
    const sent = await eventually(() => emailsTo(t.member.email), (e) => e.length > 0);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ idempotencyKey: row!.id, to: [t.member.email], subject: "Report <script>x</script>" });
    expect(sent[0]!.html).toContain("Report &lt;script&gt;x&lt;/script&gt;");
    expect(sent[0]!.html).toContain("See &lt;b&gt;attached&lt;/b&gt; &amp; more.");
    expect(sent[0]!.html).not.toContain("<script>");
    expect(sent[0]!.text).toContain("See <b>attached</b> & more.");

    const history = await eventually(() => admin(t).deliveries.query({ id: created.id }), (h) => h.attempts.length > 0);
    expect(history.attempts).toEqual([
      expect.objectContaining({ channel: "email", attempt: 1, outcome: "sent", providerId: `recorded-${row!.id}`, error: null }),
    ]);
    expect(history.pending).toEqual([]);
    // A second delivery of the same message finds nothing to claim.
    await deliver(t.id, String(row!.id), created.id);
    expect(await emailsTo(t.member.email)).toHaveLength(1);
    // The history is the admins': a member of the tenant and an admin of another tenant are refused.
    await expect(trpcClient(t.member.token).notifications.deliveries.query({ id: created.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    const other = await createTenant();
    await expect(admin(other).deliveries.query({ id: created.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("a provider 5xx is a failed attempt that is retried; the retry delivers", async () => {
    const t = await createTenant();
    await setEmailMode(t.member.email, "fail");
    const w = heldWorker();
    const created = await w.create(t, emailInput(t));
    expect(await w.deliverHeld()).toBe(1);
    const failed = await admin(t).deliveries.query({ id: created.id });
    expect(failed.attempts[0]).toMatchObject({ outcome: "failed", attempt: 1 });
    expect(failed.attempts[0]!.error).toMatch(/503/);
    expect(failed.pending).toEqual([expect.objectContaining({ channel: "email", attempts: 1 })]);
    expect(await emailsTo(t.member.email)).toHaveLength(0);

    await setEmailMode(t.member.email, "ok");
    const [row] = await outboxOf(t.id, created.id);
    await deliver(t.id, String(row!.id), created.id);
    const history = await admin(t).deliveries.query({ id: created.id });
    expect(history.attempts.map((a) => [a.outcome, a.attempt])).toEqual([["failed", 1], ["sent", 2]]);
    expect(history.pending).toEqual([]);
    expect(await emailsTo(t.member.email)).toHaveLength(1);
  });

  it("stops after the last attempt, marks the delivery failed and raises one system event per tenant and channel", async () => {
    const t = await createTenant();
    await setEmailMode(t.member.email, "fail");
    const last = notificationsConfig.delivery.maxAttempts;
    for (let i = 0; i < 2; i++) {
      // As if the earlier attempts had been used up (and just enqueued, so neither the queue nor the relay has it).
      const [[row] = []] = await asSystem(
        (sql) => [
          sql`with n as (insert into notifications (tenant_id, user_id, type, title, message, channel)
                         values (${t.id}, ${t.member.id}, 'x', 'x', 'x', 'email') returning id)
              insert into notification_outbox (notification_id, tenant_id, channel, attempts)
              select id, ${t.id}, 'email', ${last - 1} from n returning id, notification_id`,
        ],
        t.id,
      );
      const notificationId = String(row!.notification_id);
      const result = await deliver(t.id, String(row!.id), notificationId);
      expect(result.explicitAcks).toHaveLength(1); // stopped: not retried
      expect(result.retryMessages).toHaveLength(0);
      expect((await outboxOf(t.id, notificationId))[0]).toMatchObject({ status: "failed", attempts: last });
      const history = await admin(t).deliveries.query({ id: notificationId });
      expect(history.attempts).toEqual([expect.objectContaining({ outcome: "failed", attempt: last })]);
      expect(history.pending).toEqual([]);
      // Nothing is left to claim: a redelivery sends nothing and records nothing.
      await deliver(t.id, String(row!.id), notificationId);
      expect((await admin(t).deliveries.query({ id: notificationId })).attempts).toHaveLength(1);
    }
    const events = await trpcClient(t.admin.token).admin.systemEvents.list.query({ eventType: "notification.delivery_failed" });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({ tenantId: t.id, dedupKey: "notifications.delivery_failed:email", occurrences: 2 });
  });

  it("a recipient the provider rejects (422) is not retried", async () => {
    const t = await createTenant();
    await setEmailMode(t.member.email, "reject");
    const w = heldWorker();
    const created = await w.create(t, emailInput(t));
    await w.deliverHeld();
    const history = await admin(t).deliveries.query({ id: created.id });
    expect(history.attempts).toEqual([expect.objectContaining({ outcome: "rejected" })]);
    expect((await outboxOf(t.id, created.id))[0]).toMatchObject({ status: "failed", attempts: 1 });
  });

  it("is created while OLTP is down, and deferred (no attempt used) until the address can be read", async () => {
    const t = await createTenant();
    await setDatabaseFault("oltp", "down");
    const w = heldWorker();
    const created = await w.create(t, emailInput(t));
    const [row] = await outboxOf(t.id, created.id);
    await w.deliverHeld();
    const result = await deliver(t.id, String(row!.id), created.id);
    expect(result.retryMessages).toHaveLength(1); // the queue comes back later
    const deferred = await admin(t).deliveries.query({ id: created.id });
    expect(deferred.attempts.map((a) => [a.outcome, a.attempt])).toEqual([["deferred", 0], ["deferred", 0]]);
    expect(deferred.pending).toEqual([expect.objectContaining({ channel: "email" })]);
    expect(await emailsTo(t.member.email)).toHaveLength(0);
    await setDatabaseFault("oltp", "none");
    await deliver(t.id, String(row!.id), created.id);
    expect(await emailsTo(t.member.email)).toHaveLength(1);
    // The deferrals used no attempt: the one that delivered was the first.
    expect((await outboxOf(t.id, created.id))[0]).toMatchObject({ status: "sent", attempts: 1 });
    const history = await admin(t).deliveries.query({ id: created.id });
    expect(history.attempts.at(-1)).toMatchObject({ outcome: "sent", attempt: 1 });
  });

  it("a tenant-wide email is refused: it would have no single recipient", async () => {
    const t = await createTenant();
    await expect(admin(t).create.mutate({ userId: null, type: "x", title: "x", message: "x", channel: "email" })).rejects.toMatchObject({
      data: { code: "VALIDATION_FAILED" },
    });
  });
});

describe("preferences", () => {
  it("a user opted out of a type on email gets the in-app row and no email; other types still email", async () => {
    const t = await createTenant();
    const member = trpcClient(t.member.token, { batch: false }).notifications;
    await member.preferences.set.mutate({ settings: [{ type: "campaign.digest", channel: "email", enabled: false }] });
    expect((await member.preferences.get.query()).user).toEqual([expect.objectContaining({ type: "campaign.digest", channel: "email", enabled: false })]);

    const optedOut = await createEmail(t, "campaign.digest", "Weekly digest");
    const other = await createEmail(t, "report.ready", "Report");
    // The other type's email arrives; the opted-out one never had a delivery to make.
    const sent = await eventually(() => emailsTo(t.member.email), (e) => e.length > 0);
    await sleep(500);
    expect((await emailsTo(t.member.email)).map((e) => e.subject)).toEqual(["Report"]);
    expect(sent).toHaveLength(1);
    expect(await outboxOf(t.id, optedOut.id)).toEqual([]);
    expect((await outboxOf(t.id, other.id)).length).toBe(1);
    const inbox = await member.list.query({ limit: 10 });
    expect(inbox.items.map((n) => n.id).sort()).toEqual([optedOut.id, other.id].sort());
  });

  it("tenant defaults apply unless the user overrides them; only admins set them", async () => {
    const t = await createTenant();
    const member = trpcClient(t.member.token, { batch: false }).notifications;
    await expect(member.preferences.set.mutate({ tenantDefault: true, settings: [{ type: "*", channel: "email", enabled: false }] })).rejects.toMatchObject({
      data: { code: "FORBIDDEN" },
    });
    await admin(t).preferences.set.mutate({ tenantDefault: true, settings: [{ type: "*", channel: "email", enabled: false }] });
    const off = await createEmail(t, "report.ready");
    expect(await outboxOf(t.id, off.id)).toEqual([]);
    // The member's own setting for this type wins over the tenant's default for every type.
    await member.preferences.set.mutate({ settings: [{ type: "report.ready", channel: "email", enabled: true }] });
    const on = await createEmail(t, "report.ready");
    expect(await outboxOf(t.id, on.id)).toHaveLength(1);
    expect(await eventually(() => emailsTo(t.member.email), (e) => e.length > 0)).toHaveLength(1);
    // Removing the override brings the default back.
    await member.preferences.set.mutate({ settings: [{ type: "report.ready", channel: "email", enabled: null }] });
    const offAgain = await createEmail(t, "report.ready");
    expect(await outboxOf(t.id, offAgain.id)).toEqual([]);
    expect((await member.preferences.get.query()).tenant).toEqual([expect.objectContaining({ type: "*", channel: "email", enabled: false })]);
  });
});

describe("webhooks", () => {
  it("a notification reaches the tenant's endpoint, signed (Standard Webhooks) and verified by the receiver", async () => {
    const t = await createTenant();
    const receiver = webhookReceiver();
    const { endpoint, secret } = await admin(t).webhooks.create.mutate({ url: receiver.url, types: ["deal.won"] });
    expect(secret).toMatch(/^whsec_/);
    await receiver.configure({ secret });
    // The secret is shown once: never listed.
    const listed = await admin(t).webhooks.list.query();
    expect(listed).toEqual([expect.objectContaining({ id: endpoint.id, enabled: true, types: ["deal.won"] })]);
    expect(JSON.stringify(listed)).not.toContain(secret);

    const ignored = await admin(t).create.mutate({ userId: t.member.id, type: "other.type", title: "x", message: "x" });
    const created = await admin(t).create.mutate({ userId: t.member.id, type: "deal.won", title: "Deal won", message: "ACME signed", data: { amount: 10 } });
    const received = await eventually(receiver.received, (r) => r.length > 0);
    expect(received).toHaveLength(1);
    const [row] = await outboxOf(t.id, created.id);
    expect(received[0]).toMatchObject({ verified: true, id: row!.id });
    expect(received[0]!.signature).toMatch(/^v1,/);
    expect(received[0]!.body).toMatchObject({ type: "notification.created", data: { id: created.id, type: "deal.won", title: "Deal won", data: { amount: 10 } } });
    expect(await outboxOf(t.id, ignored.id)).toEqual([]);
    const history = await eventually(() => admin(t).deliveries.query({ id: created.id }), (h) => h.attempts.length > 0);
    expect(history.attempts).toEqual([expect.objectContaining({ channel: "webhook", endpointId: endpoint.id, outcome: "sent" })]);
  });

  it("a receiver that cannot verify the signature refuses it, and the attempt is a failure", async () => {
    const t = await createTenant();
    const receiver = webhookReceiver();
    await admin(t).webhooks.create.mutate({ url: receiver.url });
    await receiver.configure({ secret: `whsec_${btoa("a wrong secret of thirty-two bytes")}` });
    const w = heldWorker();
    const created = await w.create(t, { userId: null, type: "x", title: "x", message: "x" });
    await w.deliverHeld();
    const history = await admin(t).deliveries.query({ id: created.id });
    expect(history.attempts[0]).toMatchObject({ outcome: "failed" });
    expect(history.attempts[0]!.error).toMatch(/401/);
    expect((await receiver.received())[0]).toMatchObject({ verified: false });
  });

  it("a failing receiver is retried, then disabled after repeated failure with one system event; a down receiver shows in the history", async () => {
    const t = await createTenant();
    const receiver = webhookReceiver();
    const { endpoint, secret } = await admin(t).webhooks.create.mutate({ url: receiver.url });
    await receiver.configure({ secret, mode: "fail" });
    const down = await admin(t).webhooks.create.mutate({ url: "http://127.0.0.1:1/unreachable" });

    const w = heldWorker();
    const created = await w.create(t, { userId: null, type: "x", title: "x", message: "x" });
    const rows = await outboxOf(t.id, created.id);
    expect(rows).toHaveLength(2);
    const limit = notificationsConfig.webhooks.disableAfterConsecutiveFailures;
    for (let i = 0; i < limit + 2; i++) {
      for (const row of rows) await deliver(t.id, String(row.id), created.id);
    }
    const endpoints = await admin(t).webhooks.list.query();
    for (const e of endpoints) expect(e).toMatchObject({ enabled: false, consecutiveFailures: limit });
    expect(endpoints.find((e) => e.id === endpoint.id)!.disabledReason).toMatch(/500/);
    const history = await admin(t).deliveries.query({ id: created.id });
    const failures = history.attempts.filter((a) => a.outcome === "failed");
    expect(failures.filter((a) => a.endpointId === endpoint.id)).toHaveLength(limit);
    expect(failures.filter((a) => a.endpointId === down.endpoint.id)).toHaveLength(limit);
    expect(failures.find((a) => a.endpointId === down.endpoint.id)!.error).toMatch(/unreachable/);
    expect(history.pending).toEqual([]);
    expect((await outboxOf(t.id, created.id)).map((r) => r.status)).toEqual(["failed", "failed"]);
    expect((await receiver.received()).filter((r) => r.verified)).toHaveLength(limit);

    const events = await trpcClient(t.admin.token).admin.systemEvents.list.query({ eventType: "notification.webhook_disabled" });
    expect(events.items).toHaveLength(2);
    expect(events.items.every((e) => e.occurrences === 1)).toBe(true);
    // A disabled endpoint gets no new deliveries until an admin enables it again.
    const later = await w.create(t, { userId: null, type: "x", title: "x", message: "x" });
    expect(await outboxOf(t.id, later.id)).toEqual([]);
    await receiver.configure({ mode: "ok" });
    await admin(t).webhooks.enable.mutate({ id: endpoint.id });
    await admin(t).webhooks.delete.mutate({ id: down.endpoint.id });
    const again = await admin(t).create.mutate({ userId: null, type: "x", title: "x", message: "x" });
    await eventually(receiver.received, (r) => r.some((h) => h.body.data.id === again.id));
    expect((await admin(t).webhooks.list.query()).find((e) => e.id === endpoint.id)).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  });

  it("endpoints are admin-managed: members are refused, and production accepts https only", async () => {
    const t = await createTenant();
    await expect(trpcClient(t.member.token).notifications.webhooks.list.query()).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(admin(t).webhooks.create.mutate({ url: "ftp://example.test/x" })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
    const { endpoint } = await admin(t).webhooks.create.mutate({ url: "https://example.test/hook" });
    await admin(t).webhooks.delete.mutate({ id: endpoint.id });
    expect(await admin(t).webhooks.list.query()).toEqual([]);
  });
});
