// The jobs tier's retention rules: the ledger, send counters, warmup marks and uploaded import files.
import type { RetentionRule } from "../../platform/retention";
import { jobRuntimeConfig } from "../../platform/jobs/config";

export const jobsRetention: RetentionRule[] = [
  { store: "oltp", name: "mailbox_warmup", rule: "one row per warming mailbox; a deleted mailbox's mark is removed", enforcedBy: "jobs.pruneSendCounters (hourly)" },
  {
    store: "oltp",
    name: "jobs",
    rule: `succeeded ${jobRuntimeConfig.retention.succeededDays} days, failed and dead ${jobRuntimeConfig.retention.failedDays} days after completion`,
    enforcedBy: "jobs.prune",
    ageColumn: "completed_at",
    maxAgeDays: jobRuntimeConfig.retention.failedDays,
  },
  { store: "oltp", name: "mailbox_daily_sends", rule: "one row per mailbox and day, kept 3 days", enforcedBy: "jobs.pruneSendCounters (hourly)", ageColumn: "day" },
  { store: "oltp", name: "campaign_daily_sends", rule: "one row per campaign and day (its own time zone), kept 4 days", enforcedBy: "jobs.pruneSendCounters (hourly)", ageColumn: "day" },
  { store: "oltp", name: "sequencer_daily_plans", rule: "one row per campaign, mailbox and day, kept 3 days", enforcedBy: "jobs.pruneSendCounters (hourly)", ageColumn: "day" },
  { store: "r2", name: "imports/<tenant>/", rule: "uploaded lead CSVs (they hold addresses), 7 days after upload", enforcedBy: "jobs.pruneImports (hourly)" },
];
