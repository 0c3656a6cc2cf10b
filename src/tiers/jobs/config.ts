// The jobs tier's tunables in one place: relay, leases, retention, import and export chunking, per-tenant fairness, email sending.

export interface JobsConfig {
  relay: {
    /** A pending job this long past its due time is sent to its queue again (its send was lost). */
    graceSeconds: number;
    batchSize: number;
  };
  /** A running job not finished after this long is presumed crashed: claimable again and relayed. */
  leaseSeconds: number;
  retention: {
    succeededDays: number;
    failedDays: number;
    /** Rows deleted per run at most, so a backlog drains over several runs. */
    batchSize: number;
  };
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
  fairness: {
    /** Low-priority (bulk) jobs one tenant may have running at once; more are put back, not failed. */
    maxRunningBulkPerTenant: number;
    /** How long a bulk job over its tenant's cap waits before it is delivered again. */
    throttleDelaySeconds: number;
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
  relay: { graceSeconds: 120, batchSize: 500 },
  leaseSeconds: 900,
  retention: { succeededDays: 7, failedDays: 30, batchSize: 10_000 },
  import: { maxFileBytes: 20 * 1024 * 1024, rowsPerBatch: 1000, rowsPerInvocation: 20_000, maxReportedErrors: 200, keptDays: 7 },
  fairness: { maxRunningBulkPerTenant: 2, throttleDelaySeconds: 30 },
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
