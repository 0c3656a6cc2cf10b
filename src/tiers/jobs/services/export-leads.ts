// Lead exports: the EXPORT_LEADS job writes a tenant's leads as CSV to R2 in resumable parts, then joins them into one file.
import { stringify } from "csv-stringify/sync";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { defineJob } from "../../../platform/jobs/define";
import type { Job } from "../../../platform/jobs/rows";
import { rowsOf } from "../../../platform/rows";
import type { Services } from "../../../platform/services";
import { leadStatuses } from "../../oltp";
import { jobsConfig, type JobsConfig } from "../config";
import { exportStorageKey } from "./export-links";

const exportPayload = z
  .object({
    requestedBy: z.uuid(),
    campaignId: z.uuid().optional(),
    status: z.enum(leadStatuses).optional(),
  })
  .strict();
type ExportPayload = z.infer<typeof exportPayload>;

/** The lead's fields, and its suppression: when it unsubscribed (or complained) and when it bounced, empty if never. */
export const exportColumns = ["id", "email", "first_name", "last_name", "company", "status", "custom_fields", "created_at", "unsubscribed_at", "bounced_at"] as const;

export interface ExportProgress {
  rowsDone: number;
  /** Part files written so far (one per delivery), and their bytes in order. */
  partBytes: number[];
  /** The last lead id written: the next delivery reads after it. */
  after: string;
  /** Set when the export is complete: the file's key in the content bucket and its size. */
  storageKey?: string;
  bytes?: number;
}

const firstId = "00000000-0000-0000-0000-000000000000";
const partKey = (tenantId: string, jobId: string, part: number) => `exports/${tenantId}/${jobId}/part-${String(part).padStart(5, "0")}.csv`;

/** Enqueues an export of the caller's tenant's leads; a campaign that is not the tenant's is NOT_FOUND. */
export async function startLeadExport(
  services: Services,
  scope: TenantScope,
  filter: { campaignId?: string | undefined; status?: ExportPayload["status"] },
): Promise<Job> {
  const store = services.store("oltp");
  if (filter.campaignId) {
    const [found] = await tenantBatch(store, scope, (db) => [
      db.execute(sql`select 1 from campaigns where tenant_id = ${scope.tenantId} and id = ${filter.campaignId}`),
    ]);
    if (rowsOf(found).length === 0) throw new AppError("NOT_FOUND", "Campaign not found", { tier: "oltp" });
  }
  const payload = {
    requestedBy: scope.userId,
    ...(filter.campaignId ? { campaignId: filter.campaignId } : {}),
    ...(filter.status ? { status: filter.status } : {}),
  };
  const [job] = await services.jobs.enqueue(scope, [{ type: exportLeadsJob.type, payload }]);
  if (!job) throw new AppError("INTERNAL", "The export job was not recorded", { tier: "jobs" });
  return job;
}

/** One page of leads in id order after `after`, under the tenant's RLS context: one round trip. */
async function leadPage(store: TierStore, scope: TenantScope, payload: ExportPayload, after: string, limit: number) {
  const conditions = [sql`l.tenant_id = ${scope.tenantId}`, sql`l.id > ${after}::uuid`];
  if (payload.status) conditions.push(sql`l.status = ${payload.status}`);
  if (payload.campaignId) {
    conditions.push(sql`exists (select 1 from campaign_leads cl
                               where cl.tenant_id = l.tenant_id and cl.campaign_id = ${payload.campaignId} and cl.lead_id = l.id)`);
  }
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      select l.id, l.email, l.first_name, l.last_name, l.company, l.status, l.custom_fields,
             to_char(l.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
             to_char(l.unsubscribed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as unsubscribed_at,
             to_char(l.bounced_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as bounced_at
      from leads l where ${sql.join(conditions, sql` and `)}
      order by l.id limit ${limit}`),
  ]);
  return rowsOf(result);
}

/**
 * A cell a spreadsheet would run as a formula (it starts with =, +, -, @, tab or carriage return) is
 * prefixed with a single quote, as OWASP's CSV injection guidance recommends; the import drops that quote again.
 */
export const neutraliseFormula = (value: string): string => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

const csvRows = (rows: Record<string, unknown>[], header: boolean): string =>
  stringify(
    rows.map((r) =>
      [
        r.id, r.email, r.first_name ?? "", r.last_name ?? "", r.company ?? "", r.status, JSON.stringify(r.custom_fields ?? {}), r.created_at,
        r.unsubscribed_at ?? "", r.bounced_at ?? "",
      ].map((value) => neutraliseFormula(String(value))),
    ),
    { header, columns: header ? [...exportColumns] : undefined },
  );

/** Streams the parts, in order, into one object of known length, then removes them. */
async function joinParts(bucket: R2Bucket, keys: string[], bytes: number, target: string): Promise<void> {
  const { readable, writable } = new FixedLengthStream(bytes);
  const upload = bucket.put(target, readable, { httpMetadata: { contentType: "text/csv; charset=utf-8" } });
  const copy = (async () => {
    try {
      for (const key of keys) {
        const part = await bucket.get(key);
        if (!part) throw new Error(`export part ${key} is missing`);
        await part.body.pipeTo(writable, { preventClose: true });
      }
      await writable.close();
    } catch (error) {
      await writable.abort(error).catch(() => undefined);
      throw error;
    }
  })();
  await Promise.all([upload, copy]);
  await bucket.delete(keys);
}

/**
 * Writes up to rowsPerInvocation leads per delivery as one part object, named by its number, and
 * saves its place (the last id) in the job's progress: a redelivery rewrites the same part from the
 * same place. The last delivery joins the parts into exports/<tenant>/<job>.csv (a one-part export is
 * written there directly) and records that key and the size in the job's progress.
 */
export const exportLeadsJob = defineJob({
  type: "EXPORT_LEADS",
  payload: exportPayload,
  queue: "low",
  ledger: true,
  maxAttempts: 5,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services, ledger }) => {
  if (!tenantId || !ledger) throw new AppError("VALIDATION_FAILED", "EXPORT_LEADS is a tenant's ledger job", { tier: "jobs" });
  const config: JobsConfig["export"] = jobsConfig.export;
  const scope: TenantScope = { tenantId, userId: payload.requestedBy, role: "member" };
  const store = services.store("oltp");
  const saved = ledger.progress as ExportProgress | null;
  const progress: ExportProgress = saved ? { ...saved, partBytes: [...saved.partBytes] } : { rowsDone: 0, partBytes: [], after: firstId };
  if (progress.storageKey) return { progress: { ...progress } };

  const rows: Record<string, unknown>[] = [];
  let finished = false;
  while (rows.length < config.rowsPerInvocation) {
    const limit = Math.min(config.rowsPerPage, config.rowsPerInvocation - rows.length);
    const page = await leadPage(store, scope, payload, String(rows.at(-1)?.id ?? progress.after), limit);
    rows.push(...page);
    if (page.length < limit) {
      finished = true;
      break;
    }
  }
  const text = csvRows(rows, progress.partBytes.length === 0);
  const size = new TextEncoder().encode(text).byteLength;
  const bucket = services.env.CONTENT_BUCKET;
  const target = exportStorageKey(tenantId, ledger.id);
  const csvType = { httpMetadata: { contentType: "text/csv; charset=utf-8" } };
  progress.rowsDone += rows.length;
  if (rows.length > 0) progress.after = String(rows.at(-1)!.id);

  if (finished && progress.partBytes.length === 0) {
    await bucket.put(target, text, csvType);
    return { progress: { ...progress, storageKey: target, bytes: size } };
  }
  await bucket.put(partKey(tenantId, ledger.id, progress.partBytes.length + 1), text, csvType);
  progress.partBytes.push(size);
  if (!finished) return { continueWith: { ...progress } };
  const total = progress.partBytes.reduce((sum, bytes) => sum + bytes, 0);
  await joinParts(bucket, progress.partBytes.map((_, i) => partKey(tenantId, ledger.id, i + 1)), total, target);
  return { progress: { ...progress, storageKey: target, bytes: total } };
  },
});

/** Deletes export files (and parts of abandoned exports) older than keptDays, looking at up to `maxObjects` per run. */
export const pruneExports = (bucket: R2Bucket, config: JobsConfig["export"], now: number, maxObjects = 10_000) =>
  pruneFilesOlderThan(bucket, "exports/", config.keptDays, now, maxObjects);

/** Deletes the objects under `prefix` uploaded more than `keptDays` ago, looking at up to `maxObjects` per run. */
export async function pruneFilesOlderThan(bucket: R2Bucket, prefix: string, keptDays: number, now: number, maxObjects = 10_000): Promise<number> {
  const cutoff = now - keptDays * 86_400_000;
  let deleted = 0;
  let cursor: string | undefined;
  for (let seen = 0; seen < maxObjects; ) {
    const listed = await bucket.list({ prefix, limit: 1000, ...(cursor ? { cursor } : {}) });
    seen += listed.objects.length;
    const old = listed.objects.filter((object) => object.uploaded.getTime() < cutoff).map((object) => object.key);
    if (old.length > 0) await bucket.delete(old);
    deleted += old.length;
    if (!listed.truncated) break;
    cursor = listed.cursor;
  }
  return deleted;
}
