// Jobs tier tasks run by the cron triggers: the runtime's relay and ledger pruning, the sequencer's tick, the daily warmup step, and pruning of counters and files.
import { defineCron } from "../../platform/cron";
import { internalBatch } from "../../platform/db";
import { jobRuntimeCrons } from "../../platform/jobs/crons";
import { jobsConfig } from "./config";
import { pruneExports, pruneFilesOlderThan } from "./services/export-leads";
import { advanceWarmupDays, pruneSendCounters } from "./services/send-allowances";

export const jobsCrons = [
  ...jobRuntimeCrons,
  // Every 5 minutes: one SEQUENCE_CAMPAIGNS tick per 5-minute slot (the idempotency key), so a cron run twice enqueues one.
  defineCron({
    name: "jobs.sequenceCampaigns",
    schedule: "aggregation",
    async run(services) {
      const slot = Math.floor(services.clock.now().getTime() / 300_000);
      const prepared = services.jobs.prepare(null, [{ type: "SEQUENCE_CAMPAIGNS", payload: {}, idempotencyKey: `tick:${slot}` }]);
      const [inserted] = await internalBatch(services.store("oltp"), "system", null, (db) => [prepared.insert(db)]);
      if (inserted.rowCount) await services.jobs.send(prepared.messages);
    },
  }),
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
