// Tenant services: reads and writes of the tenant row itself, always under the tenant's own context.
import { desc, eq } from "drizzle-orm";
import type { Services } from "../../../platform/services";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { subscriptions, tenants, usageCounters } from "../schema";

export type Tenant = typeof tenants.$inferSelect;

export async function getCurrentTenant(store: TierStore, scope: TenantScope): Promise<Tenant> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select().from(tenants).where(eq(tenants.id, scope.tenantId)).limit(1),
  ]);
  const tenant = rows[0];
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  return tenant;
}

export async function renameTenant(services: Services, scope: TenantScope, name: string): Promise<Tenant> {
  const audit = services.audit.action(scope, "tenant.rename", { type: "tenant", id: scope.tenantId }, { name });
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.update(tenants).set({ name }).where(eq(tenants.id, scope.tenantId)).returning(),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  const tenant = rows[0];
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  return tenant;
}

export type Subscription = typeof subscriptions.$inferSelect;
export type UsageCounter = typeof usageCounters.$inferSelect;

/** The current subscription and the last twelve months of usage: two statements, one round trip. */
export async function getBilling(
  store: TierStore,
  scope: TenantScope,
): Promise<{ subscription: Subscription | null; usage: UsageCounter[] }> {
  const [subscription, usage] = await tenantBatch(store, scope, (db) => [
    db
      .select()
      .from(subscriptions)
      .where(eq(subscriptions.tenantId, scope.tenantId))
      .orderBy(desc(subscriptions.periodStart))
      .limit(1),
    db
      .select()
      .from(usageCounters)
      .where(eq(usageCounters.tenantId, scope.tenantId))
      .orderBy(desc(usageCounters.periodStart))
      .limit(12),
  ]);
  return { subscription: subscription[0] ?? null, usage };
}
