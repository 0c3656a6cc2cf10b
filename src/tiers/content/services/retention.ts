// Retention: per-tenant settings (retention days, legal hold) and the pruning of unreferenced or expired objects.
import { sql } from "drizzle-orm";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { internalBatch, type NonEmptyBatch, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { rowsOf } from "../../../platform/rows";
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

export interface PruneOptions {
  /** Catalog rows deleted (tombstoned) per run at most; R2 deletes at most 1000 keys per call. */
  batchSize: number;
  /**
   * How long a tombstoned blob stays in R2 before it is purged, and how long a purged tombstone is
   * kept so a write that saw the blob before the purge finds out (content_assert_live). Longer than
   * any write's span between its R2 `head` and its OLTP commit.
   */
  graceSeconds: number;
  /** How long a purged tombstone is kept; `graceSeconds` when not given. */
  keepPurgedSeconds?: number | undefined;
}

export interface PruneReport {
  /** Catalog rows deleted this run (their blobs wait out the grace period). */
  tombstoned: number;
  /** Blobs deleted from R2 this run. */
  purged: number;
}

/**
 * Pruning runs across tenants as the internal 'lifecycle' role, not 'maintenance': the catalog's
 * maintenance policy shows only unreferenced or expired rows, and the purge's re-check must see a row
 * that a write has just referenced again.
 */
const asLifecycle = <T extends NonEmptyBatch>(store: TierStore, build: (db: NeonHttpDatabase) => T) => internalBatch(store, "lifecycle", null, build);

/**
 * Step 1: deletes catalog rows nothing references or that have expired, outside tenants on legal hold,
 * and records a tombstone for each in the same statement; the blob stays. A template goes only after
 * every object compressed against it: those expire no later than it and have no references left once
 * it has none, so the policy shows them all.
 */
export async function tombstoneContent(store: TierStore, batchSize: number): Promise<number> {
  const [result] = await asLifecycle(store, (db) => [
    db.execute(sql`with pruned as (
                delete from content_objects o
                where (o.tenant_id, o.hash) in (
                  select c.tenant_id, c.hash from content_objects c
                  where (c.ref_count <= 0 or c.expires_at < now())
                    and not exists (select 1 from content_settings s where s.tenant_id = c.tenant_id and s.legal_hold)
                    and not exists (select 1 from content_objects r where r.tenant_id = c.tenant_id and r.dictionary_hash = c.hash)
                  limit ${batchSize})
                returning o.tenant_id, o.hash, o.storage_key)
              insert into content_tombstones (tenant_id, hash, storage_key)
              select tenant_id, hash, storage_key from pruned
              on conflict (tenant_id, hash) do update set tombstoned_at = now(), purged_at = null
              returning 1`),
  ]);
  return rowsOf(result).length;
}

/**
 * Step 2: claims tombstones older than the grace period whose bytes no catalog row names again (a
 * write that re-used them recreated the row), in the same transaction that marks them purged, then
 * deletes their blobs. A crash after the claim leaves blobs the orphan reconciler reclaims. Purged
 * tombstones older than a further grace period are dropped in the same transaction.
 */
export async function purgeTombstones(store: TierStore, bucket: ContentBucket, options: PruneOptions): Promise<number> {
  const limit = Math.min(options.batchSize, 1000);
  const [claimed] = await asLifecycle(store, (db) => [
    db.execute(sql`with revived as (
                  delete from content_tombstones t
                  where t.purged_at is null
                    and exists (select 1 from content_objects o where o.tenant_id = t.tenant_id and o.hash = t.hash)
                  returning 1)
                update content_tombstones t set purged_at = now()
                where (t.tenant_id, t.hash) in (
                  select c.tenant_id, c.hash from content_tombstones c
                  where c.purged_at is null and c.tombstoned_at <= now() - make_interval(secs => ${options.graceSeconds})
                    and not exists (select 1 from content_objects o where o.tenant_id = c.tenant_id and o.hash = c.hash)
                  order by c.tombstoned_at
                  limit ${limit}
                  for update skip locked)
                returning t.storage_key`),
    db.execute(sql`delete from content_tombstones where purged_at <= now() - make_interval(secs => ${options.keepPurgedSeconds ?? options.graceSeconds})`),
  ]);
  const keys = rowsOf(claimed).map((r) => String(r.storage_key));
  await deleteObjects(bucket, keys);
  return keys.length;
}

/**
 * The pruning cron's content task: tombstone what nothing needs, then purge blobs whose tombstones
 * outlived the grace period. Catalog first: a crash between the two leaves an unreferenced blob,
 * never a row pointing at nothing; the grace period and the re-check keep a blob that a concurrent
 * write re-referenced.
 */
export async function pruneContent(store: TierStore, bucket: ContentBucket, options: PruneOptions): Promise<PruneReport> {
  const tombstoned = await tombstoneContent(store, options.batchSize);
  const purged = await purgeTombstones(store, bucket, options);
  return { tombstoned, purged };
}
