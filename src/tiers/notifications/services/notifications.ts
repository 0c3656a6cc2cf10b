// The notification center: list, unread count, read state, soft delete and creation, each one Postgres round trip.
import type { Redis } from "@upstash/redis/cloudflare";
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import type { Clock } from "../../../platform/clock";
import type { Jobs } from "../../../platform/services";
import { AppError } from "../../../platform/errors";
import type { Logger } from "../../../platform/logger";
import type { NotificationsConfig } from "../config";
import { deliveryMessage } from "./outbox";
import { channelConfigured } from "./provider";
import { enforceLimits, recipientLimit } from "../../../platform/rate-limits";
import type { RedisReads } from "../../../platform/redis";
import { boundedJson, isoOrNull, isoTimestamp, rowsOf } from "../../../platform/rows";
import { decodeCursor, encodeCursor } from "../../../platform/paging";
import { type CacheLookup, invalidateLater, lookupUnread, refillUnread, type CacheChange } from "./unread-cache";

export interface NotificationDeps {
  env: Env;
  clock: Clock;
  jobs: Jobs;
  store: TierStore;
  redis: Redis;
  logger: Logger;
  waitUntil(promise: Promise<unknown>): void;
  config: NotificationsConfig;
}

export interface Notification {
  id: string;
  tenantId: string;
  /** NULL: tenant-wide. */
  userId: string | null;
  type: string;
  title: string;
  message: string;
  data: unknown;
  channel: string;
  isRead: boolean;
  readAt: string | null;
  /** When the user was shown it (read implies seen); the badge counts unseen rows where the tenant chose so. */
  seenAt: string | null;
  /** Archived: out of the default list and of the badge, kept until retention. */
  archivedAt: string | null;
  createdAt: string;
  expiresAt: string | null;
}

const toNotification = (r: Record<string, unknown>): Notification => ({
  id: String(r.id),
  tenantId: String(r.tenant_id),
  userId: r.user_id === null ? null : String(r.user_id),
  type: String(r.type),
  title: String(r.title),
  message: String(r.message),
  data: r.data,
  channel: String(r.channel),
  isRead: Boolean(r.is_read),
  readAt: isoOrNull(r.read_at),
  seenAt: isoOrNull(r.seen_at),
  archivedAt: isoOrNull(r.archived_at),
  createdAt: isoTimestamp(r.created_at),
  expiresAt: isoOrNull(r.expires_at),
});

/** Visible in the center: not soft-deleted and not expired. */
const live = sql`n.deleted_at is null and (n.expires_at is null or n.expires_at > now())`;

/** A tenant-wide row is unread for a user until their receipt says read or deleted. */
const noReceipt = (scope: TenantScope) =>
  sql`not exists (select 1 from notification_receipts r where r.notification_id = n.id and r.user_id = ${scope.userId}
                  and (r.read_at is not null or r.deleted_at is not null))`;

/** What the tenant's badge counts: 'unread' (the default) or 'unseen'; an InitPlan, evaluated once per statement. */
const badgeMode = (tenantId: string): SQL =>
  sql`coalesce((select s.badge_counts from notification_tenant_settings s where s.tenant_id = ${tenantId}), 'unread')`;

/**
 * The rows the badge counts for one user (a parameter, or a column of an outer query): own unread rows, then
 * tenant-wide rows without the user's read, delete or archive receipt, all live and not archived; where the tenant
 * counts unseen rows, seen ones are left out too. Two index scans of idx_notifications_unread.
 */
const countedRows = (tenantId: string, userId: SQL | string): SQL => sql`
    select n.expires_at from notifications n
    where n.user_id = ${userId} and n.tenant_id = ${tenantId} and n.is_read = false and n.archived_at is null and ${live}
      and (n.seen_at is null or ${badgeMode(tenantId)} = 'unread')
    union all
    select n.expires_at from notifications n
    where n.user_id is null and n.tenant_id = ${tenantId} and n.is_read = false and ${live}
      and not exists (select 1 from notification_receipts r where r.notification_id = n.id and r.user_id = ${userId}
                      and (r.read_at is not null or r.deleted_at is not null or r.archived_at is not null
                           or (r.seen_at is not null and ${badgeMode(tenantId)} = 'unseen')))`;

/** The caller's unread count and the earliest expiry among the counted rows (the moment the count drops by itself). */
const unreadCountSql = (scope: TenantScope): SQL => sql`
  with counted as (${countedRows(scope.tenantId, scope.userId)})
  select count(*)::int as unread, min(expires_at) as next_expiry from counted`;

/** The same count for several users of a tenant in one statement (the live badge's recount). */
export async function unreadCounts(
  store: TierStore,
  tenantId: string,
  userIds: string[],
): Promise<Array<{ userId: string; unread: number; nextExpiry: string | null }>> {
  if (userIds.length === 0) return [];
  const [rows] = await internalBatch(store, "system", tenantId, (db) => [
    db.execute(sql`
      select u.id::text as user_id, c.unread, c.next_expiry
      from unnest(${idArray(userIds)}) as u(id)
      cross join lateral (select count(*)::int as unread, min(x.expires_at) as next_expiry from (${countedRows(tenantId, sql`u.id`)}) x) c`),
  ]);
  return rowsOf(rows).map((r) => ({ userId: String(r.user_id), unread: Number(r.unread), nextExpiry: isoOrNull(r.next_expiry) }));
}

const unreadOf = (result: unknown) => {
  const row = rowsOf(result)[0] ?? {};
  return { unread: Number(row.unread ?? 0), nextExpiry: isoOrNull(row.next_expiry) };
};

export interface ListInput {
  limit: number;
  cursor?: string | undefined;
  unreadOnly?: boolean | undefined;
  type?: string | undefined;
  /** false (the default): the inbox, without archived rows; true: the archive only. */
  archived?: boolean | undefined;
}

export interface NotificationPage {
  items: Notification[];
  nextCursor: string | null;
  /** The caller's overall unread count, from the same transaction: login needs one round trip. */
  unread: number;
}

/** Own and tenant-wide rows, newest first; each half is an ordered scan of idx_notifications_user_tenant_created. */
export async function listNotifications(deps: NotificationDeps, scope: TenantScope, input: ListInput): Promise<NotificationPage> {
  const cursor = input.cursor ? decodeCursor(input.cursor) : null;
  const take = input.limit + 1;
  const filters = (readColumn: SQL, archivedColumn: SQL) => sql.join(
    [
      input.archived ? sql` and ${archivedColumn} is not null` : sql` and ${archivedColumn} is null`,
      input.unreadOnly ? sql` and ${readColumn} = false` : sql``,
      input.type ? sql` and n.type = ${input.type}` : sql``,
      cursor
        ? sql` and n.created_at <= ${cursor.t}::timestamptz and (n.created_at < ${cursor.t}::timestamptz or n.id < ${cursor.id}::uuid)`
        : sql``,
    ],
    sql``,
  );
  const columns = sql`n.id, n.tenant_id, n.user_id, n.type, n.title, n.message, n.data, n.channel, n.created_at, n.expires_at,
    to_char(n.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at`;
  const page = sql`
    with own as (
      select ${columns}, n.is_read, n.read_at, n.seen_at, n.archived_at from notifications n
      where n.user_id = ${scope.userId} and n.tenant_id = ${scope.tenantId} and ${live} ${filters(sql`n.is_read`, sql`n.archived_at`)}
      order by n.created_at desc, n.id desc limit ${take}
    ), wide as (
      select ${columns}, (r.read_at is not null) as is_read, r.read_at, coalesce(r.seen_at, r.read_at) as seen_at, r.archived_at from notifications n
      left join notification_receipts r on r.notification_id = n.id and r.user_id = ${scope.userId}
      where n.user_id is null and n.tenant_id = ${scope.tenantId} and ${live} and r.deleted_at is null
        ${filters(sql`(r.read_at is not null)`, sql`r.archived_at`)}
      order by n.created_at desc, n.id desc limit ${take}
    )
    select * from (select * from own union all select * from wide) page
    order by created_at desc, id desc limit ${take}`;
  const [rows, count] = await tenantBatch(deps.store, scope, (db) => [db.execute(page), db.execute(unreadCountSql(scope))]);
  const all = rowsOf(rows);
  const items = all.slice(0, input.limit);
  const last = items.at(-1);
  return {
    items: items.map(toNotification),
    nextCursor: all.length > input.limit && last ? encodeCursor(String(last.cursor_at), String(last.id)) : null,
    unread: unreadOf(count).unread,
  };
}

/**
 * From the cache when it holds a valid count (1 Redis round trip, 0 Postgres). On a miss or a
 * Redis failure, 1 Postgres round trip; the refill happens after the response.
 */
/** The cache read of unreadCount on its own, for a caller that queues it beside its authorization (`reads`: its batch). */
export const unreadLookup = (deps: NotificationDeps, caller: { tenantId: string; userId: string }, reads: RedisReads = deps.redis): Promise<CacheLookup> =>
  lookupUnread(reads, caller.tenantId, caller.userId, deps.clock.now().getTime());

/** `started`: the cache read, already sent by the caller (unreadLookup); otherwise it is sent here. */
export async function unreadCount(deps: NotificationDeps, scope: TenantScope, started?: Promise<CacheLookup>): Promise<number> {
  let miss: { tv: string | null; uv: string | null } | null = null;
  try {
    const lookup = await (started ?? unreadLookup(deps, scope));
    if (lookup.hit) return lookup.unread;
    miss = { tv: lookup.tv, uv: lookup.uv };
  } catch (error) {
    deps.logger.warn("unread cache unavailable, reading Postgres", { error });
  }
  const [count] = await tenantBatch(deps.store, scope, (db) => [db.execute(unreadCountSql(scope))]);
  const { unread, nextExpiry } = unreadOf(count);
  // Without the tokens from a successful lookup a refill could not be proven fresh: skip it.
  if (miss) {
    const tokens = miss;
    deps.waitUntil(
      refillUnread(deps.redis, deps.config, scope, tokens, unread, nextExpiry, deps.clock.now().getTime()).catch((error: unknown) =>
        deps.logger.warn("unread cache refill failed", { error }),
      ),
    );
  }
  return unread;
}

export interface ReadStateResult {
  /** Rows whose state this call changed. */
  updated: number;
  /** The caller's unread count after the change, from the same transaction. */
  unread: number;
}

const idArray = (ids: string[]) => sql`array[${sql.join(ids.map((id) => sql`${id}`), sql`, `)}]::uuid[]`;

/**
 * The caller's live notifications among `ids`, and whether every id was one. The writes that
 * follow are conditioned on `found.complete`, so a list with any foreign, deleted or unknown id
 * changes nothing and answers NOT_FOUND.
 */
const targetsOf = (scope: TenantScope, ids: string[]) => sql`
  wanted as (select distinct unnest(${idArray(ids)}) as id),
  target as (
    select n.id, n.user_id from notifications n
    join wanted w on w.id = n.id
    left join notification_receipts r on r.notification_id = n.id and r.user_id = ${scope.userId}
    where n.tenant_id = ${scope.tenantId} and (n.user_id = ${scope.userId} or n.user_id is null) and ${live}
      and r.deleted_at is null
  ),
  found as (select count(*) = (select count(*) from wanted) as complete from target)`;

const outcome = sql`
  select (select complete from found) as complete,
         (select count(*)::int from own) + (select count(*)::int from wide) as updated,
         array(select id::text from wanted except select id::text from target) as missing`;

/** The caller's live notifications that match a filter (every one of a type, every one older than an instant). */
const filteredTargets = (scope: TenantScope, filter: BulkFilter) => sql`
  wanted as (select null::uuid as id where false),
  target as (
    select n.id, n.user_id from notifications n
    left join notification_receipts r on r.notification_id = n.id and r.user_id = ${scope.userId}
    where n.tenant_id = ${scope.tenantId} and (n.user_id = ${scope.userId} or n.user_id is null) and ${live}
      and r.deleted_at is null
      ${filter.type ? sql`and n.type = ${filter.type}` : sql``}
      ${filter.olderThan ? sql`and n.created_at < ${filter.olderThan}::timestamptz` : sql``}
  ),
  found as (select true as complete)`;

export type ReadAction = "read" | "unread" | "seen" | "archive" | "unarchive" | "delete";

export interface BulkFilter {
  type?: string | undefined;
  olderThan?: string | undefined;
}

const guarded = sql`(select complete from found)`;

/**
 * One action's two statements over `target`: own rows change in place; a tenant-wide row changes for this user
 * only, by receipt. Each returns only the rows it changed. Read implies seen; unread clears both.
 */
function actionStatements(scope: TenantScope, action: ReadAction): { own: SQL; wide: SQL } {
  const ownIds = sql`n.id in (select id from target where user_id is not null) and ${guarded}`;
  const wideIds = sql`r.user_id = ${scope.userId} and r.notification_id in (select id from target where user_id is null) and ${guarded}`;
  /** Sets `column` (and, for a read, `seen_at` if unset) on this user's receipt of each tenant-wide target. */
  const receipt = (column: SQL, onlyIf: SQL = sql`true`, alsoSeen = false) => sql`
    insert into notification_receipts (notification_id, tenant_id, user_id, ${column}${alsoSeen ? sql`, seen_at` : sql``})
    select id, ${scope.tenantId}, ${scope.userId}, now()${alsoSeen ? sql`, now()` : sql``} from target where user_id is null and ${guarded}
    on conflict (notification_id, user_id) do update
      set ${column} = now()${alsoSeen ? sql`, seen_at = coalesce(notification_receipts.seen_at, now())` : sql``}
      where ${onlyIf}
    returning notification_id`;
  switch (action) {
    case "read":
      return {
        own: sql`update notifications n set is_read = true, read_at = now(), seen_at = coalesce(n.seen_at, now())
                 where ${ownIds} and n.is_read = false returning n.id`,
        wide: receipt(sql`read_at`, sql`notification_receipts.read_at is null`, true),
      };
    case "unread":
      return {
        own: sql`update notifications n set is_read = false, read_at = null, seen_at = null
                 where ${ownIds} and (n.is_read or n.seen_at is not null) returning n.id`,
        wide: sql`update notification_receipts r set read_at = null, seen_at = null
                  where ${wideIds} and (r.read_at is not null or r.seen_at is not null) returning r.notification_id`,
      };
    case "seen":
      return {
        own: sql`update notifications n set seen_at = now() where ${ownIds} and n.seen_at is null returning n.id`,
        wide: receipt(sql`seen_at`, sql`notification_receipts.seen_at is null`),
      };
    case "archive":
      return {
        own: sql`update notifications n set archived_at = now() where ${ownIds} and n.archived_at is null returning n.id`,
        wide: receipt(sql`archived_at`, sql`notification_receipts.archived_at is null`),
      };
    case "unarchive":
      return {
        own: sql`update notifications n set archived_at = null where ${ownIds} and n.archived_at is not null returning n.id`,
        wide: sql`update notification_receipts r set archived_at = null where ${wideIds} and r.archived_at is not null returning r.notification_id`,
      };
    case "delete":
      return {
        own: sql`update notifications n set deleted_at = now() where ${ownIds} returning n.id`,
        wide: receipt(sql`deleted_at`),
      };
  }
}

async function applyAction(deps: NotificationDeps, scope: TenantScope, targets: SQL, action: ReadAction): Promise<ReadStateResult> {
  const { own, wide } = actionStatements(scope, action);
  const statement = sql`with ${targets}, own as (${own}), wide as (${wide}) ${outcome}`;
  const [changed, count] = await tenantBatch(deps.store, scope, (db) => [db.execute(statement), db.execute(unreadCountSql(scope))]);
  const row = rowsOf(changed)[0] ?? {};
  if (!row.complete) {
    throw new AppError("NOT_FOUND", "One or more notifications were not found", { details: { missing: row.missing ?? [] } });
  }
  const updated = Number(row.updated ?? 0);
  // The new exact count goes to the user's badge (and the cache) after the commit.
  if (updated > 0) invalidateLater(deps, [{ tenantId: scope.tenantId, userId: scope.userId }]);
  return { updated, unread: unreadOf(count).unread };
}

/** An action on the caller's notifications among `ids`: all or nothing (NOT_FOUND names the missing ids). */
export const changeState = (deps: NotificationDeps, scope: TenantScope, ids: string[], action: ReadAction) =>
  applyAction(deps, scope, targetsOf(scope, [...new Set(ids)]), action);

/** An action on every live notification of the caller that matches the filter (a type, older than an instant, or both). */
export const changeStateByFilter = (deps: NotificationDeps, scope: TenantScope, filter: BulkFilter, action: ReadAction) =>
  applyAction(deps, scope, filteredTargets(scope, filter), action);

export const markRead = (deps: NotificationDeps, scope: TenantScope, ids: string[]) => changeState(deps, scope, ids, "read");
export const markUnread = (deps: NotificationDeps, scope: TenantScope, ids: string[]) => changeState(deps, scope, ids, "unread");
/** Soft delete: own rows get deleted_at; a tenant-wide row is deleted for this user only, by receipt. */
export const deleteNotifications = (deps: NotificationDeps, scope: TenantScope, ids: string[]) => changeState(deps, scope, ids, "delete");

export async function markAllRead(deps: NotificationDeps, scope: TenantScope): Promise<ReadStateResult> {
  const statement = sql`
    with own as (
      update notifications n set is_read = true, read_at = now(), seen_at = coalesce(n.seen_at, now())
      where n.user_id = ${scope.userId} and n.tenant_id = ${scope.tenantId} and n.is_read = false and ${live}
      returning n.id
    ), wide as (
      insert into notification_receipts (notification_id, tenant_id, user_id, read_at, seen_at)
      select n.id, n.tenant_id, ${scope.userId}, now(), now() from notifications n
      where n.user_id is null and n.tenant_id = ${scope.tenantId} and n.is_read = false and ${live} and ${noReceipt(scope)}
      on conflict (notification_id, user_id) do update set read_at = now(), seen_at = coalesce(notification_receipts.seen_at, now())
      returning notification_id
    )
    select (select count(*)::int from own) + (select count(*)::int from wide) as updated`;
  const [changed, count] = await tenantBatch(deps.store, scope, (db) => [db.execute(statement), db.execute(unreadCountSql(scope))]);
  const updated = Number(rowsOf(changed)[0]?.updated ?? 0);
  if (updated > 0) invalidateLater(deps, [{ tenantId: scope.tenantId, userId: scope.userId }]);
  return { updated, unread: unreadOf(count).unread };
}

export interface CreateNotificationInput {
  /** Omitted or null: every member of the tenant. */
  userId?: string | null | undefined;
  type: string;
  title: string;
  message: string;
  data?: Record<string, unknown> | undefined;
  channel: "in_app" | "email" | "push";
  expiresAt?: string | undefined;
}

/** Who creates: a caller (admin) in their tenant, or internal code acting for a tenant. */
export type Creator = TenantScope | { role: "system"; tenantId: string };

/**
 * Rate limits first (Redis), then, in one statement: the notification; for email its outbox row, for push one per
 * push subscription of the recipient, unless the recipient's preferences (or the tenant's defaults) turn that
 * channel off for this type; and one
 * webhook outbox row per enabled endpoint of the tenant subscribed to the type. A notification never exists
 * without its deliveries. The jobs are sent after the commit.
 */
export async function createNotification(
  deps: NotificationDeps,
  creator: Creator,
  input: CreateNotificationInput,
): Promise<Notification> {
  const tenantId = creator.tenantId;
  const recipient = input.userId ?? null;
  if (input.expiresAt && Date.parse(input.expiresAt) <= deps.clock.now().getTime()) {
    throw new AppError("VALIDATION_FAILED", "expiresAt must be in the future", {
      details: [{ path: "expiresAt", message: "must be in the future" }],
    });
  }
  if (!channelConfigured(deps.env, input.channel)) {
    throw new AppError("VALIDATION_FAILED", `The ${input.channel} channel has no provider configured in this deployment; use in_app`, {
      details: [{ path: "channel", message: "no provider configured in this deployment" }],
    });
  }
  if (input.channel === "email" && !recipient) {
    throw new AppError("VALIDATION_FAILED", "An email notification needs a userId: tenant-wide notifications are not emailed", {
      details: [{ path: "userId", message: "required for the email channel" }],
    });
  }
  const data = boundedJson(input.data, deps.config.maxNotificationDataBytes, "data");
  const { perRecipient, perTenant } = deps.config.limits;
  await enforceLimits(deps.redis, deps.logger, [
    { name: "notifications:recipient", prefix: recipientLimit.prefix, identifier: recipientLimit.identifier(tenantId, recipient), setting: perRecipient, whenRedisDown: "open" },
    { name: "notifications:tenant", prefix: "notif:rl:tenant", identifier: tenantId, setting: perTenant, whenRedisDown: "open" },
  ]);
  const statement = sql`
    with n as (
      insert into notifications (tenant_id, user_id, type, title, message, data, channel, expires_at)
      values (${tenantId}, ${recipient}, ${input.type}, ${input.title}, ${input.message},
              ${data}::jsonb, ${input.channel}, ${input.expiresAt ?? null}::timestamptz)
      returning *
    ), pref as (
      -- The most specific setting wins: the user's for this type, the user's for every type ('*'),
      -- the tenant's default for this type, for every type. No setting: delivered.
      select p.enabled from notification_preferences p join n on p.tenant_id = n.tenant_id
      where p.channel = n.channel and p.type in (n.type, '*') and (p.user_id = n.user_id or p.user_id is null)
      order by (p.user_id is null), (p.type = '*') limit 1
    ), dg as (
      -- The recipient's email digest, if any; security notices are never held for one.
      select d.window_minutes from notification_digest_settings d join n on d.tenant_id = n.tenant_id and d.user_id = n.user_id
      where d.channel = 'email' and n.channel = 'email' and n.type not like 'security.%'
    ), o as (
      insert into notification_outbox (notification_id, tenant_id, channel)
      select id, tenant_id, channel from n
      where channel = 'email' and coalesce((select enabled from pref), true) and not exists (select 1 from dg)
      returning id
    ), held as (
      -- Held for the digest window that contains now (windows aligned to the epoch), by the services clock.
      insert into notification_digest_items (notification_id, tenant_id, user_id, channel, window_end)
      select n.id, n.tenant_id, n.user_id, 'email',
             date_bin(make_interval(mins => dg.window_minutes), ${deps.clock.now().toISOString()}::timestamptz, timestamptz '1970-01-01 00:00:00+00')
               + make_interval(mins => dg.window_minutes)
      from n cross join dg where coalesce((select enabled from pref), true)
      returning notification_id
    ), pushed as (
      -- Push: one delivery per subscription of the recipient (of every member, for a tenant-wide one), each
      -- subscriber's own preference first, then the tenant's default.
      insert into notification_outbox (notification_id, tenant_id, channel, endpoint_id)
      select n.id, n.tenant_id, 'push', s.id from n
      join notification_push_subscriptions s on s.tenant_id = n.tenant_id and (n.user_id is null or s.user_id = n.user_id)
      where n.channel = 'push' and coalesce((
        select p.enabled from notification_preferences p
        where p.tenant_id = n.tenant_id and p.channel = 'push' and p.type in (n.type, '*') and (p.user_id = s.user_id or p.user_id is null)
        order by (p.user_id is null), (p.type = '*') limit 1), true)
      returning id
    ), w as (
      insert into notification_outbox (notification_id, tenant_id, channel, endpoint_id)
      select n.id, n.tenant_id, 'webhook', e.id from n join notification_webhook_endpoints e on e.tenant_id = n.tenant_id
      where e.enabled and (e.types is null or n.type = any(e.types))
      returning id
    )
    select n.*, array(select id::text from o union all select id::text from pushed union all select id::text from w) as outbox_ids from n`;
  const [inserted] =
    creator.role === "system"
      ? await internalBatch(deps.store, "system", tenantId, (db) => [db.execute(statement)])
      : await tenantBatch(deps.store, creator, (db) => [db.execute(statement)]);
  const row = rowsOf(inserted)[0];
  if (!row) throw new AppError("INTERNAL", "The notification was not stored");
  const notification = toNotification(row);
  const outboxIds = Array.isArray(row.outbox_ids) ? row.outbox_ids.map(String) : [];
  if (outboxIds.length > 0) {
    deps.jobs.sendAfterResponse(outboxIds.map((outboxId) => deliveryMessage(deps.jobs, { outboxId, notificationId: notification.id, tenantId })));
  }
  const change: CacheChange = { tenantId, userId: recipient };
  invalidateLater(deps, [change]);
  return notification;
}
