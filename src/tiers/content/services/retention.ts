// Retention: per-tenant settings (retention days, legal hold) and the pruning of unreferenced or expired objects.
import { sql } from "drizzle-orm";
import { mapDbError, tenantBatch, type TenantScope, type TierStore } from "../../../core/db";
import { contentSettings, defaultRetentionDays } from "../schema";
import { deleteObjects, type ContentBucket } from "./blobs";

export interface RetentionSettings {
  retentionDays: number;
  legalHold: boolean;
}

export async function getRetention(store: TierStore, scope: TenantScope): Promise<RetentionSettings> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.select({ retentionDays: contentSettings.retentionDays, legalHold: contentSettings.legalHold }).from(contentSettings).where(sql`${contentSettings.tenantId} = ${scope.tenantId}`),
  ]);
  return rows[0] ?? { retentionDays: defaultRetentionDays, legalHold: false };
}

/** New content expires after the new retention; existing objects keep their expiry until referenced again. */
export async function setRetention(store: TierStore, scope: TenantScope, input: Partial<RetentionSettings>): Promise<RetentionSettings> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute<{ retention_days: number; legal_hold: boolean }>(sql`
      insert into ${contentSettings} (tenant_id, retention_days, legal_hold)
      values (${scope.tenantId}, ${input.retentionDays ?? defaultRetentionDays}, ${input.legalHold ?? false})
      on conflict (tenant_id) do update set
        retention_days = coalesce(${input.retentionDays ?? null}::int, ${contentSettings.retentionDays}),
        legal_hold = coalesce(${input.legalHold ?? null}::boolean, ${contentSettings.legalHold}),
        updated_at = now()
      returning retention_days, legal_hold`),
  ]);
  const row = rows.rows[0]!;
  return { retentionDays: row.retention_days, legalHold: row.legal_hold };
}

/**
 * Deletes catalog rows nothing references or that have expired, outside tenants on legal hold, then
 * their blobs. Catalog first: a crash between the two leaves an unreferenced blob, never a row
 * pointing at nothing. Runs under the `maintenance` role context, which the catalog's policy admits
 * for such rows only. A template goes only after every object compressed against it: those expire no
 * later than it and have no references left once it has none, so the policy shows them all.
 */
export async function pruneContent(store: TierStore, bucket: ContentBucket, batchSize: number): Promise<number> {
  // R2 deletes at most 1000 keys per call.
  const limit = Math.min(batchSize, 1000);
  let keys: string[];
  try {
    const [, pruned = []] = await store.sql.transaction([
      store.sql`select set_config('app.current_role', 'maintenance', true)`,
      store.sql`delete from content_objects o
                where (o.tenant_id, o.hash) in (
                  select c.tenant_id, c.hash from content_objects c
                  where (c.ref_count <= 0 or c.expires_at < now())
                    and not exists (select 1 from content_settings s where s.tenant_id = c.tenant_id and s.legal_hold)
                    and not exists (select 1 from content_objects r where r.tenant_id = c.tenant_id and r.dictionary_hash = c.hash)
                  limit ${limit})
                returning o.storage_key`,
    ]);
    keys = pruned.map((r) => String(r.storage_key));
  } catch (error) {
    throw mapDbError("oltp", error);
  }
  await deleteObjects(bucket, keys);
  return keys.length;
}
