// Jobs tier router: a tenant's own jobs (get, list), lead imports and exports, and operators' dead letters, redrive and stats.
import { tryGetContext } from "hono/context-storage";
import { z } from "zod";
import { leadStatuses } from "../oltp/schema";
import { adminProcedure, authedProcedure, operatorProcedure, router } from "../../trpc/trpc";
import { jobsConfig } from "./config";
import { jobTypes } from "./messages";
import { jobStatuses } from "./schema";
import { sendJobMessages } from "./services/enqueue";
import { exportDownload } from "./services/export-download";
import { startLeadExport } from "./services/export-leads";
import { startLeadImport } from "./services/import-leads";
import { getJob, jobStats, listDeadJobs, listJobs, redriveJobs } from "./services/queries";

const pageInput = { limit: z.number().int().min(1).max(100).default(25), cursor: z.string().max(512).optional() };

export const jobsRouter = router({
  /** A finished export also carries `download`: a signed link valid for export.linkTtlSeconds. */
  get: authedProcedure.input(z.object({ id: z.uuid() })).query(async ({ ctx, input }) => {
    const job = await getJob(ctx.store("oltp"), ctx.scope, input.id);
    const origin = tryGetContext()?.req.url ?? "http://localhost";
    return { ...job, download: await exportDownload(ctx.env, job, origin, jobsConfig) };
  }),

  list: authedProcedure
    .input(z.object({ status: z.enum(jobStatuses).optional(), type: z.enum(jobTypes).optional(), ...pageInput }))
    .query(({ ctx, input }) => listJobs(ctx.store("oltp"), ctx.scope, input)),

  /** The CSV travels in the request; it is stored in R2 and the job refers to it by key. */
  importLeads: adminProcedure
    .input(
      z.object({
        fileName: z.string().trim().min(1).max(255),
        csv: z.string().min(1).max(jobsConfig.import.maxFileBytes),
      }),
    )
    .mutation(({ ctx, input }) => startLeadImport(ctx, ctx.scope, input)),

  /** Enqueues a CSV export of the tenant's leads (optionally one campaign's, or one status); jobs.get gives the link when done. */
  exportLeads: adminProcedure
    .input(z.object({ campaignId: z.uuid().optional(), status: z.enum(leadStatuses).optional() }).default({}))
    .mutation(({ ctx, input }) => startLeadExport(ctx, ctx.scope, input)),

  listDead: operatorProcedure
    .input(z.object({ type: z.enum(jobTypes).optional(), tenantId: z.uuid().optional(), ...pageInput }))
    .query(({ ctx, input }) => listDeadJobs(ctx.store("oltp"), ctx.scope, input)),

  redrive: operatorProcedure
    .input(z.object({ ids: z.array(z.uuid()).min(1).max(500) }))
    .mutation(async ({ ctx, input }) => {
      const { redriven, skipped, messages } = await redriveJobs(ctx.store("oltp"), ctx.scope, input.ids);
      ctx.waitUntil(sendJobMessages(ctx.env, ctx.logger, messages));
      return { redriven: redriven.map((job) => job.id), skipped };
    }),

  stats: operatorProcedure.query(({ ctx }) => jobStats(ctx.store("oltp"), ctx.scope)),
});
