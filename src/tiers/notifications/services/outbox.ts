// Delivery of email and push notifications: enqueue after commit, claim-before-send in the consumer, relay of stragglers.
import { sql } from "drizzle-orm";
import type { TierStore } from "../../../core/db";
import type { Env } from "../../../core/env";
import type { Logger } from "../../../core/logger";
import type { JobMessage } from "../../jobs/messages";
import type { NotificationsConfig } from "../config";
import type { NotificationProvider } from "./provider";
import { rowsOf } from "./rows";
import { systemBatch } from "./system-scope";

export interface PendingDelivery {
  outboxId: string;
  notificationId: string;
  tenantId: string;
}

export const sendNotificationMessage = (delivery: PendingDelivery): JobMessage => ({
  jobId: delivery.outboxId,
  type: "SEND_NOTIFICATION",
  tenantId: delivery.tenantId,
  payload: { outboxId: delivery.outboxId, notificationId: delivery.notificationId },
  enqueuedAt: new Date().toISOString(),
});

/**
 * Sends the job for a committed outbox row. If this send is lost (the isolate dies, the queue
 * refuses), the row stays pending and the relay sends it again after the grace period.
 */
export async function enqueueDelivery(env: Env, logger: Logger, delivery: PendingDelivery): Promise<void> {
  try {
    await env.JOBS_NORMAL.send(sendNotificationMessage(delivery), { contentType: "json" });
  } catch (error) {
    logger.warn("notification job not enqueued; the outbox relay will retry", { outboxId: delivery.outboxId, error });
  }
}

/** Pending rows whose last enqueue is older than the grace period go to the queue again. */
export async function relayPendingDeliveries(
  store: TierStore,
  env: Env,
  config: NotificationsConfig,
): Promise<number> {
  const [result] = await systemBatch(store, null, (db) => [
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
  if (deliveries.length > 0) {
    await env.JOBS_NORMAL.sendBatch(deliveries.map((d) => ({ body: sendNotificationMessage(d), contentType: "json" as const })));
  }
  return deliveries.length;
}

export type DeliveryOutcome = "sent" | "already-sent" | "gone";

/**
 * The SEND_NOTIFICATION job. Claims the outbox row (pending → sent) in one statement before
 * calling the provider, so a redelivered message finds nothing to claim and sends nothing.
 * A provider failure hands the claim back and rethrows, so the queue retries it.
 */
export async function deliverNotification(
  store: TierStore,
  provider: NotificationProvider,
  delivery: PendingDelivery,
): Promise<DeliveryOutcome> {
  const [claimed] = await systemBatch(store, delivery.tenantId, (db) => [
    db.execute(sql`
      with claim as (
        update notification_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1
        where id = ${delivery.outboxId} and tenant_id = ${delivery.tenantId} and status = 'pending'
        returning id, notification_id, channel)
      select c.id, c.channel, n.id as notification_id, n.tenant_id, n.user_id, n.type, n.title, n.message, n.data,
             exists (select 1 from notification_outbox where id = ${delivery.outboxId}) as known
      from (select 1) one
      left join claim c on true
      left join notifications n on n.id = c.notification_id`),
  ]);
  const row = rowsOf(claimed)[0];
  if (!row?.id) return row?.known ? "already-sent" : "gone";
  try {
    await provider.send({
      deliveryId: String(row.id),
      notificationId: String(row.notification_id),
      tenantId: String(row.tenant_id),
      userId: row.user_id === null ? null : String(row.user_id),
      channel: row.channel as "email" | "push",
      type: String(row.type),
      title: String(row.title),
      message: String(row.message),
      data: row.data,
    });
    return "sent";
  } catch (error) {
    await systemBatch(store, delivery.tenantId, (db) => [
      db.execute(sql`update notification_outbox set status = 'pending', sent_at = null where id = ${delivery.outboxId} and status = 'sent'`),
    ]);
    throw error;
  }
}
