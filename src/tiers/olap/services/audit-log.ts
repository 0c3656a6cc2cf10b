// admin_audit_log: the RECORD_AUDIT job's idempotent insert, and the paged read behind analytics.auditLog.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { decodeCursor, encodeCursor } from "../../../platform/paging";
import type { AuditPayload } from "../jobs";
import { monthStart } from "./partitions";

/**
 * One OLAP round trip for any number of entries: their months' partitions (an entry may wait out a long outage and
 * land in a month the cron has not prepared), then one insert keyed by each job's id: a redelivery inserts nothing.
 * Returns how many were new.
 */
export async function writeAuditEntries(olap: TierStore, entries: Array<{ id: string; entry: AuditPayload }>): Promise<number> {
  if (entries.length === 0) return 0;
  const months = entries.map(({ entry }) => monthStart(new Date(entry.occurredAt))).sort();
  const rows = entries.map(({ id, entry }) => ({
    id,
    occurred_at: entry.occurredAt,
    tenant_id: entry.tenantId,
    actor_id: entry.actorId,
    actor_role: entry.actorRole,
    actor_tenant_id: entry.actorTenantId,
    action: entry.action,
    target_type: entry.targetType,
    target_id: entry.targetId,
    ip: entry.ip,
    user_agent: entry.userAgent,
    request_id: entry.requestId,
    details: entry.details,
  }));
  const [, inserted] = await internalBatch(olap, "analytics", null, (db) => [
    db.execute(sql`select olap_ensure_partitions('admin_audit_log', ${months[0]!}::date, ${months[months.length - 1]!}::date)`),
    db.execute(sql`
      insert into admin_audit_log (id, occurred_at, tenant_id, actor_id, actor_role, actor_tenant_id, action,
                                   target_type, target_id, ip, user_agent, request_id, details)
      select id, occurred_at, tenant_id, actor_id, actor_role, actor_tenant_id, action, target_type, target_id, ip,
             user_agent, request_id, coalesce(details, '{}'::jsonb)
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id uuid, occurred_at timestamptz, tenant_id uuid,
        actor_id text, actor_role text, actor_tenant_id uuid, action text, target_type text, target_id text, ip text,
        user_agent text, request_id text, details jsonb)
      on conflict do nothing`),
  ]);
  return (inserted as { rowCount?: number }).rowCount ?? 0;
}

export interface AuditLogEntry {
  id: string;
  occurredAt: string;
  tenantId: string | null;
  actor: { id: string; role: string; tenantId: string | null };
  action: string;
  target: { type: string; id: string | null };
  origin: { ip: string | null; userAgent: string | null; requestId: string | null };
  details: Record<string, unknown>;
}

export interface AuditLogFilter {
  limit: number;
  cursor?: string | undefined;
  /** Operators only: one tenant's entries. Tenant admins always read their own tenant's. */
  tenantId?: string | undefined;
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

const iso = (value: unknown) => new Date(String(value)).toISOString();

/**
 * Newest first, keyset-paged on (occurred_at, id): one OLAP round trip. The tenant wall is here and
 * again in the policies (admins read their tenant's rows, operators every row).
 */
export async function listAuditLog(store: TierStore, scope: TenantScope, filter: AuditLogFilter): Promise<{ items: AuditLogEntry[]; nextCursor: string | null }> {
  if (scope.role !== "operator" && filter.tenantId !== undefined && filter.tenantId !== scope.tenantId) {
    throw new AppError("FORBIDDEN", "Tenant admins read their own tenant's audit log only");
  }
  const tenant = scope.role === "operator" ? filter.tenantId : scope.tenantId;
  const conditions: SQL[] = [sql`true`];
  if (tenant !== undefined) conditions.push(sql`tenant_id = ${tenant}`);
  if (filter.action) conditions.push(sql`action = ${filter.action}`);
  if (filter.targetType) conditions.push(sql`target_type = ${filter.targetType}`);
  if (filter.targetId) conditions.push(sql`target_id = ${filter.targetId}`);
  if (filter.from) conditions.push(sql`occurred_at >= ${filter.from}::timestamptz`);
  if (filter.to) conditions.push(sql`occurred_at < ${filter.to}::timestamptz`);
  if (filter.cursor) {
    const position = decodeCursor(filter.cursor);
    conditions.push(sql`(occurred_at, id) < (${position.t}::timestamptz, ${position.id}::uuid)`);
  }
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute<Record<string, unknown>>(sql`
      select * from admin_audit_log where ${sql.join(conditions, sql` and `)}
      order by occurred_at desc, id desc limit ${filter.limit + 1}`),
  ]);
  const items = result.rows.slice(0, filter.limit).map(
    (r): AuditLogEntry => ({
      id: String(r.id),
      occurredAt: iso(r.occurred_at),
      tenantId: r.tenant_id === null ? null : String(r.tenant_id),
      actor: { id: String(r.actor_id), role: String(r.actor_role), tenantId: r.actor_tenant_id === null ? null : String(r.actor_tenant_id) },
      action: String(r.action),
      target: { type: String(r.target_type), id: r.target_id === null ? null : String(r.target_id) },
      origin: { ip: (r.ip as string | null) ?? null, userAgent: (r.user_agent as string | null) ?? null, requestId: (r.request_id as string | null) ?? null },
      details: (r.details as Record<string, unknown>) ?? {},
    }),
  );
  const last = items.at(-1);
  return {
    items,
    nextCursor: result.rows.length > filter.limit && last ? encodeCursor(last.occurredAt, last.id) : null,
  };
}
