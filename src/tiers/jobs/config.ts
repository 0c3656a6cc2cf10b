// The jobs tier's tunables: import and export chunking and email sending (the runtime's own are in src/platform/jobs/config.ts).

export interface JobsConfig {
  import: {
    /** Upper bound of an uploaded CSV file. */
    maxFileBytes: number;
    /** Rows upserted per statement. */
    rowsPerBatch: number;
    /** Rows handled by one delivery before the job re-enqueues itself for the rest. */
    rowsPerInvocation: number;
    /** Row errors kept in the job's progress; more are only counted. */
    maxReportedErrors: number;
    /**
     * Days an uploaded CSV is kept in R2. It holds lead addresses, so it must not outlive its use: an import
     * finishes within hours (its retries back off to at most 15 minutes), and erasure relies on this bound.
     */
    keptDays: number;
  };
  sendEmail: {
    /** A mailbox whose bounced / sent ratio over the window reaches this is paused (bounce_protected). */
    bounceRateThreshold: number;
    bounceWindowDays: number;
    /** Fewer sends than this in the window are too few to judge. */
    bounceMinSample: number;
    /** A paused or protected mailbox's emails are looked at again after this long. */
    inactiveMailboxRetrySeconds: number;
    /** Days of mailbox and campaign send counters kept (today's is the one in use; older ones only explain the past). */
    countersKeptDays: number;
    /** Warming mailboxes advanced per statement by the daily warmup task. */
    warmupBatchSize: number;
  };
  export: {
    /** Leads read per statement. */
    rowsPerPage: number;
    /** Leads written by one delivery (one part object) before the job re-enqueues itself for the rest. */
    rowsPerInvocation: number;
    /** How long a download link from jobs.get stays valid. */
    linkTtlSeconds: number;
    /** Export files are deleted this long after they were written. */
    keptDays: number;
  };
}

export const jobsConfig: JobsConfig = {
  import: { maxFileBytes: 20 * 1024 * 1024, rowsPerBatch: 1000, rowsPerInvocation: 20_000, maxReportedErrors: 200, keptDays: 7 },
  sendEmail: {
    bounceRateThreshold: 0.05,
    bounceWindowDays: 7,
    bounceMinSample: 20,
    inactiveMailboxRetrySeconds: 3600,
    countersKeptDays: 3,
    warmupBatchSize: 1000,
  },
  export: { rowsPerPage: 5000, rowsPerInvocation: 20_000, linkTtlSeconds: 15 * 60, keptDays: 7 },
};
