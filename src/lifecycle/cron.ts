// Lifecycle tasks run by the cron triggers: the daily consistency check and erasure-receipt retention.
import type { TierCronTasks } from "../cron";
import { tierStore } from "../core/db";
import { checkConsistency, consistencyDefaults } from "./consistency";
import { consistencyDeps } from "./deps";
import { pruneErasureRequests } from "./retention";

export const lifecycleCron: TierCronTasks = {
  pruning: [
    {
      name: "lifecycle.pruneErasureRequests",
      async run({ env, logger }) {
        const deleted = await pruneErasureRequests(tierStore(env, "oltp"));
        if (deleted > 0) logger.info("pruned erasure receipts", { deleted });
      },
    },
  ],
  consistency: [
    {
      name: "lifecycle.checkConsistency",
      async run({ env, logger }) {
        const report = await checkConsistency(consistencyDeps(env, logger), { tenantId: null, ...consistencyDefaults });
        logger.info("consistency check", { ...report.kinds });
      },
    },
  ],
};
