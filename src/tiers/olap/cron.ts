// OLAP tier tasks run by the cron triggers: the aggregation job, partitions ahead, partition retention, reconciliation.
import { defineCron } from "../../platform/cron";
import { internalBatch } from "../../platform/db";
import { aggregateAnalyticsJob } from "./jobs";
import { dropExpiredPartitions, ensureAheadPartitions, pruneTierAggregates } from "./services/partitions";
import { reconcileAndRaise } from "./services/reconciliation";

/** The aggregation trigger's 5-minute slot: overlapping or repeated triggers of one slot enqueue one job. */
export const slotKey = (at: Date) => `aggregate:${new Date(Math.floor(at.getTime() / 300_000) * 300_000).toISOString()}`;

export const olapCrons = [
  // Through the job runtime, so the ETL gets the consumer's retries, deferral while a database is down
  // and a ledger row operators can see; the ETL itself is idempotent behind its watermark.
  defineCron({
    name: "olap.enqueueAggregation",
    schedule: "aggregation",
    async run(services) {
      const prepared = services.jobs.prepare(null, [{ type: aggregateAnalyticsJob.type, payload: {}, idempotencyKey: slotKey(services.clock.now()) }]);
      await internalBatch(services.store("oltp"), "system", null, (db) => [prepared.insert(db)]);
      await services.jobs.send(prepared.messages);
    },
  }),
  defineCron({
    name: "olap.ensureAheadPartitions",
    schedule: "aggregation",
    async run(services) {
      const created = await ensureAheadPartitions(services.store("olap"), services.clock.now());
      if (created > 0) services.logger.info("created analytics partitions", { created });
    },
  }),
  defineCron({
    name: "olap.dropExpiredPartitions",
    schedule: "pruning",
    async run(services) {
      const dropped = await dropExpiredPartitions(services.store("olap"), services.clock.now());
      if (dropped > 0) services.logger.info("dropped expired analytics partitions", { dropped });
    },
  }),
  defineCron({
    name: "olap.pruneTierAggregates",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneTierAggregates(services.store("olap"), services.clock.now());
      if (deleted > 0) services.logger.info("pruned tier aggregates", { deleted });
    },
  }),
  defineCron({
    name: "olap.reconcileCampaignTotals",
    schedule: "consistency",
    async run(services) {
      const result = await reconcileAndRaise(services);
      services.logger.info("reconciled campaign analytics", { checked: result.checkedCampaigns, mismatches: result.mismatches.length });
    },
  }),
];
