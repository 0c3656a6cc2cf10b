// Jobs tier router: a tenant's own jobs (get, list), lead imports, and operators' dead letters, redrive and stats.
import { z } from "zod";
import { adminProcedure, authedProcedure, operatorProcedure, router } from "../../trpc/trpc";
import { jobsConfig } from "./config";
import { jobTypes } from "./messages";
import { jobStatuses } from "./schema";
import { sendJobMessages } from "./services/enqueue";
import { startLeadImport } from "./services/import-leads";
import { getJob, jobStats, listDeadJobs, listJobs, redriveJobs } from "./services/queries";

const pageInput = { limit: z.number().int().min(1).max(100).default(25), cursor: z.string().max(512).optional() };

export const jobsRouter = router({
  get: authedProcedure.input(z.object({ id: z.uuid() })).query(({ ctx, input }) => getJob(ctx.store("oltp"), ctx.scope, input.id)),

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
