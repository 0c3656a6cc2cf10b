// Jobs tier tasks run by the cron triggers: the relay of overdue jobs and ledger pruning.
import type { TierCronTasks } from "../../cron";
import { tierStore } from "../../core/db";
import { jobsConfig } from "./config";
import { messageForJob, sendJobMessages } from "./services/enqueue";
import { pruneJobs, relayOverdueJobs } from "./services/runs";

export const jobsCron: TierCronTasks = {
  aggregation: [
    {
      name: "jobs.relayOverdue",
      async run({ env, logger }) {
        const relayed = await relayOverdueJobs(tierStore(env, "oltp"), jobsConfig);
        await sendJobMessages(env, logger, relayed.map((job) => messageForJob(job)));
        if (relayed.length > 0) logger.warn("relayed overdue jobs", { count: relayed.length });
      },
    },
  ],
  pruning: [
    {
      name: "jobs.prune",
      async run({ env, logger }) {
        const deleted = await pruneJobs(tierStore(env, "oltp"), jobsConfig);
        logger.info("pruned jobs", { deleted, ...jobsConfig.retention });
      },
    },
  ],
};
