// Internal work (consumer, relay, retention, raised events) as one transaction under the 'system' role.
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { internalBatch, type TierStore } from "../../../core/db";
import { systemRole } from "../schema";

type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/**
 * Like tenantBatch, but for code that acts for the platform rather than a caller: the role is
 * 'system' (see the policies in schema.ts) and the tenant is set only when the work is one tenant's.
 */
export const systemBatch = <T extends NonEmptyBatch>(store: TierStore, tenantId: string | null, build: (db: NeonHttpDatabase) => T): Promise<BatchResponse<T>> =>
  internalBatch(store, systemRole, tenantId, build);
