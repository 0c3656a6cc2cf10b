// Operator provisioning: create a tenant with its first admin and defaults, list and inspect tenants, suspend and
// reactivate them. Every change is audited in its own transaction and takes effect on the next request.
import { and, desc, eq, sql } from "drizzle-orm";
import { actorOf } from "../../../platform/emitters";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { afterCursor, toPage, type Page } from "../../../platform/paging";
import type { Services } from "../../../platform/services";
import { type PlanName, planOf } from "../plans";
import { tenants, users } from "../schema";
import { withAccessChange } from "./access";

export type Tenant = typeof tenants.$inferSelect;

export interface ProvisionInput {
  name: string;
  plan: PlanName;
  admin: { email: string; name?: string | undefined };
  /** The operator's idempotency key: the same key returns the tenant it first created. */
  clientKey: string;
}

export interface Provisioned {
  tenant: Tenant;
  admin: { id: string; email: string };
  /** false: this client key had already provisioned the tenant, which is returned unchanged. */
  created: boolean;
}

/** The scope an operator acts in on one tenant: the tenant's context, the operator's identity and role. */
const operatorOn = (operator: TenantScope, tenantId: string): TenantScope => ({ tenantId, userId: operator.userId, role: "operator" });

const trialDays = 14;

/**
 * One OLTP transaction: the tenant with its plan's limits, its first admin, a trialing subscription and the audit
 * entry. A repeated client key inserts nothing (the conflict is on the key) and the same transaction reads back
 * the tenant that key created, with its first admin.
 */
export async function provisionTenant(services: Services, operator: TenantScope, input: ProvisionInput): Promise<Provisioned> {
  const id = crypto.randomUUID();
  const adminId = crypto.randomUUID();
  const email = input.admin.email.toLowerCase();
  const plan = planOf(input.plan);
  const scope = operatorOn(operator, id);
  const now = services.clock.now();
  const inserted = sql`exists (select 1 from ${tenants} where ${tenants.id} = ${id})`;
  const audit = services.audit.prepare(
    scope,
    { actor: actorOf(operator), action: "tenant.create", target: { type: "tenant", id }, tenantId: id, details: { plan: input.plan, adminId } },
    inserted,
  );
  const [created, , , , , existing, firstAdmin] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .insert(tenants)
      .values({
        id,
        name: input.name,
        plan: input.plan,
        dailySendLimit: plan.dailySends,
        maxMailboxes: plan.mailboxes,
        maxSeats: plan.seats,
        maxStorageBytes: plan.storageBytes,
        provisioningKey: input.clientKey,
      })
      .onConflictDoNothing({ target: tenants.provisioningKey })
      .returning(),
    db.execute(sql`insert into users (id, tenant_id, email, name, role)
                   select ${adminId}, ${id}, ${email}, ${input.admin.name ?? null}, 'admin' where ${inserted}`),
    db.execute(sql`insert into subscriptions (tenant_id, plan, status, seats, period_start, period_end)
                   select ${id}, ${input.plan}, 'trialing', ${plan.seats}, ${now.toISOString()}::timestamptz,
                          ${now.toISOString()}::timestamptz + make_interval(days => ${trialDays})
                   where ${inserted}`),
    audit.insert(db),
    // A repeat: the existing tenant becomes this transaction's context (operators may read every tenant row).
    db.execute(sql`select set_config('app.current_tenant_id', (select id::text from tenants where provisioning_key = ${input.clientKey}), true)`),
    db.select().from(tenants).where(eq(tenants.provisioningKey, input.clientKey)),
    db.execute(sql`select id, email from users where tenant_id = (select id from tenants where provisioning_key = ${input.clientKey})
                   and role = 'admin' order by created_at, id limit 1`),
  ]);
  audit.sendAfterCommit();
  const tenant = created[0] ?? existing[0];
  const admin = firstAdmin.rows[0] as { id: string; email: string } | undefined;
  if (!tenant || !admin) throw new AppError("INTERNAL", "Provisioning left no tenant behind");
  return { tenant, admin: { id: String(admin.id), email: String(admin.email) }, created: created.length > 0 };
}

export async function listTenants(
  services: Services,
  operator: TenantScope,
  filter: { status?: Tenant["status"] | undefined; cursor?: string | undefined; limit: number },
): Promise<Page<Tenant>> {
  const [rows] = await tenantBatch(services.store("oltp"), operator, (db) => [
    db
      .select()
      .from(tenants)
      .where(and(filter.status ? eq(tenants.status, filter.status) : undefined, afterCursor(tenants.createdAt, tenants.id, filter.cursor)))
      .orderBy(desc(tenants.createdAt), desc(tenants.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

export interface TenantDetail extends Tenant {
  members: number;
  admins: number;
}

export async function getTenant(services: Services, operator: TenantScope, id: string): Promise<TenantDetail> {
  const [rows, counts] = await tenantBatch(services.store("oltp"), operatorOn(operator, id), (db) => [
    db.select().from(tenants).where(eq(tenants.id, id)),
    db.execute(sql`select count(*)::int as members, count(*) filter (where role = 'admin')::int as admins from ${users} where tenant_id = ${id}`),
  ]);
  const tenant = rows[0];
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  const c = counts.rows[0] as { members: number; admins: number };
  return { ...tenant, members: Number(c.members), admins: Number(c.admins) };
}

/**
 * Suspend or reactivate: every member and API key of the tenant is refused (or admitted again) on its next
 * request, and SEND_EMAIL defers the tenant's sends while it is not active. Reactivating a closing tenant
 * (still in its grace period) cancels the closure; a closed tenant (its erasure has begun) stays closed.
 */
export async function setTenantStatus(
  services: Services,
  operator: TenantScope,
  id: string,
  status: "active" | "suspended",
  reason?: string,
): Promise<Tenant> {
  const scope = operatorOn(operator, id);
  const changed = sql`exists (select 1 from ${tenants} where ${tenants.id} = ${id} and ${tenants.status} = ${status})`;
  const action = status === "suspended" ? "tenant.suspend" : "tenant.reactivate";
  const audit = services.audit.prepare(
    scope,
    { actor: actorOf(operator), action, target: { type: "tenant", id }, tenantId: id, details: reason ? { reason } : {} },
    changed,
  );
  // Suspending applies to an active tenant; reactivating to a suspended or closing one.
  const from = status === "suspended" ? sql`${tenants.status} = 'active'` : sql`${tenants.status} in ('suspended', 'closing')`;
  const tenant = await withAccessChange(services, id, async () => {
    const [updated, existing] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db
        .update(tenants)
        .set({ status, statusChangedAt: sql`now()`, closeAfter: null })
        .where(and(eq(tenants.id, id), from))
        .returning(),
      db.select().from(tenants).where(eq(tenants.id, id)),
      audit.insert(db),
    ]);
    const row = updated[0] ?? existing[0];
    return { result: row, changes: row ? { tenantStatus: row.status, productEventsOptOut: row.productEventsOptOut } : {} };
  });
  audit.sendAfterCommit();
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  if (tenant.status === "closed") throw new AppError("CONFLICT", "The tenant is closed: its erasure has begun");
  if (tenant.status === "closing" && status === "suspended") {
    throw new AppError("CONFLICT", "The tenant is closing; reactivate it to cancel the closure");
  }
  return tenant;
}

/**
 * Close: the tenant is refused like a suspended one at once, and after the grace period
 * (TENANT_CLOSE_GRACE_DAYS, from this call's time) the lifecycle's closure cron erases it from every tier.
 * Until then `reactivate` restores it. Closing again during the grace changes nothing (the first date stands).
 */
export async function closeTenant(services: Services, operator: TenantScope, id: string, reason?: string): Promise<Tenant> {
  const scope = operatorOn(operator, id);
  const closeAfter = new Date(services.clock.now().getTime() + services.env.TENANT_CLOSE_GRACE_DAYS * 86_400_000);
  const audit = services.audit.prepare(
    scope,
    {
      actor: actorOf(operator),
      action: "tenant.close",
      target: { type: "tenant", id },
      tenantId: id,
      details: { closeAfter: closeAfter.toISOString(), ...(reason ? { reason } : {}) },
    },
    sql`exists (select 1 from ${tenants} where ${tenants.id} = ${id} and ${tenants.closeAfter} = ${closeAfter.toISOString()}::timestamptz)`,
  );
  const tenant = await withAccessChange(services, id, async () => {
    const [updated, existing] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db
        .update(tenants)
        .set({ status: "closing", statusChangedAt: sql`now()`, closeAfter })
        .where(and(eq(tenants.id, id), sql`${tenants.status} in ('active', 'suspended')`))
        .returning(),
      db.select().from(tenants).where(eq(tenants.id, id)),
      audit.insert(db),
    ]);
    const row = updated[0] ?? existing[0];
    return { result: row, changes: row ? { tenantStatus: row.status, productEventsOptOut: row.productEventsOptOut } : {} };
  });
  audit.sendAfterCommit();
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  if (tenant.status === "closed") throw new AppError("CONFLICT", "The tenant is closed: its erasure has begun");
  return tenant;
}
