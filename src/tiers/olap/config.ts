// OLAP tier settings: partition horizon and retention.
export const olapConfig = {
  /** Months of partitions kept ready ahead of the current one, so no write ever lacks a partition. */
  partitionsAheadMonths: 3,
  /** Months of aggregates kept; older monthly partitions are dropped whole by the pruning cron. */
  retentionMonths: 25,
} as const;
