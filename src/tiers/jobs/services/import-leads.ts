// Lead imports: CSV upload to R2 and the IMPORT_LEADS job that validates it row by row and upserts in chunks.
import { parse } from "csv-parse/sync";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { defineJob } from "../../../platform/jobs/define";
import type { Job } from "../../../platform/jobs/rows";
import type { Services } from "../../../platform/services";
import { type LeadFields, leadsCreatedUsage, upsertLeadsStatement } from "../../oltp";
import { jobsConfig, type JobsConfig } from "../config";

export interface ImportProgress {
  rowsTotal: number;
  rowsDone: number;
  /** Rows upserted (new or merged into an existing lead). */
  imported: number;
  errorCount: number;
  /** The first errors, with the file's line numbers; errorCount counts them all. */
  rowErrors: Array<{ line: number; message: string }>;
}

/** Known columns by their normalised header; anything else becomes a custom field. */
const knownColumns: Record<string, keyof LeadFields> = {
  email: "email",
  first_name: "firstName",
  firstname: "firstName",
  last_name: "lastName",
  lastname: "lastName",
  company: "company",
};
const normaliseHeader = (h: string) => h.trim().toLowerCase().replace(/[\s-]+/g, "_");

const optionalText = z.string().trim().max(200).transform((v) => (v === "" ? null : v));
const leadRow = z.object({
  email: z.string().trim().toLowerCase().pipe(z.email({ error: "is not a valid email address" })),
  firstName: optionalText.optional(),
  lastName: optionalText.optional(),
  company: optionalText.optional(),
  customFields: z.record(z.string().max(64), z.string().max(1000)).refine((f) => Object.keys(f).length <= 50, "at most 50 custom fields"),
});

/** Stores the uploaded file and enqueues its import: the file first, then the job that refers to it. */
export async function startLeadImport(
  services: Services,
  scope: TenantScope,
  input: { fileName: string; csv: string },
  config: JobsConfig = jobsConfig,
): Promise<Job> {
  const bytes = new TextEncoder().encode(input.csv).byteLength;
  if (bytes > config.import.maxFileBytes) {
    throw new AppError("PAYLOAD_TOO_LARGE", `The file is ${bytes} bytes; the limit is ${config.import.maxFileBytes}`, { tier: "jobs" });
  }
  const storageKey = `imports/${scope.tenantId}/${crypto.randomUUID()}.csv`;
  try {
    await services.env.CONTENT_BUCKET.put(storageKey, input.csv, { httpMetadata: { contentType: "text/csv" } });
  } catch (error) {
    throw new AppError("SERVICE_UNAVAILABLE", "The content tier is unavailable; try again shortly", { tier: "content", cause: error });
  }
  const [job] = await services.jobs.enqueue(scope, [
    { type: importLeadsJob.type, payload: { storageKey, fileName: input.fileName, requestedBy: scope.userId } },
  ]);
  if (!job) throw new AppError("INTERNAL", "The import job was not recorded", { tier: "jobs" });
  return job;
}

interface ParsedRow {
  line: number;
  record: Record<string, string>;
}

/** The whole file's rows with their line numbers; a file without an email column is refused as a whole. */
function parseLeadsCsv(text: string): ParsedRow[] {
  let rows: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    rows = parse(text, {
      columns: (header: string[]) => header.map(normaliseHeader),
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
    });
  } catch (error) {
    throw new AppError("VALIDATION_FAILED", `The file is not valid CSV: ${(error as Error).message}`, { tier: "jobs" });
  }
  if (rows.length > 0 && !("email" in rows[0]!.record)) {
    throw new AppError("VALIDATION_FAILED", "The file has no 'email' column", { tier: "jobs" });
  }
  return rows.map((r) => ({ line: r.info.lines, record: r.record }));
}

function toLead(record: Record<string, string>): unknown {
  const lead: Record<string, unknown> = { customFields: {} };
  for (const [column, value] of Object.entries(record)) {
    const field = knownColumns[column];
    if (field) lead[field] = value;
    else if (column !== "" && value !== "") (lead.customFields as Record<string, string>)[column] = value;
  }
  return lead;
}

/** Rows for the same email inside one statement are merged in file order (Postgres refuses to upsert a row twice). */
function mergeByEmail(leads: Array<Omit<LeadFields, "status">>): Array<Omit<LeadFields, "status">> {
  const merged = new Map<string, Omit<LeadFields, "status">>();
  for (const lead of leads) {
    const previous = merged.get(lead.email);
    merged.set(
      lead.email,
      previous
        ? {
            email: lead.email,
            firstName: lead.firstName ?? previous.firstName ?? null,
            lastName: lead.lastName ?? previous.lastName ?? null,
            company: lead.company ?? previous.company ?? null,
            customFields: { ...previous.customFields, ...lead.customFields },
          }
        : lead,
    );
  }
  return [...merged.values()];
}

/**
 * Handles up to rowsPerInvocation rows per delivery, resuming from the progress saved in the
 * ledger, so a large file completes across several deliveries. Each chunk's upsert and its
 * progress commit together in one round trip: a redelivery resumes exactly where the last commit left off.
 */
export const importLeadsJob = defineJob({
  type: "IMPORT_LEADS",
  payload: z.object({ storageKey: z.string().min(1).max(512), fileName: z.string().min(1).max(255), requestedBy: z.uuid() }).strict(),
  queue: "low",
  ledger: true,
  maxAttempts: 5,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services, ledger }) => {
  if (!tenantId || !ledger) throw new AppError("VALIDATION_FAILED", "IMPORT_LEADS is a tenant's ledger job", { tier: "jobs" });
  const object = await services.env.CONTENT_BUCKET.get(payload.storageKey);
  if (!object) throw new Error(`The import file ${payload.storageKey} is not in storage`);
  const rows = parseLeadsCsv(await object.text());
  const config = jobsConfig.import;
  const saved = ledger.progress as ImportProgress | null;
  const progress: ImportProgress = saved ?? { rowsTotal: rows.length, rowsDone: 0, imported: 0, errorCount: 0, rowErrors: [] };
  const scope: TenantScope = { tenantId, userId: payload.requestedBy, role: "member" };
  const store = services.store("oltp");
  const end = Math.min(rows.length, progress.rowsDone + config.rowsPerInvocation);

  for (let start = progress.rowsDone; start < end; start += config.rowsPerBatch) {
    const valid: Array<Omit<LeadFields, "status">> = [];
    for (const row of rows.slice(start, Math.min(end, start + config.rowsPerBatch))) {
      const parsed = leadRow.safeParse(toLead(row.record));
      if (parsed.success) valid.push(parsed.data);
      else {
        progress.errorCount += 1;
        if (progress.rowErrors.length < config.maxReportedErrors) {
          const issue = parsed.error.issues[0];
          progress.rowErrors.push({ line: row.line, message: `${issue?.path.join(".") || "row"} ${issue?.message ?? "is invalid"}` });
        }
      }
    }
    const leads = mergeByEmail(valid);
    progress.imported += valid.length;
    progress.rowsDone = Math.min(end, start + config.rowsPerBatch);
    const record = sql`update jobs set progress = ${JSON.stringify(progress)}::jsonb, updated_at = now()
                       where tenant_id = ${tenantId} and id = ${ledger.id} and status = 'running'`;
    await tenantBatch(store, scope, (db) =>
      leads.length > 0 ? [upsertLeadsStatement(db, scope, leads), leadsCreatedUsage(db, scope), db.execute(record)] : [db.execute(record)],
    );
  }
  return progress.rowsDone < rows.length ? { continueWith: { ...progress } } : { progress: { ...progress } };
  },
});
