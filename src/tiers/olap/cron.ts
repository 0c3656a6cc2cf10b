// OLAP tier tasks run by the cron triggers: the aggregation job, partitions ahead, partition retention, reconciliation.
import type { TierCronTasks } from "../../cron";
import { tierStore } from "../../core/db";
import { prepareJobs, sendJobMessages } from "../jobs/services/enqueue";
import { systemBatch } from "../notifications/services/system-scope";
import { ensureAheadPartitions, dropExpiredPartitions } from "./services/partitions";
import { reconcileAndRaise } from "./services/reconciliation";

/** The aggregation trigger's 5-minute slot: overlapping or repeated triggers of one slot enqueue one job. */
export const slotKey = (at: Date) => `aggregate:${new Date(Math.floor(at.getTime() / 300_000) * 300_000).toISOString()}`;

export const olapCron: TierCronTasks = {
  aggregation: [
    {
      // Through the jobs tier, so the ETL gets the consumer's retries, deferral while a database is
      // down and a ledger row operators can see; the ETL itself is idempotent behind its watermark.
      name: "olap.enqueueAggregation",
      async run({ env, logger }) {
        const prepared = prepareJobs(null, [{ type: "AGGREGATE_ANALYTICS", payload: {}, idempotencyKey: slotKey(new Date()) }]);
        await systemBatch(tierStore(env, "oltp"), null, (db) => [prepared.insert(db)]);
        await sendJobMessages(env, logger, prepared.messages);
      },
    },
    {
      name: "olap.ensureAheadPartitions",
      async run({ env, logger }) {
        const created = await ensureAheadPartitions(tierStore(env, "olap"));
        if (created > 0) logger.info("created analytics partitions", { created });
      },
    },
  ],
  pruning: [
    {
      name: "olap.dropExpiredPartitions",
      async run({ env, logger }) {
        const dropped = await dropExpiredPartitions(tierStore(env, "olap"));
        if (dropped > 0) logger.info("dropped expired analytics partitions", { dropped });
      },
    },
  ],
  consistency: [
    {
      name: "olap.reconcileCampaignTotals",
      async run({ env, logger }) {
        const stores = { oltp: tierStore(env, "oltp"), olap: tierStore(env, "olap"), notifications: tierStore(env, "notifications") };
        const result = await reconcileAndRaise(stores, logger);
        logger.info("reconciled campaign analytics", { checked: result.checkedCampaigns, mismatches: result.mismatches.length });
      },
    },
  ],
};
