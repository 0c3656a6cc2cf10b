// OLAP tier router `analytics`: dashboard reads of the aggregates and the audit log, each one OLAP round trip carrying its freshness.
import { z } from "zod";
import { isoDay as isoDayInput, isoInstant, uuid } from "../../platform/inputs";
import { pageInput } from "../../platform/paging";
import { adminProcedure, authedProcedure, operatorProcedure, router } from "../../platform/trpc";
import { aggregateAnalyticsJob } from "./jobs";
import { listAuditLog } from "./services/audit-log";
import { campaignPerformance } from "./services/campaign-performance";
import { billingUsage, granularities, leadEngagement, mailboxHealth, sequenceFunnel } from "./services/dashboards";
import { jobActivity, notificationActivity, storageUsage } from "./services/tier-dashboards";

/** A dashboard looks at most a year at a time; a wider range is a report, not a live read. */
const maxRangeDays = 366;
const isoDay = isoDayInput();
const dayRange = z
  .object({ from: isoDay, to: isoDay })
  .refine((r) => r.from <= r.to, { message: "from must not be after to", path: ["from"] })
  .refine((r) => (Date.parse(r.to) - Date.parse(r.from)) / 86_400_000 < maxRangeDays, {
    message: `the range spans at most ${maxRangeDays} days`,
    path: ["to"],
  });
const granularity = z.object({ granularity: z.enum(granularities).default("day") });

export const analyticsRouter = router({
  campaignPerformance: authedProcedure
    .input(z.object({ campaignId: uuid() }).and(granularity).and(dayRange))
    .query(({ ctx, input }) => campaignPerformance(ctx.store("olap"), ctx.scope, input)),
  mailboxHealth: authedProcedure
    .input(z.object({ mailboxId: uuid().optional() }).and(granularity).and(dayRange))
    .query(({ ctx, input }) => mailboxHealth(ctx.store("olap"), ctx.scope, input)),
  leadEngagement: authedProcedure
    .input(z.object({ leadId: uuid().optional(), top: z.number().int().min(1).max(100).default(10) }).and(granularity).and(dayRange))
    .query(({ ctx, input }) => leadEngagement(ctx.store("olap"), ctx.scope, input)),
  sequenceFunnel: authedProcedure
    .input(z.object({ campaignId: uuid() }).and(dayRange))
    .query(({ ctx, input }) => sequenceFunnel(ctx.store("olap"), ctx.scope, input)),
  billingUsage: adminProcedure
    .input(granularity.and(dayRange))
    .query(({ ctx, input }) => billingUsage(ctx.store("olap"), ctx.scope, input)),
  /** Notifications created per channel and period, with their deliveries and reads (admins, like billing). */
  notifications: adminProcedure
    .input(granularity.and(dayRange))
    .query(({ ctx, input }) => notificationActivity(ctx.store("olap"), ctx.scope, input)),
  /** Jobs enqueued per type and period: how many ran, failed or died, and their average wait and run time. */
  jobs: adminProcedure
    .input(z.object({ type: z.string().min(1).max(100).optional() }).and(granularity).and(dayRange))
    .query(({ ctx, input }) => jobActivity(ctx.store("olap"), ctx.scope, input)),
  /** The content catalog per period (objects, raw and stored bytes): the figure billing's storage comes from. */
  storage: adminProcedure
    .input(granularity.and(dayRange))
    .query(({ ctx, input }) => storageUsage(ctx.store("olap"), ctx.scope, input)),
  auditLog: adminProcedure
    .input(
      z.object({
        ...pageInput,
        tenantId: uuid().optional(),
        action: z.string().min(1).max(100).optional(),
        targetType: z.string().min(1).max(64).optional(),
        targetId: z.string().min(1).max(200).optional(),
        from: isoInstant().optional(),
        to: isoInstant().optional(),
      }),
    )
    .query(({ ctx, input }) => listAuditLog(ctx.store("olap"), ctx.scope, input)),
  /** Operators: recompute one tenant's days from the source facts, as an AGGREGATE_ANALYTICS job. */
  rebuild: operatorProcedure
    .input(z.object({ tenantId: uuid() }).and(dayRange))
    .mutation(async ({ ctx, input }) => {
      const [job] = await ctx.jobs.enqueue(ctx.scope, [
        { type: aggregateAnalyticsJob.type, payload: { rebuild: { tenantId: input.tenantId, from: input.from, to: input.to } } },
      ]);
      return { jobId: job!.id, status: job!.status };
    }),
});
