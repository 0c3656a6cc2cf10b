// The ETL's and maintenance's database work: one transaction under the internal 'analytics' role, no tenant.
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { internalBatch, type TierStore } from "../../../core/db";
import { analyticsRole } from "../schema";

type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/**
 * Like tenantBatch, but for the platform's aggregation: the policies of both databases admit the
 * 'analytics' role across tenants (read-only in OLTP), and nothing else does.
 */
export const analyticsBatch = <T extends NonEmptyBatch>(store: TierStore, build: (db: NeonHttpDatabase) => T): Promise<BatchResponse<T>> =>
  internalBatch(store, analyticsRole, null, build);
