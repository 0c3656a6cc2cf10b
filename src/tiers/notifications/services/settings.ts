// A tenant's notification settings: what its badge counts (unread, the default, or unseen).
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { rowsOf } from "../../../platform/rows";
import type { NotificationDeps } from "./notifications";
import { invalidateLater } from "./unread-cache";

export interface TenantNotificationSettings {
  badgeCounts: "unread" | "unseen";
}

export async function getTenantSettings(deps: Pick<NotificationDeps, "store">, scope: TenantScope): Promise<TenantNotificationSettings> {
  const [rows] = await tenantBatch(deps.store, scope, (db) => [
    db.execute(sql`select badge_counts from notification_tenant_settings where tenant_id = ${scope.tenantId}`),
  ]);
  return { badgeCounts: (rowsOf(rows)[0]?.badge_counts as TenantNotificationSettings["badgeCounts"] | undefined) ?? "unread" };
}

/** Admins only. Every member's count changes meaning: the cache is invalidated tenant-wide and every open badge recounts. */
export async function setTenantSettings(deps: NotificationDeps, scope: TenantScope, settings: TenantNotificationSettings): Promise<TenantNotificationSettings> {
  if (scope.role !== "admin" && scope.role !== "operator") throw new AppError("FORBIDDEN", "Only admins change the tenant's notification settings");
  await tenantBatch(deps.store, scope, (db) => [
    db.execute(sql`
      insert into notification_tenant_settings (tenant_id, badge_counts) values (${scope.tenantId}, ${settings.badgeCounts})
      on conflict (tenant_id) do update set badge_counts = excluded.badge_counts, updated_at = now()`),
  ]);
  invalidateLater(deps, [{ tenantId: scope.tenantId, userId: null }]);
  return settings;
}
