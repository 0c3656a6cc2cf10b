// The job runtime's tunables: relay of lost sends, leases, ledger retention, per-tenant fairness of bulk work.

export interface JobRuntimeConfig {
  relay: {
    /** A pending job this long past its due time is sent to its queue again (its send was lost). */
    graceSeconds: number;
    batchSize: number;
  };
  /** A running job not finished after this long is presumed crashed: claimable again and relayed. */
  leaseSeconds: number;
  /**
   * A chunked job (one that asks to continue) runs its next chunk in the same delivery while this
   * long has not passed since the delivery began, instead of waiting for a fresh delivery (the low
   * queue's batch window is 30 s). Far below leaseSeconds, so a running chunk is never claimed twice.
   */
  continueWithinSeconds: number;
  retention: {
    succeededDays: number;
    failedDays: number;
    /** Rows deleted per run at most, so a backlog drains over several runs. */
    batchSize: number;
  };
  fairness: {
    /** Low-priority (bulk) jobs one tenant may have running at once; more are put back, not failed. */
    maxRunningBulkPerTenant: number;
    /** How long a bulk job over its tenant's cap waits before it is delivered again. */
    throttleDelaySeconds: number;
  };
}

export const jobRuntimeConfig: JobRuntimeConfig = {
  relay: { graceSeconds: 120, batchSize: 500 },
  leaseSeconds: 900,
  continueWithinSeconds: 60,
  retention: { succeededDays: 7, failedDays: 30, batchSize: 10_000 },
  fairness: { maxRunningBulkPerTenant: 2, throttleDelaySeconds: 30 },
};
