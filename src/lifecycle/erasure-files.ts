// Erasure's file step: the tenant's lead-import CSVs and lead-export files in R2 that hold the subject's address.
import { sql } from "drizzle-orm";
import { internalBatch, type TierStore } from "../platform/db";

/** The R2 prefixes whose files are snapshots of a tenant's leads (kept 7 days by jobs.pruneImports / jobs.pruneExports). */
const filePrefixes = { imports: (tenantId: string) => `imports/${tenantId}/`, exports: (tenantId: string) => `exports/${tenantId}/` };

const exportJobId = (key: string) => /\/([0-9a-f-]{36})\.csv$/.exec(key)?.[1] ?? null;

/**
 * Deletes every import and export file of the tenant whose text mentions the address (case-insensitively), and
 * takes the file off its export job (its progress loses `storageKey`, and `after`, its cursor), so jobs.get signs no fresh link to it and an
 * old link answers 404. Files are deleted whole rather than rewritten without the subject's line: they are
 * snapshots the tenant can make again, and a rewrite could not be told apart from the export that was asked for.
 * Each file is read once; the prefixes hold at most a week of the tenant's files. Idempotent: a retry finds fewer.
 */
export async function eraseSubjectFiles(
  deps: { oltp: TierStore; bucket: Pick<R2Bucket, "list" | "get" | "delete"> },
  tenantId: string,
  address: string | null,
): Promise<Record<string, number>> {
  const counts = { imports: 0, exports: 0 };
  if (!address) return counts;
  const needle = address.toLowerCase();
  const found: Record<keyof typeof counts, string[]> = { imports: [], exports: [] };
  for (const kind of ["imports", "exports"] as const) {
    let cursor: string | undefined;
    do {
      const listed = await deps.bucket.list({ prefix: filePrefixes[kind](tenantId), ...(cursor ? { cursor } : {}) });
      for (const object of listed.objects) {
        const file = await deps.bucket.get(object.key);
        if (file && (await file.text()).toLowerCase().includes(needle)) found[kind].push(object.key);
      }
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor);
  }
  // The jobs first: a crash before the deletes leaves files a retry finds again, never a link to a file that is gone.
  const erasedExports = found.exports.flatMap((key) => exportJobId(key) ?? []);
  if (erasedExports.length > 0) {
    await internalBatch(deps.oltp, "system", tenantId, (db) => [
      // `after` goes too: the export's cursor (its last lead id) may be the subject's, and a finished export (the
      // only kind with a file) never reads it again.
      db.execute(sql`update jobs set progress = (coalesce(progress, '{}'::jsonb) - 'storageKey' - 'after') || '{"fileErased": true}'::jsonb, updated_at = now()
                     where tenant_id = ${tenantId} and type = 'EXPORT_LEADS'
                       and id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(erasedExports)}::jsonb))`),
    ]);
  }
  for (const kind of ["imports", "exports"] as const) {
    for (let i = 0; i < found[kind].length; i += 1000) await deps.bucket.delete(found[kind].slice(i, i + 1000));
    counts[kind] = found[kind].length;
  }
  return counts;
}
