// Jobs tier router: a tenant's own jobs (get, list), lead imports and exports, and operators' dead letters, redrive and stats.
import { z } from "zod";
import { uuid } from "../../platform/inputs";
import { AppError } from "../../platform/errors";
import type { JobRegistry } from "../../platform/jobs/define";
import { adminProcedure, authedProcedure, operatorProcedure, router } from "../../platform/trpc";
import { leadStatuses } from "../oltp";
import { jobsConfig } from "./config";
import { jobStatuses } from "./schema";
import { exportDownload } from "./services/export-download";
import { startLeadExport } from "./services/export-leads";
import { startLeadImport } from "./services/import-leads";
import { startSuppressionImport } from "./services/import-suppressions";
import { getJob, type JobPage, jobStats, listDeadJobs, listJobs, listTenantJobs, redriveJobs } from "./services/queries";

const pageInput = { limit: z.number().int().min(1).max(100).default(25), cursor: z.string().max(512).optional() };
const jobType = z.string().min(1).max(64).optional();

/** Job types are composed at the root from every tier, so a filter is checked against the registry, not a list here. */
function knownType<T extends { type?: string | undefined }>(registry: JobRegistry, input: T): T {
  if (input.type !== undefined && !registry.get(input.type)) {
    throw new AppError("VALIDATION_FAILED", `Invalid input: type: unknown job type '${input.type}'`, { details: [{ path: "type", message: "unknown job type" }] });
  }
  return input;
}

const readable = (ctx: { scope: { role: string }; jobs: { registry: JobRegistry } }, page: JobPage): JobPage => ({
  ...page,
  items: page.items.map((job) => ctx.jobs.registry.readableBy(ctx.scope.role, job)),
});

export const jobsRouter = router({
  /** A finished export also carries `download`: a signed link valid for export.linkTtlSeconds. */
  get: authedProcedure.input(z.object({ id: uuid() })).query(async ({ ctx, input }) => {
    const job = ctx.jobs.registry.readableBy(ctx.scope.role, await getJob(ctx.store("oltp"), ctx.scope, input.id));
    return { ...job, download: await exportDownload(ctx.env, job, ctx.requestUrl ?? "http://localhost", jobsConfig, ctx.clock.now()) };
  }),

  list: authedProcedure
    .input(z.object({ status: z.enum(jobStatuses).optional(), type: jobType, ...pageInput }))
    .query(async ({ ctx, input }) => readable(ctx, await listJobs(ctx.store("oltp"), ctx.scope, knownType(ctx.jobs.registry, input)))),

  /** The CSV travels in the request; it is stored in R2 and the job refers to it by key. */
  importLeads: adminProcedure
    .input(
      z.object({
        fileName: z.string().trim().min(1).max(255),
        // No length bound here: the service measures the file's bytes and answers the documented 413 above the limit.
        csv: z.string().min(1),
      }),
    )
    .mutation(({ ctx, input }) => startLeadImport(ctx, ctx.scope, input)),

  /** A CSV of addresses (`email`, optional `reason`) for the tenant's suppression list, imported like leads: stored in R2, run as a job. */
  importSuppressions: adminProcedure
    .input(z.object({ fileName: z.string().trim().min(1).max(255), csv: z.string().min(1) }))
    .mutation(({ ctx, input }) => startSuppressionImport(ctx, ctx.scope, input)),

  /** Enqueues a CSV export of the tenant's leads (optionally one campaign's, or one status); jobs.get gives the link when done. */
  exportLeads: adminProcedure
    .input(z.object({ campaignId: uuid().optional(), status: z.enum(leadStatuses).optional() }).default({}))
    .mutation(({ ctx, input }) => startLeadExport(ctx, ctx.scope, input)),

  /** Operators: one tenant's jobs of any type and status (listDead is every tenant's dead ones). */
  listTenant: operatorProcedure
    .input(z.object({ tenantId: uuid(), status: z.enum(jobStatuses).optional(), type: jobType, ...pageInput }))
    .query(({ ctx, input }) => listTenantJobs(ctx.store("oltp"), ctx.scope, knownType(ctx.jobs.registry, input))),

  listDead: operatorProcedure
    .input(z.object({ type: jobType, tenantId: uuid().optional(), ...pageInput }))
    .query(({ ctx, input }) => listDeadJobs(ctx.store("oltp"), ctx.scope, knownType(ctx.jobs.registry, input))),

  redrive: operatorProcedure
    .input(z.object({ ids: z.array(uuid()).min(1).max(500) }))
    .mutation(async ({ ctx, input }) => {
      const { redriven, skipped, messages } = await redriveJobs(ctx, ctx.scope, input.ids);
      ctx.jobs.sendAfterResponse(messages);
      return { redriven: redriven.map((job) => job.id), skipped };
    }),

  /** Counts by type and status, and the oldest pending job's age: every tenant's, or one tenant's with `tenantId`. */
  stats: operatorProcedure
    .input(z.object({ tenantId: uuid().optional() }).optional())
    .query(({ ctx, input }) => jobStats(ctx.store("oltp"), ctx.scope, input?.tenantId)),
});
