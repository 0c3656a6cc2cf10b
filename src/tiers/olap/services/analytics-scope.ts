// The ETL's and maintenance's database work: one transaction under the internal 'analytics' role, no tenant.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { mapDbError, type TierStore } from "../../../core/db";
import { analyticsRole } from "../schema";

type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/**
 * Like tenantBatch, but for the platform's aggregation: the policies of both databases admit the
 * 'analytics' role across tenants (read-only in OLTP), and nothing else does.
 */
export async function analyticsBatch<T extends NonEmptyBatch>(
  store: TierStore,
  build: (db: NeonHttpDatabase) => T,
): Promise<BatchResponse<T>> {
  const context: SQL = sql`select set_config('app.current_tenant_id', '', true),
                                  set_config('app.current_user_id', '', true),
                                  set_config('app.current_role', ${analyticsRole}, true)`;
  try {
    const [, ...results] = await store.db.batch([store.db.execute(context), ...build(store.db)]);
    return results as BatchResponse<T>;
  } catch (error) {
    throw mapDbError(store.tier, error);
  }
}
