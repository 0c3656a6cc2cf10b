// Suppression imports: a CSV of addresses (and optional reasons) uploaded to R2, put on the tenant's list by the IMPORT_SUPPRESSIONS job in chunks.
import { sql } from "drizzle-orm";
import { z } from "zod";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { defineJob } from "../../../platform/jobs/define";
import { rowsOf } from "../../../platform/rows";
import type { Services } from "../../../platform/services";
import { addressHasher, suppressionReasons } from "../../oltp";
import { jobsConfig, type JobsConfig } from "../config";
import { type CsvImportKind, csvImportPayload, resumeCsvImport, startCsvImport, unneutralise } from "./import-leads";

export interface SuppressionImportProgress {
  rowsTotal: number;
  rowsDone: number;
  /** Addresses put on the list by this file. */
  added: number;
  /** Addresses already on it (their first reason stays), including repeats within the file. */
  existing: number;
  invalid: number;
  errorCount: number;
  rowErrors: Array<{ line: number; message: string }>;
}

const startingProgress = (rowsTotal: number): SuppressionImportProgress => ({
  rowsTotal, rowsDone: 0, added: 0, existing: 0, invalid: 0, errorCount: 0, rowErrors: [],
});

/** `email` (required) and `reason` (optional: unsubscribe, hard_bounce, complaint, admin; admin when empty). */
const suppressionRow = z.object({
  email: z.string().trim().toLowerCase().pipe(z.email({ error: "is not a valid email address" })),
  reason: z
    .string()
    .trim()
    .toLowerCase()
    .transform((v) => (v === "" ? "admin" : v))
    .pipe(z.enum(suppressionReasons, { error: `must be one of ${suppressionReasons.join(", ")}` }))
    .default("admin"),
});

/** The file is read once on upload (a file without an email column is refused at once), stored, and its job recorded. */
const suppressionImport: CsvImportKind<SuppressionImportProgress> = { type: "IMPORT_SUPPRESSIONS", name: (id) => `suppressions-${id}`, startingProgress };

export const startSuppressionImport = (services: Services, scope: TenantScope, input: { fileName: string; csv: string }, config: JobsConfig = jobsConfig) =>
  startCsvImport(services, scope, input, suppressionImport, config);

/**
 * Up to rowsPerInvocation rows per delivery, resuming from the progress in the ledger. Each chunk's
 * inserts and its progress commit in one statement, so a redelivery resumes where the last commit left
 * off; an address already listed keeps its entry (and takes its address back if it had been erased).
 */
export const importSuppressionsJob = defineJob({
  type: suppressionImport.type,
  payload: csvImportPayload,
  queue: "low",
  ledger: true,
  maxAttempts: 5,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services, ledger }) => {
    if (!tenantId || !ledger) throw new AppError("VALIDATION_FAILED", "IMPORT_SUPPRESSIONS is a tenant's ledger job", { tier: "jobs" });
    const { rows, progress } = await resumeCsvImport(services, suppressionImport, payload.storageKey, ledger.progress);
    const config = jobsConfig.import;
    const hash = addressHasher(services.env);
    const end = Math.min(rows.length, progress.rowsDone + config.rowsPerInvocation);

    for (let start = progress.rowsDone; start < end; start += config.rowsPerBatch) {
      const entries = new Map<string, { hash: string; address: string; reason: string }>();
      let repeats = 0;
      for (const row of rows.slice(start, Math.min(end, start + config.rowsPerBatch))) {
        const parsed =
          "error" in row
            ? { success: false as const, message: row.error }
            : (() => {
                const result = suppressionRow.safeParse({ email: unneutralise(row.record.email ?? ""), reason: row.record.reason === undefined ? undefined : unneutralise(row.record.reason) });
                return result.success ? result : { success: false as const, message: `${result.error.issues[0]?.path.join(".") || "row"} ${result.error.issues[0]?.message ?? "is invalid"}` };
              })();
        if (!parsed.success) {
          progress.invalid += 1;
          progress.errorCount += 1;
          if (progress.rowErrors.length < config.maxReportedErrors) progress.rowErrors.push({ line: row.line, message: parsed.message });
          continue;
        }
        if (entries.has(parsed.data.email)) repeats += 1;
        else entries.set(parsed.data.email, { hash: await hash(parsed.data.email), address: parsed.data.email, reason: parsed.data.reason });
      }
      progress.rowsDone = Math.min(end, start + config.rowsPerBatch);
      const [result] = await tenantBatch(services.store("oltp"), { tenantId, userId: payload.requestedBy, role: "member" }, (db) => [
        db.execute(sql`
          with listed as (
            insert into suppressions (tenant_id, address_hash, address, reason)
            select ${tenantId}::uuid, r.hash, r.address, r.reason
            from jsonb_to_recordset(${JSON.stringify([...entries.values()])}::jsonb) as r(hash text, address text, reason text)
            on conflict (tenant_id, address_hash) do update set address = coalesce(suppressions.address, excluded.address)
            returning (xmax = 0) as added
          ), counted as (
            select count(*) filter (where added)::int as added, count(*) filter (where not added)::int as existing from listed
          )
          update jobs set progress = ${JSON.stringify(progress)}::jsonb || jsonb_build_object(
              'added', ${progress.added}::int + counted.added,
              'existing', ${progress.existing + repeats}::int + counted.existing),
            updated_at = now()
          from counted
          where tenant_id = ${tenantId} and id = ${ledger.id} and status = 'running'
          returning progress`),
      ]);
      const recorded = rowsOf(result)[0]?.progress as SuppressionImportProgress | undefined;
      if (!recorded) throw new Error("The import's claim was lost; its current holder continues");
      Object.assign(progress, { added: recorded.added, existing: recorded.existing });
    }
    return progress.rowsDone < rows.length ? { continueWith: { ...progress } } : { progress: { ...progress } };
  },
});
