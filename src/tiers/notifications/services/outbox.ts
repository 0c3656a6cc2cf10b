// Delivery of email and push notifications: enqueue after commit, claim-before-send in the consumer, relay of stragglers.
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import type { QueuedMessage } from "../../../platform/jobs/enqueue";
import type { Jobs } from "../../../platform/services";
import type { NotificationsConfig } from "../config";
import type { NotificationProvider } from "./provider";
import { rowsOf } from "../../../platform/rows";

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
  const [claimed] = await internalBatch(store, "system", delivery.tenantId, (db) => [
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
    await internalBatch(store, "system", delivery.tenantId, (db) => [
      db.execute(sql`update notification_outbox set status = 'pending', sent_at = null where id = ${delivery.outboxId} and status = 'sent'`),
    ]);
    throw error;
  }
}
