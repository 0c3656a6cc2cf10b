// Jobs tier tasks run by the cron triggers: the relay of overdue jobs, the daily warmup step, and pruning.
import type { TierCronTasks } from "../../cron";
import { tierStore } from "../../core/db";
import { jobsConfig } from "./config";
import { messageForJob, sendJobMessages } from "./services/enqueue";
import { pruneExports, pruneFilesOlderThan } from "./services/export-leads";
import { pruneJobs, relayOverdueJobs } from "./services/runs";
import { advanceWarmupDays, pruneSendCounters } from "./services/send-allowances";

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
    {
      name: "jobs.pruneSendCounters",
      async run({ env, logger }) {
        const deleted = await pruneSendCounters(tierStore(env, "oltp"), jobsConfig.sendEmail);
        logger.info("pruned send counters", { ...deleted, keptDays: jobsConfig.sendEmail.countersKeptDays });
      },
    },
    {
      name: "jobs.pruneExports",
      async run({ env, logger }) {
        const deleted = await pruneExports(env.CONTENT_BUCKET, jobsConfig.export);
        logger.info("pruned export files", { deleted, keptDays: jobsConfig.export.keptDays });
      },
    },
    {
      name: "jobs.pruneImports",
      async run({ env, logger }) {
        const deleted = await pruneFilesOlderThan(env.CONTENT_BUCKET, "imports/", jobsConfig.import.keptDays);
        logger.info("pruned import files", { deleted, keptDays: jobsConfig.import.keptDays });
      },
    },
  ],
  // Daily (03:30 UTC): each warming mailbox's ramp moves one day; idempotent within a UTC day.
  consistency: [
    {
      name: "jobs.advanceWarmup",
      async run({ env, logger }) {
        const advanced = await advanceWarmupDays(tierStore(env, "oltp"), jobsConfig.sendEmail);
        logger.info("advanced warmup days", { advanced });
      },
    },
  ],
};
