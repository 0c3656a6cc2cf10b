// Internal work (consumer, relay, retention, raised events) as one transaction under the 'system' role.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { mapDbError, type TierStore } from "../../../core/db";
import { systemRole } from "../schema";

type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/**
 * Like tenantBatch, but for code that acts for the platform rather than a caller: the role is
 * 'system' (see the policies in schema.ts) and the tenant is set only when the work is one tenant's.
 */
export async function systemBatch<T extends NonEmptyBatch>(
  store: TierStore,
  tenantId: string | null,
  build: (db: NeonHttpDatabase) => T,
): Promise<BatchResponse<T>> {
  const context: SQL = sql`select set_config('app.current_tenant_id', ${tenantId ?? ""}, true),
                                  set_config('app.current_user_id', '', true),
                                  set_config('app.current_role', ${systemRole}, true)`;
  try {
    const [, ...results] = await store.db.batch([store.db.execute(context), ...build(store.db)]);
    return results as BatchResponse<T>;
  } catch (error) {
    throw mapDbError(store.tier, error);
  }
}
