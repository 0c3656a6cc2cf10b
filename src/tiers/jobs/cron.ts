// Jobs tier tasks run by the cron triggers: the runtime's relay and ledger pruning, the daily warmup step, and pruning of counters and files.
import { defineCron } from "../../platform/cron";
import { jobRuntimeCrons } from "../../platform/jobs/crons";
import { jobsConfig } from "./config";
import { pruneExports, pruneFilesOlderThan } from "./services/export-leads";
import { advanceWarmupDays, pruneSendCounters } from "./services/send-allowances";

export const jobsCrons = [
  ...jobRuntimeCrons,
  defineCron({
    name: "jobs.pruneSendCounters",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneSendCounters(services.store("oltp"), jobsConfig.sendEmail);
      services.logger.info("pruned send counters", { ...deleted, keptDays: jobsConfig.sendEmail.countersKeptDays });
    },
  }),
  defineCron({
    name: "jobs.pruneExports",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneExports(services.env.CONTENT_BUCKET, jobsConfig.export, services.clock.now().getTime());
      services.logger.info("pruned export files", { deleted, keptDays: jobsConfig.export.keptDays });
    },
  }),
  defineCron({
    name: "jobs.pruneImports",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneFilesOlderThan(services.env.CONTENT_BUCKET, "imports/", jobsConfig.import.keptDays, services.clock.now().getTime());
      services.logger.info("pruned import files", { deleted, keptDays: jobsConfig.import.keptDays });
    },
  }),
  // Daily (03:30 UTC): each warming mailbox's ramp moves one day; idempotent within a UTC day.
  defineCron({
    name: "jobs.advanceWarmup",
    schedule: "consistency",
    async run(services) {
      const advanced = await advanceWarmupDays(services.store("oltp"), jobsConfig.sendEmail);
      services.logger.info("advanced warmup days", { advanced });
    },
  }),
];
