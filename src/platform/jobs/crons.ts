// The job runtime's own upkeep, run by cron: the relay of jobs whose send was lost, and ledger retention.
import { defineCron } from "../cron";
import { jobRuntimeConfig } from "./config";
import { messageForJob } from "./enqueue";
import { pruneJobs, relayOverdueJobs } from "./ledger";

export const jobRuntimeCrons = [
  defineCron({
    name: "jobs.relayOverdue",
    schedule: "aggregation",
    async run(services) {
      const relayed = await relayOverdueJobs(services.store("oltp"), jobRuntimeConfig);
      await services.jobs.send(relayed.map((job) => messageForJob(job, services.clock)));
      if (relayed.length > 0) services.logger.warn("relayed overdue jobs", { count: relayed.length });
    },
  }),
  defineCron({
    name: "jobs.prune",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneJobs(services.store("oltp"), jobRuntimeConfig);
      services.logger.info("pruned jobs", { deleted, ...jobRuntimeConfig.retention });
    },
  }),
];
