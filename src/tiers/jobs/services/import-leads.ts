// Lead imports: CSV upload to R2 and the IMPORT_LEADS job that validates it row by row and upserts in chunks.
import { parse } from "csv-parse/sync";
import { sql } from "drizzle-orm";
import { z } from "zod";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { defineJob } from "../../../platform/jobs/define";
import { rowsOfJobs, type Job } from "../../../platform/jobs/rows";
import { rowsOf } from "../../../platform/rows";
import type { Services } from "../../../platform/services";
import { addressHasher, type LeadFields, leadsCreatedUsage, reattachStatement, upsertLeadsStatement } from "../../oltp";
import { jobsConfig, type JobsConfig } from "../config";

export interface ImportProgress {
  rowsTotal: number;
  rowsDone: number;
  /** Leads written: created + updated (an address repeated in the file is written once). */
  imported: number;
  /** New leads. */
  created: number;
  /** Leads that existed before this file and took its fields. */
  updated: number;
  /** Valid rows whose address an earlier row of the file already had: merged into that lead, not counted again. */
  duplicate: number;
  /** Rows refused (bad address, broken CSV): each one in errorCount, the first ones in rowErrors. */
  invalid: number;
  errorCount: number;
  /** The first errors, with the file's line numbers (where the row starts); errorCount counts them all. */
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

const startingProgress = (rowsTotal: number): ImportProgress => ({
  rowsTotal, rowsDone: 0, imported: 0, created: 0, updated: 0, duplicate: 0, invalid: 0, errorCount: 0, rowErrors: [],
});

/** A job that works through an uploaded CSV: its type, its file's name under imports/<tenant>/, its fresh progress. */
export interface CsvImportKind<P> {
  type: string;
  name: (id: string) => string;
  startingProgress: (rowsTotal: number) => P;
}

/** The payload of a CSV import job, as startCsvImport records it. */
export const csvImportPayload = z.object({ storageKey: z.string().min(1).max(512), fileName: z.string().min(1).max(255), requestedBy: z.uuid() }).strict();

/**
 * A delivery's start: the stored file's rows, and the progress the ledger saved (over a fresh one, so a field added
 * later has its starting value), or a fresh progress on the first delivery.
 */
export async function resumeCsvImport<P extends { rowsTotal: number }>(
  services: Services,
  kind: Pick<CsvImportKind<P>, "startingProgress">,
  storageKey: string,
  saved: unknown,
): Promise<{ rows: ParsedRow[]; progress: P }> {
  const object = await services.env.CONTENT_BUCKET.get(storageKey);
  if (!object) throw new Error(`The import file ${storageKey} is not in storage`);
  const rows = parseLeadsCsv(await object.text());
  const fresh = kind.startingProgress(rows.length);
  return { rows, progress: saved ? { ...fresh, ...(saved as P) } : fresh };
}

/**
 * Reads the file once on upload: a file without an email column is refused at once, and the job's
 * ledger row carries the row total from the start (the low queue may take its 30 s batch window to
 * deliver it). Then the file is stored under imports/ (pruned after jobsConfig.import.keptDays), and the
 * job that refers to it is recorded with that progress in one round trip and sent after the response.
 * Lead and suppression imports both start this way; `job` and `name` say which.
 */
export async function startCsvImport(
  services: Services,
  scope: TenantScope,
  input: { fileName: string; csv: string },
  job: CsvImportKind<{ rowsTotal: number }>,
  config: JobsConfig = jobsConfig,
): Promise<Job> {
  const bytes = new TextEncoder().encode(input.csv).byteLength;
  if (bytes > config.import.maxFileBytes) {
    throw new AppError("PAYLOAD_TOO_LARGE", `The file is ${bytes} bytes; the limit is ${config.import.maxFileBytes}`, { tier: "jobs" });
  }
  const rowsTotal = parseLeadsCsv(input.csv).length;
  const storageKey = `imports/${scope.tenantId}/${job.name(crypto.randomUUID())}.csv`;
  try {
    await services.env.CONTENT_BUCKET.put(storageKey, input.csv, { httpMetadata: { contentType: "text/csv" } });
  } catch (error) {
    throw new AppError("SERVICE_UNAVAILABLE", "The content tier is unavailable; try again shortly", { tier: "content", cause: error });
  }
  const prepared = services.jobs.prepare(scope.tenantId, [
    { type: job.type, payload: { storageKey, fileName: input.fileName, requestedBy: scope.userId } },
  ]);
  const id = prepared.ids[0]!;
  const [, , recorded] = await tenantBatch(services.store("oltp"), scope, (db) => [
    prepared.insert(db),
    db.execute(sql`update jobs set progress = ${JSON.stringify(job.startingProgress(rowsTotal))}::jsonb
                   where tenant_id = ${scope.tenantId} and id = ${id} and progress is null`),
    db.execute(sql`select * from jobs where tenant_id = ${scope.tenantId} and id = ${id}`),
  ]);
  const row = rowsOfJobs(recorded)[0];
  if (!row) throw new AppError("INTERNAL", "The import job was not recorded", { tier: "jobs" });
  services.jobs.sendAfterResponse(prepared.messages);
  return row;
}

const leadImport: CsvImportKind<ImportProgress> = { type: "IMPORT_LEADS", name: (id) => id, startingProgress };

export const startLeadImport = (services: Services, scope: TenantScope, input: { fileName: string; csv: string }, config: JobsConfig = jobsConfig) =>
  startCsvImport(services, scope, input, leadImport, config);

/** A data row with the file line it starts on: its record, or why it could not be read as CSV. */
type ParsedRow = { line: number; record: Record<string, string> } | { line: number; error: string };

const delimiters = [",", ";", "\t"] as const;

/**
 * The delimiter whose header has an email column: a comma first, then what Excel writes in many locales
 * (semicolon) and tab. A header with none of them is refused, naming what was looked for.
 */
function detectDelimiter(headerLine: string): (typeof delimiters)[number] {
  for (const delimiter of delimiters) {
    if (headerLine.split(delimiter).some((cell) => normaliseHeader(cell.replace(/^"|"$/g, "")) === "email")) return delimiter;
  }
  throw new AppError(
    "VALIDATION_FAILED",
    "The file has no 'email' column (looked for a header separated by commas, semicolons or tabs)",
    { tier: "jobs" },
  );
}

/** Line breaks inside a record's raw text: csv-parse counts lines up to its end, and its raw may start with skipped empty lines. */
const newlinesWithin = (raw: string | undefined) => (raw ?? "").replace(/^\n+/, "").replace(/\n$/, "").split("\n").length - 1;

/**
 * The file's data rows, each with the line it starts on. Line endings are made LF first (a BOM, CRLF
 * and quoted newlines then count as the file shows them). A row csv-parse cannot read (a stray quote)
 * is reported and skipped; a quote left open would swallow the rest of the file, so reading starts
 * again on the line after the one it opened on. A file without an email column is refused as a whole.
 */
export function parseLeadsCsv(text: string): ParsedRow[] {
  const lines = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n").split("\n");
  const headerAt = lines.findIndex((line) => line.trim() !== "");
  if (headerAt < 0) return [];
  const delimiter = detectDelimiter(lines[headerAt]!);
  const columns = parse(lines[headerAt]!, { delimiter, relax_column_count: true })[0]?.map(normaliseHeader) ?? [];
  const rows: ParsedRow[] = [];
  // Reads lines[from..] (0-based), numbering rows by file line; returns where to start again after an unclosed quote, if any.
  const readFrom = (from: number): number | null => {
    let restartAt: number | null = null;
    const found: Array<{ record: Record<string, string>; info: { lines: number; raw?: string } }> = parse(lines.slice(from).join("\n"), {
      columns,
      delimiter,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
      raw: true,
      skip_records_with_error: true,
      on_skip: (error: (Error & { code?: string; lines?: number }) | undefined, raw?: string) => {
        if (restartAt !== null || !error) return;
        const line = from + (error.lines ?? 1) - (error.code === "CSV_QUOTE_NOT_CLOSED" ? newlinesWithin(raw) : 0);
        rows.push({ line, error: `is not valid CSV: ${error.message.replace(/ at line \d+/, "")}` });
        // An unclosed quote read to the end of the file: everything after its own line is read again.
        if (error.code === "CSV_QUOTE_NOT_CLOSED" || error.code === "CSV_INVALID_CLOSING_QUOTE") restartAt = line;
      },
    });
    for (const { record, info } of found) {
      const line = from + info.lines - newlinesWithin(info.raw);
      if (restartAt !== null && line > restartAt) break;
      rows.push({ line, record });
    }
    return restartAt;
  };
  for (let from: number | null = headerAt + 1; from !== null && from < lines.length; ) {
    const restartAt: number | null = readFrom(from);
    from = restartAt;
  }
  return rows.sort((a, b) => a.line - b.line);
}

/** A cell the export neutralised against formula injection ('=…, '+…) reads back as it was. */
export const unneutralise = (value: string) => (/^'[=+\-@\t\r]/.test(value) ? value.slice(1) : value);

function toLead(record: Record<string, string>): unknown {
  const lead: Record<string, unknown> = { customFields: {} };
  for (const [column, value] of Object.entries(record)) {
    const field = knownColumns[column];
    const cell = unneutralise(value);
    if (field) lead[field] = cell;
    else if (column !== "" && cell !== "") (lead.customFields as Record<string, string>)[column] = cell;
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
  type: leadImport.type,
  productEvent: (progress) => ({
    event: "import finished",
    properties: { created: Number(progress?.created ?? 0), updated: Number(progress?.updated ?? 0), rows: Number(progress?.rowsDone ?? 0) },
  }),
  payload: csvImportPayload,
  queue: "low",
  ledger: true,
  maxAttempts: 5,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ tenantId, payload, services, ledger }) => {
  if (!tenantId || !ledger) throw new AppError("VALIDATION_FAILED", "IMPORT_LEADS is a tenant's ledger job", { tier: "jobs" });
  const { rows, progress } = await resumeCsvImport(services, leadImport, payload.storageKey, ledger.progress);
  const config = jobsConfig.import;
  const scope: TenantScope = { tenantId, userId: payload.requestedBy, role: "member" };
  const store = services.store("oltp");
  const end = Math.min(rows.length, progress.rowsDone + config.rowsPerInvocation);
  // Addresses of the rows before this delivery's: a later row with one of them is a duplicate, not a new lead.
  const seen = new Set<string>();
  for (const row of rows.slice(0, progress.rowsDone)) {
    const lead = "record" in row ? leadRow.safeParse(toLead(row.record)) : undefined;
    if (lead?.success) seen.add(lead.data.email);
  }

  for (let start = progress.rowsDone; start < end; start += config.rowsPerBatch) {
    const valid: Array<Omit<LeadFields, "status">> = [];
    const firsts: string[] = [];
    const reject = (line: number, message: string) => {
      progress.invalid += 1;
      progress.errorCount += 1;
      if (progress.rowErrors.length < config.maxReportedErrors) progress.rowErrors.push({ line, message });
    };
    for (const row of rows.slice(start, Math.min(end, start + config.rowsPerBatch))) {
      if ("error" in row) {
        reject(row.line, row.error);
        continue;
      }
      const parsed = leadRow.safeParse(toLead(row.record));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        reject(row.line, `${issue?.path.join(".") || "row"} ${issue?.message ?? "is invalid"}`);
        continue;
      }
      valid.push(parsed.data);
      if (seen.has(parsed.data.email)) progress.duplicate += 1;
      else {
        seen.add(parsed.data.email);
        firsts.push(parsed.data.email);
      }
    }
    const leads = mergeByEmail(valid);
    progress.rowsDone = Math.min(end, start + config.rowsPerBatch);
    // The upsert says which leads it created; the progress takes the counts in the same statement (one round trip).
    const written = leads.length > 0
      ? (db: Parameters<typeof upsertLeadsStatement>[0]) => sql`${upsertLeadsStatement(db, scope, leads)}` // drizzle parenthesises it
      : () => sql`(select null::text as email, false as created where false)`;
    // An address on the suppression list only by its hash (its lead was erased) is matched again: nothing is sent to it.
    const reattach = await reattachStatement(addressHasher(services.env), scope, leads.map((lead) => lead.email));
    const [result] = await tenantBatch(store, scope, (db) => [
      db.execute(sql`
        with up as ${written(db)},
        counted as (
          select count(*) filter (where created)::int as created, count(*) filter (where not created)::int as updated
          from up where email in (select value from jsonb_array_elements_text(${JSON.stringify(firsts)}::jsonb))
        )
        update jobs set progress = ${JSON.stringify(progress)}::jsonb || jsonb_build_object(
            'created', ${progress.created}::int + counted.created,
            'updated', ${progress.updated}::int + counted.updated,
            'imported', ${progress.created + progress.updated}::int + counted.created + counted.updated),
          updated_at = now()
        from counted
        where tenant_id = ${tenantId} and id = ${ledger.id} and status = 'running'
        returning progress`),
      // The month's created-leads counter, from the rows this statement created (same transaction).
      ...(leads.length > 0 ? [leadsCreatedUsage(db, scope), reattach(db)] : []),
    ]);
    const recorded = rowsOf(result)[0]?.progress as ImportProgress | undefined;
    // A claim lost meanwhile (the lease ran out): another delivery owns the job now.
    if (!recorded) throw new Error("The import's claim was lost; its current holder continues");
    Object.assign(progress, { created: recorded.created, updated: recorded.updated, imported: recorded.imported });
  }
  return progress.rowsDone < rows.length ? { continueWith: { ...progress } } : { progress: { ...progress } };
  },
});
