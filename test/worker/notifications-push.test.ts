// Web Push through a real push service (web-push-testing, started by the test stack): the payload is encrypted per
// RFC 8291 and signed per RFC 8292, and the push service decrypts it; a 410 removes the subscription; an unreachable
// push service is a failed attempt that is retried; every attempt is in the delivery history.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { systemClock } from "../../src/platform/clock";
import { outboundUrlProblem } from "../../src/platform/outbound-url";
import { clockedWorker } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { asSystem, pushSubscription, sleep } from "../support/notifications";
import { queueNames, testServices } from "../support/runtime";
import { trpcClient } from "../support/worker";

const admin = (t: TestTenant) => trpcClient(t.admin.token, { batch: false }).notifications;
const member = (t: TestTenant) => trpcClient(t.member.token, { batch: false }).notifications;

/** The member's browser, subscribed through the procedure as a web app would after pushManager.subscribe. */
async function subscribedBrowser(t: TestTenant) {
  const browser = await pushSubscription();
  const record = await member(t).push.subscribe.mutate({ endpoint: browser.endpoint, keys: browser.keys });
  return { ...browser, id: record.id };
}

async function subscriptionsOf(t: TestTenant) {
  const [rows = []] = await asSystem((sql) => [sql`select id, endpoint from notification_push_subscriptions where tenant_id = ${t.id}`], t.id);
  return rows;
}

async function outboxOf(tenantId: string, notificationId: string) {
  const [rows = []] = await asSystem((sql) => [sql`select * from notification_outbox where notification_id = ${notificationId} order by created_at`], tenantId);
  return rows;
}

/** A Worker whose queues are held: the test delivers each job itself, so a failing delivery never retries on its own. */
function heldWorker() {
  const w = clockedWorker(systemClock);
  return {
    create: (t: TestTenant, input: { userId: string | null; type: string; title: string; message: string }) =>
      w.client(t.admin.token).notifications.create.mutate({ ...input, channel: "push" }),
    deliverHeld: () => w.deliver("JOBS_NORMAL", queueNames.normal),
  };
}

/** Runs SEND_NOTIFICATION for one outbox row through the Worker's queue handler, as the queue's retry would. */
async function deliver(tenantId: string, outboxId: string, notificationId: string) {
  const body = testServices().jobs.direct("SEND_NOTIFICATION", tenantId, { outboxId, notificationId }, outboxId).message;
  const batch = createMessageBatch(queueNames.normal, [{ id: crypto.randomUUID(), timestamp: new Date(), attempts: 2, body }]);
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

describe("Web Push", () => {
  it("a push notification reaches every subscribed browser of its recipient and decrypts at the push service", async () => {
    const t = await createTenant();
    const { publicKey } = await member(t).push.publicKey.query();
    expect(publicKey).toBe(env.VAPID_PUBLIC_KEY);
    const phone = await subscribedBrowser(t);
    const laptop = await subscribedBrowser(t);
    const created = await admin(t).create.mutate({ userId: t.member.id, type: "security.login", title: "New sign-in", message: "From Lisbon <b>today</b>", channel: "push" });

    for (const browser of [phone, laptop]) {
      const messages = await eventually(browser.received, (m) => m.length > 0);
      expect(messages).toEqual([{ id: created.id, type: "security.login", title: "New sign-in", body: "From Lisbon <b>today</b>", createdAt: created.createdAt }]);
    }
    const history = await eventually(() => admin(t).deliveries.query({ id: created.id }), (h) => h.attempts.length === 2);
    expect(history.attempts.map((a) => [a.channel, a.outcome, a.attempt])).toEqual([
      ["push", "sent", 1],
      ["push", "sent", 1],
    ]);
    expect(history.pending).toEqual([]);
    // The in-app row exists as for any notification.
    expect((await member(t).list.query({ limit: 5 })).items.map((n) => n.id)).toEqual([created.id]);
  });

  it("a 410 from the push service removes the subscription and stops; nothing is owed to it afterwards", async () => {
    const t = await createTenant();
    const gone = await subscribedBrowser(t);
    const kept = await subscribedBrowser(t);
    await gone.expire();
    const w = heldWorker();
    const created = await w.create(t, { userId: t.member.id, type: "x", title: "Hello", message: "again" });
    expect(await w.deliverHeld()).toBe(2);

    const history = await admin(t).deliveries.query({ id: created.id });
    const outcomes = history.attempts.map((a) => a.outcome).sort();
    expect(outcomes).toEqual(["rejected", "sent"]);
    const rejected = history.attempts.find((a) => a.outcome === "rejected")!;
    expect(rejected.error).toMatch(/410/);
    expect(history.pending).toEqual([]);
    expect((await w.deliverHeld())).toBe(0); // not retried
    expect((await subscriptionsOf(t)).map((s) => s.id)).toEqual([kept.id]);
    expect(await kept.received()).toHaveLength(1);

    const next = await w.create(t, { userId: t.member.id, type: "x", title: "Third", message: "time" });
    expect((await outboxOf(t.id, next.id)).map((o) => o.endpoint_id)).toEqual([kept.id]);
  });

  it("an unreachable push service is a failed attempt, retried; the retry delivers once it answers", async () => {
    const t = await createTenant();
    const browser = await pushSubscription();
    // The same browser keys behind an endpoint where nothing listens (as if the push service were down).
    const down = "http://127.0.0.1:9/notify/down";
    const { id } = await member(t).push.subscribe.mutate({ endpoint: down, keys: browser.keys });
    const w = heldWorker();
    const created = await w.create(t, { userId: t.member.id, type: "x", title: "Retry", message: "me" });
    await w.deliverHeld();
    const failed = await admin(t).deliveries.query({ id: created.id });
    expect(failed.attempts).toEqual([expect.objectContaining({ channel: "push", outcome: "failed", attempt: 1 })]);
    expect(failed.attempts[0]!.error).toMatch(/unreachable/);
    expect(failed.pending).toEqual([expect.objectContaining({ channel: "push", attempts: 1 })]);
    expect((await subscriptionsOf(t)).map((s) => s.id)).toEqual([id]); // a transient failure keeps the subscription

    // The push service is back: the subscription's endpoint points at it again (the browser refreshed it), and the
    // queue's retry of the same message delivers.
    await asSystem((sql) => [sql`update notification_push_subscriptions set endpoint = ${browser.endpoint} where id = ${id}`], t.id);
    const [row] = await outboxOf(t.id, created.id);
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    await deliver(t.id, String(row!.id), created.id);
    const again = await admin(t).deliveries.query({ id: created.id });
    expect(again.attempts.map((a) => [a.outcome, a.attempt])).toEqual([
      ["failed", 1],
      ["sent", 2],
    ]);
    expect(await browser.received()).toEqual([expect.objectContaining({ id: created.id, title: "Retry" })]);
  });

  it("a user opted out of push for a type gets the in-app row and no push", async () => {
    const t = await createTenant();
    const browser = await subscribedBrowser(t);
    await member(t).preferences.set.mutate({ settings: [{ type: "campaign.digest", channel: "push", enabled: false }] });
    const optedOut = await admin(t).create.mutate({ userId: t.member.id, type: "campaign.digest", title: "Digest", message: "x", channel: "push" });
    const other = await admin(t).create.mutate({ userId: t.member.id, type: "report.ready", title: "Report", message: "x", channel: "push" });
    await eventually(browser.received, (m) => m.length > 0);
    await sleep(500);
    expect((await browser.received()).map((m) => m.id)).toEqual([other.id]);
    expect(await outboxOf(t.id, optedOut.id)).toEqual([]);
    expect((await member(t).list.query({ limit: 10 })).items.map((n) => n.id).sort()).toEqual([optedOut.id, other.id].sort());
  });

  it("subscriptions are the user's own: unsubscribe removes them, bad keys are refused, another user's stay", async () => {
    const t = await createTenant();
    const browser = await subscribedBrowser(t);
    const admins = await pushSubscription();
    await admin(t).push.subscribe.mutate({ endpoint: admins.endpoint, keys: admins.keys });
    // Subscribing again refreshes the same row.
    const again = await member(t).push.subscribe.mutate({ endpoint: browser.endpoint, keys: browser.keys });
    expect(again.id).toBe(browser.id);
    await expect(member(t).push.subscribe.mutate({ endpoint: browser.endpoint, keys: { p256dh: "A".repeat(87), auth: browser.keys.auth } })).rejects.toMatchObject({
      data: { code: "VALIDATION_FAILED" },
    });
    // The member cannot remove the admin's subscription by naming its endpoint.
    expect(await member(t).push.unsubscribe.mutate({ endpoint: admins.endpoint })).toEqual({ removed: false });
    expect(await member(t).push.unsubscribe.mutate({ endpoint: browser.endpoint })).toEqual({ removed: true });
    expect((await subscriptionsOf(t)).map((s) => s.endpoint)).toEqual([admins.endpoint]);
    // No subscription: a push notification owes nothing.
    const created = await admin(t).create.mutate({ userId: t.member.id, type: "x", title: "x", message: "x", channel: "push" });
    expect(await outboxOf(t.id, created.id)).toEqual([]);
  });
});

describe("outbound URLs (SSRF guard of webhook and push endpoints)", () => {
  const production = { ENVIRONMENT: "production" as const };
  it("production refuses private, loopback, link-local and internal hosts, and plain http", () => {
    for (const url of [
      "https://127.0.0.1/x",
      "https://localhost/x",
      "https://api.localhost/x",
      "https://10.1.2.3/x",
      "https://172.16.0.1/x",
      "https://192.168.1.10/x",
      "https://169.254.169.254/latest/meta-data",
      "https://100.64.0.1/x",
      "https://0.0.0.0/x",
      "https://[::1]/x",
      "https://[fe80::1]/x",
      "https://[fd00::1]/x",
      "https://[::ffff:127.0.0.1]/x",
      "https://2130706433/x",
      "https://0x7f000001/x",
      "https://metadata/x",
      "https://db.internal/x",
      "https://printer.local/x",
      "http://hooks.example.com/x",
      "https://user:pass@hooks.example.com/x",
    ]) {
      expect({ url, problem: outboundUrlProblem(production, url) }).toEqual({ url, problem: expect.any(String) });
    }
    expect(outboundUrlProblem(production, "https://hooks.example.com/x")).toBeNull();
    expect(outboundUrlProblem(production, "https://8.8.8.8/x")).toBeNull();
    expect(outboundUrlProblem(production, "https://[2606:4700::1111]/x")).toBeNull();
  });

  it("tests and development allow the local receivers (loopback over http)", async () => {
    expect(outboundUrlProblem({ ENVIRONMENT: "test" }, "http://127.0.0.1:8080/hook")).toBeNull();
    expect(outboundUrlProblem({ ENVIRONMENT: "development" }, "http://localhost:8080/hook")).toBeNull();
    expect(outboundUrlProblem({ ENVIRONMENT: "test" }, "ftp://127.0.0.1/x")).toEqual(expect.any(String));
    const t = await createTenant();
    await expect(admin(t).webhooks.create.mutate({ url: "http://127.0.0.1:9/hook" })).resolves.toMatchObject({ endpoint: { url: "http://127.0.0.1:9/hook" } });
  });
});
