// OLAP tier settings: partition horizon and retention.
export const olapConfig = {
  /** Months of partitions kept ready ahead of the current one, so no write ever lacks a partition. */
  partitionsAheadMonths: 3,
  /** Months of aggregates kept; older monthly partitions are dropped whole by the pruning cron. */
  retentionMonths: 25,
  /** Months of admin_audit_log kept (compliance), dropped by whole partitions like the aggregates. */
  auditRetentionMonths: 36,
  /** billing_analytics' estimated cost: emails sent times perEmail plus storage MB times perMbDay, per day. */
  billing: { perEmail: 0.0008, perMbDay: 0.00002 },
  /**
   * The email-event ETL reads at most `maxFactsPerRun` new facts per run (whole transactions), so one read stays
   * seconds long however large a backlog is; AGGREGATE_ANALYTICS runs up to `runsPerJob` of them back to back.
   */
  etl: { maxFactsPerRun: 100_000, runsPerJob: 20 },
  /** The reconciliation check compares this many recent days of this many recently active campaigns. */
  reconciliation: { windowDays: 3, sampleCampaigns: 50 },
} as const;
