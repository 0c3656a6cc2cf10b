// Tenant services: reads and writes of the tenant row itself, always under the tenant's own context.
import { eq } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../core/db";
import { AppError } from "../../../core/errors";
import { tenants } from "../schema";

export type Tenant = typeof tenants.$inferSelect;

export async function getCurrentTenant(store: TierStore, scope: TenantScope): Promise<Tenant> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select().from(tenants).where(eq(tenants.id, scope.tenantId)).limit(1),
  ]);
  const tenant = rows[0];
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  return tenant;
}

export async function renameTenant(store: TierStore, scope: TenantScope, name: string): Promise<Tenant> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.update(tenants).set({ name }).where(eq(tenants.id, scope.tenantId)).returning(),
  ]);
  const tenant = rows[0];
  if (!tenant) throw new AppError("NOT_FOUND", "Tenant not found");
  return tenant;
}
