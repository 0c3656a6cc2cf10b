// Notification preferences (per type and channel: tenant defaults, user overrides) and the delivery history.
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { isoOrNull, isoTimestamp, rowsOf } from "../../../platform/rows";

export interface PreferenceSetting {
  /** A notification type, or '*' for every type. */
  type: string;
  channel: "email" | "push";
  enabled: boolean;
  updatedAt: string;
}

export interface Preferences {
  /** The caller's own overrides. */
  user: PreferenceSetting[];
  /** The tenant's defaults (set by admins), which apply where the caller has no override. */
  tenant: PreferenceSetting[];
}

const toSetting = (r: Record<string, unknown>): PreferenceSetting => ({
  type: String(r.type),
  channel: r.channel as PreferenceSetting["channel"],
  enabled: Boolean(r.enabled),
  updatedAt: isoTimestamp(r.updated_at),
});

export async function getPreferences(store: TierStore, scope: TenantScope): Promise<Preferences> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      select user_id, type, channel, enabled, updated_at from notification_preferences
      where tenant_id = ${scope.tenantId} and (user_id = ${scope.userId} or user_id is null)
      order by type, channel`),
  ]);
  const all = rowsOf(rows);
  return { user: all.filter((r) => r.user_id !== null).map(toSetting), tenant: all.filter((r) => r.user_id === null).map(toSetting) };
}

export interface PreferenceChange {
  type: string;
  channel: "email" | "push";
  /** null removes the setting, so the next one down (the tenant default, or delivered) applies again. */
  enabled: boolean | null;
}

/** The caller's own settings, or (`tenantDefault`, admins only) the tenant's defaults; all changes in one transaction. */
export async function setPreferences(
  store: TierStore,
  scope: TenantScope,
  changes: PreferenceChange[],
  tenantDefault: boolean,
): Promise<Preferences> {
  if (tenantDefault && scope.role !== "admin" && scope.role !== "operator") {
    throw new AppError("FORBIDDEN", "Only admins set the tenant's default preferences");
  }
  const owner = tenantDefault ? null : scope.userId;
  const ownerMatch = owner ? sql`user_id = ${owner}` : sql`user_id is null`;
  await tenantBatch(store, scope, (db) => [
    db.execute(sql`select 1`),
    ...changes.map((c) =>
      c.enabled === null
        ? db.execute(sql`delete from notification_preferences
                         where tenant_id = ${scope.tenantId} and ${ownerMatch} and type = ${c.type} and channel = ${c.channel}`)
        : db.execute(sql`
            insert into notification_preferences (tenant_id, user_id, type, channel, enabled, updated_at)
            values (${scope.tenantId}, ${owner}::uuid, ${c.type}, ${c.channel}, ${c.enabled}, now())
            on conflict (tenant_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid), type, channel)
            do update set enabled = excluded.enabled, updated_at = now()`),
    ),
  ]);
  return getPreferences(store, scope);
}

export interface DeliveryAttempt {
  id: string;
  outboxId: string;
  channel: string;
  endpointId: string | null;
  attempt: number;
  outcome: string;
  providerId: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

/**
 * Every delivery attempt of one notification of the caller's tenant, oldest first, and what is still owed
 * (outbox rows pending). Admins only (RLS as well); NOT_FOUND for a notification outside the tenant.
 */
export async function listDeliveries(
  store: TierStore,
  scope: TenantScope,
  notificationId: string,
): Promise<{
  attempts: DeliveryAttempt[];
  pending: { outboxId: string; channel: string; attempts: number }[];
  /** Held for the recipient's digest: the window's end, and its digest delivery once the window closed. */
  digest: { windowEnd: string; outboxId: string | null } | null;
}> {
  // A notification held for a digest is delivered by the digest's outbox row: its attempts are this notification's too.
  const digestOutbox = sql`(select outbox_id from notification_digest_items where notification_id = ${notificationId} and outbox_id is not null)`;
  const [found, attempts, pending, digest] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select 1 from notifications where id = ${notificationId} and tenant_id = ${scope.tenantId}`),
    db.execute(sql`
      select id, outbox_id, channel, endpoint_id, attempt, outcome, provider_id, error, started_at, finished_at
      from notification_deliveries where (notification_id = ${notificationId} or outbox_id in ${digestOutbox}) and tenant_id = ${scope.tenantId}
      order by started_at, finished_at, id`),
    db.execute(sql`
      select id, channel, attempts from notification_outbox
      where (notification_id = ${notificationId} or id in ${digestOutbox}) and tenant_id = ${scope.tenantId} and status = 'pending'
      order by created_at, id`),
    db.execute(sql`select window_end, outbox_id from notification_digest_items where notification_id = ${notificationId} and tenant_id = ${scope.tenantId}`),
  ]);
  const held = rowsOf(digest)[0];
  if (rowsOf(found).length === 0) throw new AppError("NOT_FOUND", "Notification not found");
  return {
    attempts: rowsOf(attempts).map((r) => ({
      id: String(r.id),
      outboxId: String(r.outbox_id),
      channel: String(r.channel),
      endpointId: r.endpoint_id === null ? null : String(r.endpoint_id),
      attempt: Number(r.attempt),
      outcome: String(r.outcome),
      providerId: r.provider_id === null ? null : String(r.provider_id),
      error: r.error === null ? null : String(r.error),
      startedAt: isoTimestamp(r.started_at),
      finishedAt: isoOrNull(r.finished_at),
    })),
    pending: rowsOf(pending).map((r) => ({ outboxId: String(r.id), channel: String(r.channel), attempts: Number(r.attempts) })),
    digest: held ? { windowEnd: isoTimestamp(held.window_end), outboxId: held.outbox_id === null ? null : String(held.outbox_id) } : null,
  };
}
