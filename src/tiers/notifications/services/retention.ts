// Retention: hard-deletes expired and old notifications, old system events, sent outbox rows and idle push
// subscriptions, in short batches.
import type { Redis } from "@upstash/redis/cloudflare";
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import type { Logger } from "../../../platform/logger";
import { systemEventRetentionDays, type NotificationsConfig } from "../config";
import { rowsOf } from "../../../platform/rows";
import { invalidateUnread, type CacheChange } from "./unread-cache";

export interface RetentionReport {
  notifications: number;
  systemEvents: number;
  outbox: number;
  pushSubscriptions: number;
}

/**
 * Deletes up to `batchSize` rows per transaction, picked with SKIP LOCKED through an index, so
 * each lock is short and a busy row is left for the next run; stops when a batch comes back short.
 */
async function deleteInBatches(
  store: TierStore,
  config: NotificationsConfig,
  statement: SQL,
  afterBatch: (rows: Record<string, unknown>[]) => Promise<void> = async () => undefined,
): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < config.retention.maxBatchesPerRun; batch++) {
    const [result] = await internalBatch(store, "system", null, (db) => [db.execute(statement)]);
    const rows = rowsOf(result);
    total += rows.length;
    await afterBatch(rows);
    if (rows.length < config.retention.batchSize) break;
  }
  return total;
}

export async function pruneNotificationsTier(
  deps: { store: TierStore; redis: Redis; logger: Logger; config: NotificationsConfig },
): Promise<RetentionReport> {
  const { store, config, redis, logger } = deps;
  const size = config.retention.batchSize;
  // An old unread notification still counted; its users' (or tenant's) cached counts must go.
  const invalidateDeleted = async (rows: Record<string, unknown>[]) => {
    const seen = new Map<string, CacheChange>();
    for (const r of rows) {
      const change = { tenantId: String(r.tenant_id), userId: r.user_id === null ? null : String(r.user_id) };
      seen.set(`${change.tenantId}:${change.userId}`, change);
    }
    await invalidateUnread(redis, config, [...seen.values()]).catch((error: unknown) =>
      logger.warn("unread cache invalidation after pruning failed", { error }),
    );
  };
  // Two passes, each walking its own index. Receipts and outbox rows go with their
  // notification (ON DELETE CASCADE).
  const expired = await deleteInBatches(
    store,
    config,
    sql`delete from notifications where id in (
          select id from notifications where expires_at < now()
          order by expires_at limit ${size} for update skip locked)
        returning tenant_id, user_id`,
    invalidateDeleted,
  );
  const aged = await deleteInBatches(
    store,
    config,
    sql`delete from notifications where id in (
          select id from notifications where created_at < now() - make_interval(days => ${config.retention.notificationDays})
          order by created_at limit ${size} for update skip locked)
        returning tenant_id, user_id`,
    invalidateDeleted,
  );
  const notifications = expired + aged;
  const systemEvents = await deleteInBatches(
    store,
    config,
    sql`delete from admin_system_events where id in (
          select id from admin_system_events
          where created_at < now() - make_interval(days => ${systemEventRetentionDays(config.retention.systemEventDays)})
          order by created_at limit ${size} for update skip locked)
        returning id`,
  );
  const outbox = await deleteInBatches(
    store,
    config,
    sql`delete from notification_outbox where id in (
          select id from notification_outbox
          where status = 'sent' and sent_at < now() - make_interval(days => ${config.outbox.sentRetentionDays})
          order by sent_at limit ${size} for update skip locked)
        returning id`,
  );
  // A subscription no push service accepted anything for (nor its browser refreshed) in months is abandoned.
  const pushSubscriptions = await deleteInBatches(
    store,
    config,
    sql`delete from notification_push_subscriptions where id in (
          select id from notification_push_subscriptions
          where last_seen_at < now() - make_interval(days => ${config.push.idleRetentionDays})
          order by last_seen_at limit ${size} for update skip locked)
        returning id`,
  );
  return { notifications, systemEvents, outbox, pushSubscriptions };
}
