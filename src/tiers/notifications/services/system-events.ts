// The admin incident board: create (with de-duplication), list, resolve and reopen system events.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import type { NotificationsConfig } from "../config";
import type { Severity, SystemEventInput } from "../../../platform/emitters";
import { boundedJson, isoOrNull, isoTimestamp, rowsOf } from "../../../platform/rows";
import { decodeCursor, encodeCursor } from "../../../platform/paging";

export type { Severity };

export interface SystemEvent {
  id: string;
  eventType: string;
  severity: Severity;
  tenantId: string | null;
  userId: string | null;
  description: string;
  details: unknown;
  isResolved: boolean;
  resolvedAt: string | null;
  resolvedBy: string | null;
  createdAt: string;
  dedupKey: string | null;
  occurrences: number;
  lastSeenAt: string;
}

const toSystemEvent = (r: Record<string, unknown>): SystemEvent => ({
  id: String(r.id),
  eventType: String(r.event_type),
  severity: r.severity as Severity,
  tenantId: r.tenant_id === null ? null : String(r.tenant_id),
  userId: r.user_id === null ? null : String(r.user_id),
  description: String(r.description),
  details: r.details,
  isResolved: Boolean(r.is_resolved),
  resolvedAt: isoOrNull(r.resolved_at),
  resolvedBy: r.resolved_by === null ? null : String(r.resolved_by),
  createdAt: isoTimestamp(r.created_at),
  dedupKey: r.dedup_key === null ? null : String(r.dedup_key),
  occurrences: Number(r.occurrences),
  lastSeenAt: isoTimestamp(r.last_seen_at),
});

export type { SystemEventInput };

export interface RaisedEvent {
  event: SystemEvent;
  /** True when this call counted a repeat of an open event instead of creating one. */
  deduplicated: boolean;
}

/**
 * One statement: a new row, or (same open dedup key) a repeat counted on the open row.
 * `xmax = 0` tells the two apart: it is zero only for a freshly inserted row.
 */
const raiseSql = (input: SystemEventInput, tenantId: string | null, details: string): SQL => sql`
  insert into admin_system_events (event_type, severity, tenant_id, user_id, description, details, dedup_key)
  values (${input.eventType}, ${input.severity}, ${tenantId}, ${input.userId ?? null}, ${input.description},
          ${details}::jsonb, ${input.dedupKey ?? null})
  on conflict (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), dedup_key)
    where is_resolved = false and dedup_key is not null
  do update set occurrences = admin_system_events.occurrences + 1, last_seen_at = now(),
                details = excluded.details, description = excluded.description,
                severity = excluded.severity
  returning *, (xmax <> 0) as deduplicated`;

const raisedOf = (result: unknown): RaisedEvent => {
  const row = rowsOf(result)[0];
  if (!row) throw new AppError("INTERNAL", "The system event was not stored");
  return { event: toSystemEvent(row), deduplicated: Boolean(row.deduplicated) };
};

/**
 * For admins and operators through the API. A tenant admin records events of their own tenant
 * only; operators may name any tenant, or none for a platform-wide event.
 */
export async function createSystemEvent(
  store: TierStore,
  config: NotificationsConfig,
  scope: TenantScope,
  input: SystemEventInput,
): Promise<RaisedEvent> {
  const details = boundedJson(input.details, config.systemEvents.maxDetailsBytes, "details");
  // An operator's own tenant claim is the staff organisation, so an unnamed tenant means platform-wide.
  const tenantId = scope.role === "operator" ? (input.tenantId ?? null) : scope.tenantId;
  if (scope.role !== "operator" && input.tenantId !== undefined && input.tenantId !== scope.tenantId) {
    throw new AppError("FORBIDDEN", "Tenant admins record events of their own tenant only");
  }
  const [result] = await tenantBatch(store, scope, (db) => [db.execute(raiseSql(input, tenantId, details))]);
  return raisedOf(result);
}

/**
 * For jobs and services when a high-signal condition occurs (a dead letter, a tier going down).
 * Give a `dedupKey` naming the condition: an ongoing incident stays one open row whose
 * `occurrences` and `last_seen_at` move, however often it is raised.
 */
export async function raiseSystemEvent(
  store: TierStore,
  config: NotificationsConfig,
  input: SystemEventInput & { dedupKey: string },
): Promise<RaisedEvent> {
  const details = boundedJson(input.details, config.systemEvents.maxDetailsBytes, "details");
  const tenantId = input.tenantId ?? null;
  const [result] = await internalBatch(store, "system", tenantId, (db) => [db.execute(raiseSql(input, tenantId, details))]);
  return raisedOf(result);
}

export interface SystemEventFilter {
  limit: number;
  cursor?: string | undefined;
  severity?: Severity[] | undefined;
  eventType?: string | undefined;
  resolved?: boolean | undefined;
  from?: string | undefined;
  to?: string | undefined;
  /** Operators only: a tenant, or null for platform-wide events. Tenant admins always get their own. */
  tenantId?: string | null | undefined;
}

export interface SystemEventPage {
  items: SystemEvent[];
  nextCursor: string | null;
}

export async function listSystemEvents(store: TierStore, scope: TenantScope, filter: SystemEventFilter): Promise<SystemEventPage> {
  const cursor = filter.cursor ? decodeCursor(filter.cursor) : null;
  if (scope.role !== "operator" && filter.tenantId !== undefined && filter.tenantId !== scope.tenantId) {
    throw new AppError("FORBIDDEN", "Tenant admins see their own tenant's events only");
  }
  const tenant = scope.role === "operator" ? filter.tenantId : scope.tenantId;
  const conditions: SQL[] = [sql`true`];
  if (tenant === null) conditions.push(sql`e.tenant_id is null`);
  else if (tenant !== undefined) conditions.push(sql`e.tenant_id = ${tenant}`);
  if (filter.severity?.length) conditions.push(sql`e.severity in (${sql.join(filter.severity.map((s) => sql`${s}`), sql`, `)})`);
  if (filter.eventType) conditions.push(sql`e.event_type = ${filter.eventType}`);
  if (filter.resolved !== undefined) conditions.push(sql`e.is_resolved = ${filter.resolved}`);
  if (filter.from) conditions.push(sql`e.created_at >= ${filter.from}::timestamptz`);
  if (filter.to) conditions.push(sql`e.created_at < ${filter.to}::timestamptz`);
  if (cursor) {
    conditions.push(
      sql`e.created_at <= ${cursor.t}::timestamptz and (e.created_at < ${cursor.t}::timestamptz or e.id < ${cursor.id}::uuid)`,
    );
  }
  const take = filter.limit + 1;
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      select e.*, to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
      from admin_system_events e
      where ${sql.join(conditions, sql` and `)}
      order by e.created_at desc, e.id desc
      limit ${take}`),
  ]);
  const rows = rowsOf(result);
  const items = rows.slice(0, filter.limit);
  const last = items.at(-1);
  return {
    items: items.map(toSystemEvent),
    nextCursor: rows.length > filter.limit && last ? encodeCursor(String(last.cursor_at), String(last.id)) : null,
  };
}

/**
 * Idempotent: resolving a resolved event keeps its first resolved_at and resolved_by; reopening
 * an open one changes nothing. Another tenant's event is NOT_FOUND (RLS hides it).
 */
export async function setSystemEventResolved(
  store: TierStore,
  scope: TenantScope,
  id: string,
  resolved: boolean,
): Promise<SystemEvent> {
  const change = resolved
    ? sql`is_resolved = true,
          resolved_at = case when is_resolved then resolved_at else now() end,
          resolved_by = case when is_resolved then resolved_by else ${scope.userId}::uuid end`
    : sql`is_resolved = false, resolved_at = null, resolved_by = null`;
  const tenantWall = scope.role === "operator" ? sql`` : sql` and tenant_id = ${scope.tenantId}`;
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`update admin_system_events set ${change} where id = ${id}${tenantWall} returning *`),
  ]);
  const row = rowsOf(result)[0];
  if (!row) throw new AppError("NOT_FOUND", "System event not found");
  return toSystemEvent(row);
}
