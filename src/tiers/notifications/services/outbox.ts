// Delivery of email, push and webhook notifications: enqueue after commit, claim-before-send in the consumer, one
// record per attempt, retries bounded by the outbox row's own attempt count, relay of stragglers.
import { sql } from "drizzle-orm";
import type { Clock } from "../../../platform/clock";
import { internalBatch, type TierStore } from "../../../platform/db";
import type { SystemEvents } from "../../../platform/emitters";
import { AppError } from "../../../platform/errors";
import type { QueuedMessage } from "../../../platform/jobs/enqueue";
import type { Logger } from "../../../platform/logger";
import { isoTimestamp, rowsOf } from "../../../platform/rows";
import type { Jobs } from "../../../platform/services";
import type { NotificationsConfig } from "../config";
import type { ChannelProviders, ChannelResult, NotificationPayload } from "./provider";
import { type DigestEntry, renderDigest, renderEmail } from "./templates";

export interface PendingDelivery {
  outboxId: string;
  notificationId: string;
  tenantId: string;
}

/**
 * The SEND_NOTIFICATION message of a committed outbox row (the job's id is the row's). If its send is
 * lost (the isolate dies, the queue refuses), the row stays pending and the relay sends it again.
 */
export const deliveryMessage = (jobs: Jobs, delivery: PendingDelivery): QueuedMessage =>
  jobs.direct("SEND_NOTIFICATION", delivery.tenantId, { outboxId: delivery.outboxId, notificationId: delivery.notificationId }, delivery.outboxId);

/** Pending rows whose last enqueue is older than the grace period go to the queue again. */
export async function relayPendingDeliveries(store: TierStore, jobs: Jobs, config: NotificationsConfig): Promise<number> {
  const [result] = await internalBatch(store, "system", null, (db) => [
    db.execute(sql`
      update notification_outbox o set enqueued_at = now()
      where o.id in (
        select id from notification_outbox
        where status = 'pending' and enqueued_at < now() - make_interval(secs => ${config.outbox.relayGraceSeconds})
        order by enqueued_at
        limit ${config.outbox.relayBatchSize}
        for update skip locked)
      returning o.id, o.notification_id, o.tenant_id`),
  ]);
  const deliveries = rowsOf(result).map((r) => ({
    outboxId: String(r.id),
    notificationId: String(r.notification_id),
    tenantId: String(r.tenant_id),
  }));
  await jobs.send(deliveries.map((d) => deliveryMessage(jobs, d)));
  return deliveries.length;
}

/** The notifications of one digest delivery still to tell about (not deleted, not expired), oldest first. */
async function digestItems(store: TierStore, tenantId: string, outboxId: string): Promise<DigestEntry[]> {
  const [rows] = await internalBatch(store, "system", tenantId, (db) => [
    db.execute(sql`
      select n.type, n.title, n.message, n.created_at from notification_digest_items i
      join notifications n on n.id = i.notification_id
      where i.outbox_id = ${outboxId} and i.tenant_id = ${tenantId}
        and n.deleted_at is null and (n.expires_at is null or n.expires_at > now())
      order by n.created_at, n.id`),
  ]);
  return rowsOf(rows).map((r) => ({ type: String(r.type), title: String(r.title), message: String(r.message), createdAt: isoTimestamp(r.created_at) }));
}

/** What SEND_NOTIFICATION needs besides the row: the clock, the channels, the recipient's address, the incident board. */
export interface DeliveryDeps {
  store: TierStore;
  clock: Clock;
  logger: Logger;
  config: NotificationsConfig;
  providers: ChannelProviders;
  systemEvents: SystemEvents;
  /**
   * The recipient's email address, read from OLTP `users` at delivery time (null: no such user). Throws
   * SERVICE_UNAVAILABLE while OLTP is down: the delivery is then deferred, its attempt given back.
   */
  emailAddress(tenantId: string, userId: string): Promise<string | null>;
}

export type DeliveryOutcome = "sent" | "rejected" | "skipped" | "failed" | "retrying" | "deferred" | "already-sent" | "gone";

type Attempt = { outcome: "sent" | "failed" | "rejected" | "deferred" | "skipped"; providerId?: string | null; error?: string };

interface Claimed {
  outboxId: string;
  channel: "email" | "push" | "webhook";
  attempt: number;
  /** A digest email: it tells about every notification linked to the row (`notification_digest_items`). */
  digest: boolean;
  endpoint: { id: string; url: string; secret: string; enabled: boolean } | null;
  /** The push subscription of a `push` delivery; null once it was removed (unsubscribed, or gone at the push service). */
  subscription: { id: string; endpoint: string; p256dh: string; auth: string } | null;
  notification: NotificationPayload;
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 1000);

/**
 * The SEND_NOTIFICATION job. Claims the outbox row (pending → sent, one more attempt) in one statement
 * before calling the provider, so a redelivered message finds nothing to claim and sends nothing. Each
 * attempt is recorded in `notification_deliveries`. A transient failure hands the claim back and throws
 * (the queue retries with backoff) until the row's attempts reach `delivery.maxAttempts`, when the row
 * is marked failed, once, with a system event for the tenant and channel.
 */
export async function deliverNotification(deps: DeliveryDeps, delivery: PendingDelivery): Promise<DeliveryOutcome> {
  const claimed = await claim(deps.store, delivery);
  if (!("outboxId" in claimed)) return claimed.outcome;
  const startedAt = deps.clock.now();

  let address: string | null = null;
  if (claimed.channel === "email" && claimed.notification.userId) {
    try {
      address = await deps.emailAddress(delivery.tenantId, claimed.notification.userId);
    } catch (error) {
      if (!(error instanceof AppError && error.code === "SERVICE_UNAVAILABLE")) throw error;
      // Not an attempt: the address could not be read. Give the attempt back; the queue (or the relay) comes back.
      await finish(deps, claimed, startedAt, { outcome: "deferred", error: `Recipient address not readable: ${errorText(error)}` }, "pending", -1);
      throw error;
    }
  }

  const digest = claimed.digest ? await digestItems(deps.store, claimed.notification.tenantId, claimed.outboxId) : null;
  const skip = digest?.length === 0 ? "Every notification of the digest was deleted or expired" : skipReason(deps.providers, claimed, address);
  if (skip) {
    await finish(deps, claimed, startedAt, { outcome: "skipped", error: skip }, "failed");
    return "skipped";
  }

  let result: ChannelResult;
  try {
    result = await send(deps.providers, claimed, address, startedAt, digest);
  } catch (error) {
    const last = claimed.attempt >= deps.config.delivery.maxAttempts;
    const disabled = await finish(deps, claimed, startedAt, { outcome: "failed", error: errorText(error) }, last ? "failed" : "pending");
    if (last || disabled) {
      await raiseFailure(deps, claimed, disabled ? "disabled" : "exhausted", errorText(error));
      return "failed";
    }
    throw error;
  }
  if (result.outcome === "rejected") {
    await finish(deps, claimed, startedAt, { outcome: "rejected", error: result.reason }, "failed");
    return "rejected";
  }
  if (result.outcome === "expired") {
    // The push service says the subscription no longer exists: stop, and remove it so nothing is owed to it again.
    await finish(deps, claimed, startedAt, { outcome: "rejected", error: `Subscription removed: ${result.reason}` }, "failed", 0, true);
    return "rejected";
  }
  await finish(deps, claimed, startedAt, { outcome: "sent", providerId: result.providerId }, "sent");
  return "sent";
}

async function claim(store: TierStore, delivery: PendingDelivery): Promise<Claimed | { outcome: "already-sent" | "gone" }> {
  const [claimed] = await internalBatch(store, "system", delivery.tenantId, (db) => [
    db.execute(sql`
      with claim as (
        update notification_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1
        where id = ${delivery.outboxId} and tenant_id = ${delivery.tenantId} and status = 'pending'
        returning id, notification_id, channel, endpoint_id, attempts, digest)
      select c.id, c.channel, c.attempts, c.digest, n.id as notification_id, n.tenant_id, n.user_id, n.type, n.title, n.message, n.data,
             n.channel as notification_channel, n.created_at,
             e.id as endpoint_id, e.url as endpoint_url, e.secret as endpoint_secret, e.enabled as endpoint_enabled,
             s.id as subscription_id, s.endpoint as subscription_endpoint, s.p256dh, s.auth,
             exists (select 1 from notification_outbox where id = ${delivery.outboxId}) as known
      from (select 1) one
      left join claim c on true
      left join notifications n on n.id = c.notification_id
      left join notification_webhook_endpoints e on c.channel = 'webhook' and e.id = c.endpoint_id
      left join notification_push_subscriptions s on c.channel = 'push' and s.id = c.endpoint_id`),
  ]);
  const row = rowsOf(claimed)[0];
  if (!row?.id) return { outcome: row?.known ? "already-sent" : "gone" };
  return {
    outboxId: String(row.id),
    channel: row.channel as Claimed["channel"],
    attempt: Number(row.attempts),
    digest: Boolean(row.digest),
    endpoint: row.endpoint_id
      ? { id: String(row.endpoint_id), url: String(row.endpoint_url), secret: String(row.endpoint_secret), enabled: Boolean(row.endpoint_enabled) }
      : null,
    subscription: row.subscription_id
      ? { id: String(row.subscription_id), endpoint: String(row.subscription_endpoint), p256dh: String(row.p256dh), auth: String(row.auth) }
      : null,
    notification: {
      id: String(row.notification_id),
      tenantId: String(row.tenant_id),
      userId: row.user_id === null ? null : String(row.user_id),
      type: String(row.type),
      title: String(row.title),
      message: String(row.message),
      data: row.data,
      channel: String(row.notification_channel),
      createdAt: isoTimestamp(row.created_at),
    },
  };
}

function skipReason(providers: ChannelProviders, claimed: Claimed, address: string | null): string | null {
  switch (claimed.channel) {
    case "email":
      if (!claimed.notification.userId) return "Tenant-wide notifications are not emailed";
      if (!address) return "The recipient has no email address (no such user in the tenant)";
      return providers.email ? null : "No email provider is configured";
    case "push":
      if (!claimed.subscription) return "The push subscription was removed";
      return providers.push ? null : "No push provider is configured";
    case "webhook":
      if (!claimed.endpoint) return "The webhook endpoint was deleted";
      return claimed.endpoint.enabled ? null : "The webhook endpoint is disabled";
  }
}

async function send(providers: ChannelProviders, claimed: Claimed, address: string | null, at: Date, digest: DigestEntry[] | null): Promise<ChannelResult> {
  const n = claimed.notification;
  switch (claimed.channel) {
    case "email": {
      const content = digest ? renderDigest(digest) : renderEmail(n);
      return providers.email!.send({ deliveryId: claimed.outboxId, from: providers.emailFrom, to: address!, ...content });
    }
    case "push":
      return providers.push!.send({ deliveryId: claimed.outboxId, subscription: claimed.subscription!, notification: n, at });
    case "webhook": {
      const endpoint = claimed.endpoint!;
      const payload = { type: "notification.created", timestamp: at.toISOString(), data: n };
      return providers.webhook.send({ deliveryId: claimed.outboxId, url: endpoint.url, secret: endpoint.secret, payload, at });
    }
  }
}

/**
 * Records the attempt and settles the outbox row in one transaction: `sent` keeps it sent, `pending` hands the
 * claim back (for the retry), `failed` stops it. A webhook's endpoint counts consecutive failures (a success resets
 * them); the failure that reaches the limit disables it. Returns whether this call disabled the endpoint.
 */
async function finish(
  deps: DeliveryDeps,
  claimed: Claimed,
  startedAt: Date,
  attempt: Attempt,
  status: "sent" | "pending" | "failed",
  attemptsDelta = 0,
  removeSubscription = false,
): Promise<boolean> {
  const finishedAt = deps.clock.now();
  const endpoint = claimed.channel === "webhook" && claimed.endpoint && attempt.outcome !== "skipped" ? claimed.endpoint : null;
  const limit = deps.config.webhooks.disableAfterConsecutiveFailures;
  const endpointId = claimed.endpoint?.id ?? null;
  const subscriptionId = claimed.channel === "push" ? (claimed.subscription?.id ?? null) : null;
  const [, endpointResult] = await internalBatch(deps.store, "system", claimed.notification.tenantId, (db) => [
    db.execute(sql`
      insert into notification_deliveries
        (tenant_id, notification_id, outbox_id, channel, endpoint_id, attempt, outcome, provider_id, error, started_at, finished_at)
      values (${claimed.notification.tenantId}, ${claimed.notification.id}, ${claimed.outboxId}, ${claimed.channel}, ${endpointId ?? subscriptionId}::uuid,
              ${claimed.attempt + attemptsDelta}, ${attempt.outcome}, ${attempt.providerId ?? null}, ${attempt.error ?? null},
              ${startedAt.toISOString()}::timestamptz, ${finishedAt.toISOString()}::timestamptz)`),
    endpoint
      ? attempt.outcome === "sent"
        ? db.execute(sql`update notification_webhook_endpoints set consecutive_failures = 0 where id = ${endpoint.id} returning false as disabled_now`)
        : db.execute(sql`
            update notification_webhook_endpoints e
            set consecutive_failures = e.consecutive_failures + 1,
                enabled = e.enabled and e.consecutive_failures + 1 < ${limit},
                disabled_at = case when e.enabled and e.consecutive_failures + 1 >= ${limit} then now() else e.disabled_at end,
                disabled_reason = case when e.enabled and e.consecutive_failures + 1 >= ${limit}
                                       then ${`${limit} failed attempts in a row; last: ${attempt.error ?? ""}`.slice(0, 1000)} else e.disabled_reason end
            where e.id = ${endpoint.id}
            returning (not e.enabled and e.disabled_at = now()) as disabled_now`)
      : db.execute(sql`select false as disabled_now`),
    // After the endpoint's update, in the same transaction: a retry owed to an endpoint just disabled stops here.
    db.execute(sql`
      update notification_outbox
      set status = case when ${status} = 'pending'
                         and exists (select 1 from notification_webhook_endpoints where id = ${endpointId}::uuid and not enabled)
                        then 'failed' else ${status} end,
          attempts = attempts + ${attemptsDelta},
          sent_at = case when ${status} = 'pending' then null else sent_at end
      where id = ${claimed.outboxId} and status = 'sent'`),
    // A push subscription the push service no longer knows is removed; one that accepted a push is kept fresh.
    subscriptionId && removeSubscription
      ? db.execute(sql`delete from notification_push_subscriptions where id = ${subscriptionId}`)
      : subscriptionId && attempt.outcome === "sent"
        ? db.execute(sql`update notification_push_subscriptions set last_seen_at = now() where id = ${subscriptionId}`)
        : db.execute(sql`select 1`),
  ]);
  return Boolean(rowsOf(endpointResult)[0]?.disabled_now);
}

/** One open system event per tenant and channel (or per webhook endpoint): repeats count as occurrences. */
async function raiseFailure(deps: DeliveryDeps, claimed: Claimed, why: "disabled" | "exhausted", error: string): Promise<void> {
  const tenantId = claimed.notification.tenantId;
  const event =
    why === "disabled" && claimed.endpoint
      ? {
          eventType: "notification.webhook_disabled",
          severity: "high" as const,
          description: `Webhook endpoint ${claimed.endpoint.url} was disabled after ${deps.config.webhooks.disableAfterConsecutiveFailures} failed deliveries in a row`,
          dedupKey: `notifications.webhook_disabled:${claimed.endpoint.id}`,
          details: { endpointId: claimed.endpoint.id, url: claimed.endpoint.url, lastError: error },
        }
      : {
          eventType: "notification.delivery_failed",
          severity: "medium" as const,
          description: `A ${claimed.channel} notification could not be delivered after ${claimed.attempt} attempts`,
          dedupKey: `notifications.delivery_failed:${claimed.channel}`,
          details: { channel: claimed.channel, notificationId: claimed.notification.id, outboxId: claimed.outboxId, lastError: error },
        };
  await deps.systemEvents.raiseQuietly({ ...event, tenantId }, { outboxId: claimed.outboxId });
}
