// The lifecycle router: consistency checks, the retention report, and GDPR erasure with its receipt and export.
import { z } from "zod";
import { uuid } from "../platform/inputs";
import { adminProcedure, operatorProcedure, router } from "../platform/trpc";
import { contentReadDeps } from "../tiers/content";
import { checkConsistency, consistencyDefaults } from "./consistency";
import { consistencyDeps } from "./deps";
import { erasureReceipt, exportSubject, requestErasure, type ErasureSubject } from "./erasure";
import { retentionReport } from "./retention";
import { tenantClosureReceipt } from "./tenant-closure";

const subject = z.union([
  z.object({ email: z.email().max(320) }).strict(),
  z.object({ userId: uuid() }).strict(),
]);

export const lifecycleRouter = router({
  /** Runs every consistency check now (one tenant, or the platform), repairs what is safe and reports by kind. */
  checkConsistency: operatorProcedure
    .input(
      z
        .object({
          tenantId: uuid().optional(),
          /** Reclaim R2 objects no catalog row names once older than this (default 24 h). */
          orphanGraceSeconds: z.number().int().min(0).max(30 * 86_400).optional(),
        })
        .strict()
        .default({}),
    )
    .mutation(({ ctx, input }) =>
      checkConsistency(consistencyDeps(ctx), {
        tenantId: input.tenantId ?? null,
        orphanGraceSeconds: input.orphanGraceSeconds ?? consistencyDefaults.orphanGraceSeconds,
      }),
    ),
  /** Size and oldest entry of every table, R2 prefix and Redis key family of the retention table, with its rule. */
  retentionReport: operatorProcedure.query(({ ctx }) =>
    retentionReport({ oltp: ctx.store("oltp"), notifications: ctx.store("notifications"), olap: ctx.store("olap"), bucket: ctx.env.CONTENT_BUCKET, redis: ctx.redis() }),
  ),
  /** Queues the erasure of a lead (by address) or user across every tier; returns the request and job ids. */
  eraseSubject: adminProcedure
    .input(z.object({ subject, tenantId: uuid().optional() }).strict())
    .mutation(({ ctx, input }) =>
      requestErasure(
        ctx,
        ctx.scope,
        { subject: input.subject as ErasureSubject, tenantId: input.tenantId },
      ),
    ),
  erasureReceipt: adminProcedure
    .input(z.object({ requestId: uuid() }).strict())
    .query(({ ctx, input }) => erasureReceipt(ctx.store("oltp"), ctx.scope, input.requestId)),
  /** A closed tenant's erasure: its progress per tier, then its receipt (kept after the tenant is gone). */
  tenantClosure: operatorProcedure
    .input(z.object({ tenantId: uuid() }).strict())
    .query(({ ctx, input }) => tenantClosureReceipt(ctx.store("oltp"), input.tenantId)),
  /** The subject's data as JSON (portability), to hand over before erasure. */
  exportSubject: adminProcedure
    .input(z.object({ subject }).strict())
    .query(({ ctx, input }) =>
      exportSubject({ oltp: ctx.store("oltp"), notifications: ctx.store("notifications"), content: contentReadDeps(ctx), now: ctx.clock.now() }, ctx.scope, input.subject as ErasureSubject),
    ),
});
