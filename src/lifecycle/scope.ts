// Cross-tenant lifecycle work as one transaction under an internal role context ('lifecycle' in OLTP, 'system' / 'analytics' elsewhere).
import { sql } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { mapDbError, type TierStore } from "../core/db";

type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/** Like tenantBatch, for internal roles no token can carry; the tenant is set only when the work is one tenant's. */
export async function internalBatch<T extends NonEmptyBatch>(
  store: TierStore,
  role: "lifecycle" | "system" | "analytics" | "maintenance",
  tenantId: string | null,
  build: (db: NeonHttpDatabase) => T,
): Promise<BatchResponse<T>> {
  try {
    const [, ...results] = await store.db.batch([
      store.db.execute(sql`select set_config('app.current_tenant_id', ${tenantId ?? ""}, true),
                                  set_config('app.current_user_id', '', true),
                                  set_config('app.current_role', ${role}, true)`),
      ...build(store.db),
    ]);
    return results as BatchResponse<T>;
  } catch (error) {
    throw mapDbError(store.tier, error);
  }
}

export const rowsOf = (result: unknown): Record<string, unknown>[] => (result as { rows: Record<string, unknown>[] }).rows;
