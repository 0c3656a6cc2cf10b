import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { parseEnv } from "../../src/platform/env";
import { createRedis } from "../../src/platform/redis";
import { createLogger } from "../../src/platform/logger";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import { queueNames, testServices } from "../support/runtime";
import { relayPendingDeliveries } from "../../src/tiers/notifications/services/outbox";
import { allowAuthEmail, authEmailLimits } from "../../src/platform/rate-limits";
import { tierStore } from "../../src/platform/db";
import { asSystem, notificationsTenant, pushSubscription, sleep, type NotificationsTenant } from "../support/notifications";
import { setRedisFault } from "../support/stack";
import { trpcClient } from "../support/worker";

// Push deliveries go to the local Web Push service (web-push-testing), which decrypts and keeps each message it accepts.
const createPush = (t: NotificationsTenant, userId: string | null = t.member.id) =>
  trpcClient(t.admin.token, { batch: false }).notifications.create.mutate({
    userId,
    type: "security.login",
    title: "New sign-in",
    message: "A new device signed in.",
    channel: "push",
  });

/** The member's browser, subscribed through notifications.push.subscribe. */
async function subscribedMember(t: NotificationsTenant) {
  const browser = await pushSubscription();
  const { id } = await trpcClient(t.member.token).notifications.push.subscribe.mutate({ endpoint: browser.endpoint, keys: browser.keys });
  return { ...browser, id };
}

async function outboxOf(t: NotificationsTenant, notificationId: string) {
  const [rows = []] = await asSystem((sql) => [sql`select * from notification_outbox where notification_id = ${notificationId}`], t.id);
  return rows;
}

async function deliver(t: NotificationsTenant, outboxId: string, notificationId: string, id = crypto.randomUUID()) {
  const body = testServices().jobs.direct("SEND_NOTIFICATION", t.id, { outboxId, notificationId }, outboxId).message;
  const batch = createMessageBatch(queueNames.normal, [{ id, timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(250);
  }
}

describe("email and push delivery through the outbox", () => {
  it("an in-app notification has no delivery; a push one has its outbox row from the same transaction", async () => {
    const t = await notificationsTenant();
    const browser = await subscribedMember(t);
    const inApp = await trpcClient(t.admin.token).notifications.create.mutate({ userId: t.member.id, type: "x", title: "x", message: "x" });
    expect(await outboxOf(t, inApp.id)).toEqual([]);
    const email = await createPush(t);
    const [row] = await outboxOf(t, email.id);
    expect(row).toMatchObject({ tenant_id: t.id, channel: "push", endpoint_id: browser.id });
  });

  it("the job sent after commit reaches the consumer, which delivers once", async () => {
    const t = await notificationsTenant();
    const browser = await subscribedMember(t);
    const email = await createPush(t);
    const received = await eventually(browser.received, (m) => m.length > 0);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ id: email.id, title: "New sign-in", body: "A new device signed in." });
    expect((await outboxOf(t, email.id))[0]).toMatchObject({ status: "sent" });
  });

  it("a redelivered message never sends twice", async () => {
    const t = await notificationsTenant();
    const browser = await subscribedMember(t);
    const email = await createPush(t, null);
    const outboxId = String((await outboxOf(t, email.id))[0]!.id);
    const results = await Promise.all([deliver(t, outboxId, email.id), deliver(t, outboxId, email.id), deliver(t, outboxId, email.id)]);
    expect(results.every((r) => r.explicitAcks.length === 1)).toBe(true);
    await sleep(6000); // past the queue's batch timeout: the Worker's own delivery of the original job ran too
    expect(await browser.received()).toHaveLength(1);
    expect((await outboxOf(t, email.id))[0]).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("the relay re-sends a delivery still pending after the grace period", async () => {
    const t = await notificationsTenant();
    const browser = await subscribedMember(t);
    const store = tierStore(parseEnv(env), "notifications");
    // As if the post-commit send had been lost: the row is pending and was last enqueued long ago.
    const [[n] = []] = await asSystem(
      (sql) => [
        sql`with n as (insert into notifications (tenant_id, user_id, type, title, message, channel)
                       values (${t.id}, ${t.member.id}, 'x', 'lost', 'lost', 'push') returning id)
            insert into notification_outbox (notification_id, tenant_id, channel, endpoint_id, enqueued_at)
            select id, ${t.id}, 'push', ${browser.id}::uuid, now() - interval '1 hour' from n returning id, notification_id`,
      ],
      t.id,
    );
    const relayed = await relayPendingDeliveries(store, testServices().jobs, notificationsConfig);
    expect(relayed).toBeGreaterThanOrEqual(1);
    expect(await relayPendingDeliveries(store, testServices().jobs, notificationsConfig)).toBe(0);
    expect(n).toBeDefined();
    expect(await eventually(browser.received, (m) => m.length > 0)).toMatchObject([{ title: "lost" }]);
  });

  it("a message for an unknown delivery is acknowledged without sending", async () => {
    const t = await notificationsTenant();
    const outboxId = crypto.randomUUID();
    const result = await deliver(t, outboxId, crypto.randomUUID());
    expect(result.explicitAcks).toHaveLength(1);
    const [rows = []] = await asSystem((sql) => [sql`select count(*)::int as n from notification_deliveries where outbox_id = ${outboxId}`], t.id);
    expect(rows[0]?.n).toBe(0);
  });
});

describe("over-sending protection", () => {
  afterEach(() => setRedisFault("none"));

  it("refuses creation above the per-recipient limit with RATE_LIMITED, writing nothing", async () => {
    const t = await notificationsTenant();
    const admin = trpcClient(t.admin.token, { batch: false }).notifications;
    const make = () => admin.create.mutate({ userId: t.member.id, type: "x", title: "x", message: "x" });
    for (let i = 0; i < notificationsConfig.limits.perRecipient.limit; i++) await make();
    await expect(make()).rejects.toMatchObject({ data: { code: "RATE_LIMITED", httpStatus: 429 } });
    const page = await trpcClient(t.member.token).notifications.list.query({ limit: 100 });
    expect(page.items).toHaveLength(notificationsConfig.limits.perRecipient.limit);
    // Another recipient in the same tenant is not affected.
    await expect(admin.create.mutate({ userId: t.other.id, type: "x", title: "x", message: "x" })).resolves.toBeDefined();
  });

  it("creation fails open while Redis is down", async () => {
    const t = await notificationsTenant();
    await setRedisFault("down");
    const created = await trpcClient(t.admin.token).notifications.create.mutate({ userId: t.member.id, type: "x", title: "x", message: "x" });
    expect(created.userId).toBe(t.member.id);
  });

  it("auth emails are limited per address and fail closed while Redis is down", async () => {
    const e = parseEnv(env);
    const logger = createLogger("error");
    const email = `user-${crypto.randomUUID()}@example.test`;
    const setting = authEmailLimits["password-reset"];
    for (let i = 0; i < setting.limit; i++) await allowAuthEmail(createRedis(e), logger, "password-reset", email, setting);
    await expect(allowAuthEmail(createRedis(e), logger, "password-reset", email, setting)).rejects.toMatchObject({ code: "RATE_LIMITED" });
    // The verification key is separate from the password-reset key.
    await expect(allowAuthEmail(createRedis(e), logger, "verification-email", email, setting)).resolves.toBeUndefined();
    await setRedisFault("down");
    await expect(
      allowAuthEmail(createRedis(e), logger, "verification-email", `x-${email}`, setting),
    ).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE", tier: "redis" });
  });
});
