// OLAP tier jobs: RECORD_AUDIT (and its queue-only twin) writes an audit entry; AGGREGATE_ANALYTICS runs the ETL or a rebuild.
import { z } from "zod";
import { defineJob } from "../../platform/jobs/define";
import { aggregateTiers } from "./etl/tiers";
import { catchUpEmailEvents, rebuildTenantRange } from "./etl/email-events";
import { writeAuditEntries } from "./services/audit-log";

/** Who did what to which tenant object, when and from where (src/tiers/olap/audit.ts builds it). */
export const auditPayload = z
  .object({
    actorId: z.string().min(1).max(64),
    actorRole: z.string().min(1).max(32),
    actorTenantId: z.uuid().nullable(),
    action: z.string().min(1).max(100),
    tenantId: z.uuid().nullable(),
    targetType: z.string().min(1).max(64),
    targetId: z.string().max(200).nullable(),
    occurredAt: z.iso.datetime({ offset: true }),
    ip: z.string().max(64).nullable(),
    userAgent: z.string().max(512).nullable(),
    requestId: z.string().max(128).nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .strict();
export type AuditPayload = z.infer<typeof auditPayload>;

/**
 * An admin action's compliance entry, written to OLAP's admin_audit_log; its ledger row is written in
 * the action's own OLTP transaction. Idempotent by the job's id (the entry's primary key with its time),
 * so a redelivery inserts nothing. OLAP down is SERVICE_UNAVAILABLE, which the consumer turns into a
 * deferral: the entry waits, never lost.
 */
export const recordAuditJob = defineJob({
  type: "RECORD_AUDIT",
  payload: auditPayload,
  // Members are refused the audit log; its entries must not reach them through the ledger either.
  payloadReadableBy: "admin",
  queue: "normal",
  ledger: true,
  maxAttempts: 6,
  backoff: { baseSeconds: 5, maxSeconds: 900 },
  run: async ({ jobId, payload, services }) => {
    await writeAuditEntries(services.store("olap"), [{ id: jobId, entry: payload }]);
  },
  // A redrive of 500 jobs is 500 entries: a delivery's entries go to OLAP in one round trip.
  runBatch: async (jobs, services) => {
    await writeAuditEntries(services.store("olap"), jobs.map((job) => ({ id: job.jobId, entry: job.payload })));
  },
});

/** The same entry for actions of tiers that must work while OLTP is down (notifications): queue only, no ledger. */
export const recordAuditDirectJob = defineJob({
  ...recordAuditJob,
  type: "RECORD_AUDIT_DIRECT",
  ledger: false,
});

/** The OLAP ETL (platform job from the aggregation cron), or with `rebuild` one tenant's range recomputed from source (operators). */
export const aggregateAnalyticsJob = defineJob({
  type: "AGGREGATE_ANALYTICS",
  payload: z.object({ rebuild: z.object({ tenantId: z.uuid(), from: z.iso.date(), to: z.iso.date() }).strict().optional() }).strict(),
  queue: "normal",
  ledger: true,
  maxAttempts: 3,
  backoff: { baseSeconds: 10, maxSeconds: 300 },
  run: async ({ payload, services }) => {
    const oltp = services.store("oltp");
    const olap = services.store("olap");
    if (payload.rebuild) {
      const run = await rebuildTenantRange(oltp, olap, payload.rebuild);
      services.logger.info("rebuilt analytics", { ...payload.rebuild, ...run });
      return { progress: { tables: run.tables, advanced: run.advanced, reflectsAt: run.reflectsAt.toISOString() } };
    }
    // Each source on its own (a tier that fails, fails alone): email events first, then notifications, jobs and
    // content, each behind its own watermark. A failed tier source is skipped and catches up on a later run; a
    // failed email-event run still fails the job afterwards, so the consumer defers it as before.
    const emailRun = await catchUpEmailEvents(oltp, olap).then(
      (run) => ({ run }),
      (error: unknown) => ({ error }),
    );
    const tiers = await aggregateTiers((tier) => services.store(tier));
    const tierProgress: Record<string, unknown> = {};
    for (const outcome of tiers) {
      if ("error" in outcome) {
        services.logger.warn("tier aggregation skipped", { source: outcome.source, error: outcome.error });
        tierProgress[outcome.source] = { skipped: true };
      } else {
        tierProgress[outcome.source] = { rows: outcome.rows, keys: outcome.keys, advanced: outcome.advanced };
      }
    }
    if ("error" in emailRun) throw emailRun.error;
    const run = emailRun.run;
    services.logger.info("aggregated email events", { ...run });
    services.logger.info("aggregated tier sources", tierProgress);
    return {
      progress: { tables: run.tables, advanced: run.advanced, runs: run.runs, more: run.more, reflectsAt: run.reflectsAt.toISOString(), tiers: tierProgress },
    };
  },
});

export const olapJobs = [recordAuditJob, recordAuditDirectJob, aggregateAnalyticsJob];
