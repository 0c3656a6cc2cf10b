// OLAP tier tasks run by the cron triggers: incremental aggregation, partitions ahead, partition retention.
import type { TierCronTasks } from "../../cron";
import { tierStore } from "../../core/db";
import { aggregateCampaignEvents } from "./etl/campaign-events";
import { dropExpiredPartitions, ensureAheadPartitions } from "./services/partitions";

export const olapCron: TierCronTasks = {
  aggregation: [
    {
      // Runs the ETL directly: it is idempotent and guarded by its watermark, so an overlapping or
      // repeated trigger costs a few queries and changes nothing.
      name: "olap.aggregateCampaignEvents",
      async run({ env, logger }) {
        const run = await aggregateCampaignEvents(tierStore(env, "oltp"), tierStore(env, "olap"));
        logger.info("aggregated campaign events", { ...run });
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
};
