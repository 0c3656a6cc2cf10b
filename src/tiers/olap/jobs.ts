// OLAP tier job handlers: RECORD_AUDIT (and its queue-only twin) writes an audit entry; AGGREGATE_ANALYTICS runs the ETL or a rebuild.
import { tierStore } from "../../core/db";
import type { JobHandler } from "../jobs/consumer";
import { jobDefinitions } from "../jobs/messages";
import { aggregateEmailEvents, rebuildTenantRange } from "./etl/email-events";
import { writeAuditEntry } from "./services/audit-log";

/**
 * Idempotent by the job's id (the entry's primary key with its time), so a redelivery inserts nothing.
 * OLAP down is SERVICE_UNAVAILABLE, which the consumer turns into a deferral: the entry waits, never lost.
 */
export const recordAuditJob: JobHandler = async (job, { env }) => {
  const entry = jobDefinitions.RECORD_AUDIT.payload.parse(job.payload);
  await writeAuditEntry(tierStore(env, "olap"), job.jobId, entry);
};

export const aggregateAnalyticsJob: JobHandler = async (job, { env, logger }) => {
  const payload = jobDefinitions.AGGREGATE_ANALYTICS.payload.parse(job.payload);
  const oltp = tierStore(env, "oltp");
  const olap = tierStore(env, "olap");
  const run = payload.rebuild ? await rebuildTenantRange(oltp, olap, payload.rebuild) : await aggregateEmailEvents(oltp, olap);
  logger.info(payload.rebuild ? "rebuilt analytics" : "aggregated email events", { ...payload.rebuild, ...run });
  return { progress: { tables: run.tables, advanced: run.advanced, reflectsAt: run.reflectsAt.toISOString() } };
};
