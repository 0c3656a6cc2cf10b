// Digests: a user's setting per channel (email), and the closing of due windows into one digest delivery each.
import { sql } from "drizzle-orm";
import type { Clock } from "../../../platform/clock";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { isoTimestamp, rowsOf } from "../../../platform/rows";
import type { Jobs } from "../../../platform/services";
import { deliveryMessage } from "./outbox";

export interface DigestSetting {
  channel: "email";
  windowMinutes: number;
  updatedAt: string;
}

export async function getDigests(store: TierStore, scope: TenantScope): Promise<DigestSetting[]> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select channel, window_minutes, updated_at from notification_digest_settings
                   where tenant_id = ${scope.tenantId} and user_id = ${scope.userId} order by channel`),
  ]);
  return rowsOf(rows).map((r) => ({ channel: r.channel as "email", windowMinutes: Number(r.window_minutes), updatedAt: isoTimestamp(r.updated_at) }));
}

/**
 * Sets (or, with `windowMinutes: null`, removes) the caller's digest of a channel. Notifications already held keep
 * their window; removing the digest does not release them early.
 */
export async function setDigest(store: TierStore, scope: TenantScope, channel: "email", windowMinutes: number | null): Promise<DigestSetting[]> {
  await tenantBatch(store, scope, (db) => [
    windowMinutes === null
      ? db.execute(sql`delete from notification_digest_settings where tenant_id = ${scope.tenantId} and user_id = ${scope.userId} and channel = ${channel}`)
      : db.execute(sql`
          insert into notification_digest_settings (tenant_id, user_id, channel, window_minutes)
          values (${scope.tenantId}, ${scope.userId}, ${channel}, ${windowMinutes})
          on conflict (tenant_id, user_id, channel) do update set window_minutes = excluded.window_minutes, updated_at = now()`),
  ]);
  return getDigests(store, scope);
}

/**
 * Closes every window that ended by the services clock's now: per (tenant, user, channel, window), one digest outbox
 * row and all its items linked to it, in one transaction, so an item lands in exactly one digest and a digest exists
 * only with its items. The jobs go out after the commit; a lost send is re-sent by the outbox relay, and a failing
 * delivery is retried like any other: the window's notifications are never lost and never sent twice. The outbox
 * row names one of the window's notifications (the one that expires last, so retention keeps it longest).
 */
export async function closeDueDigests(store: TierStore, jobs: Jobs, clock: Clock, batchSize = 100): Promise<number> {
  const now = clock.now().toISOString();
  const [result] = await internalBatch(store, "system", null, (db) => [
    db.execute(sql`
      with due as (
        select i.tenant_id, i.user_id, i.channel, i.window_end,
               (array_agg(i.notification_id order by n.expires_at desc nulls first, n.created_at))[1] as anchor
        from notification_digest_items i join notifications n on n.id = i.notification_id
        where i.outbox_id is null and i.window_end <= ${now}::timestamptz
        group by i.tenant_id, i.user_id, i.channel, i.window_end
        order by i.window_end
        limit ${batchSize}
      ), o as (
        insert into notification_outbox (notification_id, tenant_id, channel, digest)
        select anchor, tenant_id, channel, true from due
        returning id, notification_id, tenant_id
      ), linked as (
        update notification_digest_items i set outbox_id = o.id
        from due d join o on o.notification_id = d.anchor
        where i.tenant_id = d.tenant_id and i.user_id = d.user_id and i.channel = d.channel and i.window_end = d.window_end
          and i.outbox_id is null
        returning i.notification_id
      )
      select o.id, o.notification_id, o.tenant_id, (select count(*)::int from linked) as linked from o`),
  ]);
  const digests = rowsOf(result).map((r) => ({ outboxId: String(r.id), notificationId: String(r.notification_id), tenantId: String(r.tenant_id) }));
  await jobs.send(digests.map((d) => deliveryMessage(jobs, d)));
  return digests.length;
}
