// The ledger side of running jobs, for the platform ('system' role): claim a batch, record outcomes, bury, relay, prune.
import { sql } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { internalBatch, type TierStore } from "../db";
import type { SystemEvents } from "../emitters";
import { idList, rowsOf } from "../rows";
import type { JobRuntimeConfig } from "./config";
import { type ClaimedJob, rowsOfJobs, toClaimedJob, type Job } from "./rows";

/** The ledger's statements run as the platform ('system' role), across tenants. */
const ledgerBatch = <T extends [BatchItem<"pg">, ...BatchItem<"pg">[]]>(store: TierStore, build: (db: NeonHttpDatabase) => T): Promise<BatchResponse<T>> =>
  internalBatch(store, "system", null, build);

/**
 * Claims the delivered jobs in one statement. Only a pending job, or a running one whose lease
 * has run out (its worker crashed), is claimable: a redelivered or duplicated message of a job that
 * succeeded, died or is running elsewhere claims nothing and is acknowledged as a no-op.
 *
 * Per-tenant fairness: a tenant may have at most `fairness.maxRunningBulkPerTenant` low-priority
 * jobs running (counting this batch's claims in order); its other claimable low jobs are returned
 * as `throttled`, unchanged, for the consumer to put back. High and normal jobs are never capped.
 */
export async function claimJobs(
  store: TierStore,
  config: JobRuntimeConfig,
  ids: string[],
  queue: string,
  options: { bulk: boolean } = { bulk: true },
): Promise<{ claimed: ClaimedJob[]; throttled: string[] }> {
  const claimable = sql`id in (select value::uuid from jsonb_array_elements_text(${idList(ids)}::jsonb))
          and (status = 'pending' or (status = 'running' and started_at < now() - make_interval(secs => ${config.leaseSeconds})))`;
  const returned = sql`j.id, j.tenant_id, j.type, j.payload, j.priority, j.attempts, j.max_attempts, j.progress`;
  if (!options.bulk) {
    // No low job in the batch (the consumer knows each message's definition, whose queue the ledger's priority
    // is): nothing to cap, so the plain claim, without the fairness CTEs a normal or high batch would only plan.
    const [result] = await ledgerBatch(store, (db) => [
      db.execute(sql`
        update jobs j set status = 'running', attempts = j.attempts + 1, started_at = now(), updated_at = now(), last_queue = ${queue}
        where j.id in (select id from jobs where ${claimable} for update skip locked)
        returning ${returned}`),
    ]);
    return { claimed: rowsOf(result).map(toClaimedJob), throttled: [] };
  }
  const [result] = await ledgerBatch(store, (db) => [
    db.execute(sql`
      with candidates as (
        select id, tenant_id, priority, created_at from jobs
        where ${claimable}
        for update skip locked
      ), running_bulk as (
        select tenant_id, count(*)::int as running from jobs
        where status = 'running' and priority = 'low' and started_at >= now() - make_interval(secs => ${config.leaseSeconds})
          and tenant_id in (select tenant_id from candidates where priority = 'low')
          and id not in (select id from candidates)
        group by tenant_id
      ), ranked as (
        select c.id, c.priority, c.tenant_id, coalesce(r.running, 0) as running,
               row_number() over (partition by c.tenant_id, c.priority order by c.created_at, c.id) as position
        from candidates c left join running_bulk r on r.tenant_id = c.tenant_id
      ), claimed as (
        update jobs j set status = 'running', attempts = j.attempts + 1, started_at = now(), updated_at = now(), last_queue = ${queue}
        from ranked
        where j.id = ranked.id
          and (ranked.priority <> 'low' or ranked.tenant_id is null or ranked.running + ranked.position <= ${config.fairness.maxRunningBulkPerTenant})
        returning ${returned}
      )
      select claimed.*, true as claimed from claimed
      union all
      -- Only low jobs are ever held back; of those only the id is needed.
      select ranked.id, null, null, null, null, null, null, null, false from ranked
      where ranked.priority = 'low' and ranked.id not in (select id from claimed)`),
  ]);
  const rows = rowsOf(result);
  return {
    claimed: rows.filter((r) => r.claimed === true).map(toClaimedJob),
    throttled: rows.filter((r) => r.claimed !== true).map((r) => String(r.id)),
  };
}

/**
 * How one claimed run ended. `retry` counts the attempt and waits out the backoff; `deferred`
 * (a tier the job needs is down) gives the attempt back; `dead` and `failed` are final.
 */
export type RunOutcome =
  | { id: string; outcome: "succeeded"; progress?: Record<string, unknown> | undefined }
  | { id: string; outcome: "continued"; progress: Record<string, unknown> }
  | { id: string; outcome: "retry" | "deferred"; error: string; delaySeconds: number }
  | { id: string; outcome: "dead" | "failed"; error: string };

/**
 * Records every outcome of a batch in one statement; only rows still running under this claim change. Returns the
 * jobs that died (their events and give-up hooks follow): the rows of a batch's successes would only be parsed and
 * dropped, which was most of a NOOP batch's CPU in the consumer (bench:jobs --profile).
 */
export async function recordOutcomes(store: TierStore, outcomes: RunOutcome[]): Promise<Job[]> {
  const rows = outcomes.map((o) => ({
    id: o.id,
    outcome: o.outcome,
    error: "error" in o ? o.error.slice(0, 2000) : null,
    delay_seconds: "delaySeconds" in o ? o.delaySeconds : 0,
    progress: "progress" in o ? (o.progress ?? null) : null,
  }));
  const [result] = await ledgerBatch(store, (db) => [
    db.execute(sql`
      with recorded as (
      update jobs j set
        status = case o.outcome when 'succeeded' then 'succeeded' when 'dead' then 'dead' when 'failed' then 'failed' else 'pending' end,
        attempts = case when o.outcome in ('deferred', 'continued') then greatest(j.attempts - 1, 0) else j.attempts end,
        last_error = coalesce(o.error, j.last_error),
        progress = coalesce(o.progress, j.progress),
        scheduled_at = case when o.outcome in ('retry', 'deferred') then now() + make_interval(secs => o.delay_seconds)
                            when o.outcome = 'continued' then now() else j.scheduled_at end,
        completed_at = case when o.outcome in ('succeeded', 'dead', 'failed') then now() end,
        updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        as o(id uuid, outcome text, error text, delay_seconds int, progress jsonb)
      where j.id = o.id and j.status = 'running'
      returning j.*)
      select * from recorded where status = 'dead'`),
  ]);
  return rowsOfJobs(result);
}

/**
 * For the dead-letter consumer: marks jobs dead (keeping their last error, or the given reason when
 * they have none). Jobs already finished are left alone, so a redelivered dead letter changes nothing.
 */
export async function buryJobs(store: TierStore, ids: string[], reason: string): Promise<Job[]> {
  const [result] = await ledgerBatch(store, (db) => [
    db.execute(sql`
      update jobs set status = 'dead', last_error = coalesce(last_error, ${reason}), completed_at = now(), updated_at = now()
      where id in (select value::uuid from jsonb_array_elements_text(${idList(ids)}::jsonb))
        and status in ('pending', 'running')
      returning *`),
  ]);
  return rowsOfJobs(result);
}

/**
 * One admin system event per tenant and job type while it stays open: a burst of dead jobs is one
 * incident whose occurrences grow. A notifications outage must not undo the ledger's record, so
 * it is logged and the ledger (jobs.listDead) remains the source of truth.
 */
export async function raiseDeadJobEvents(systemEvents: SystemEvents, dead: Job[]): Promise<void> {
  for (const job of dead) {
    await systemEvents.raiseQuietly(
      {
        eventType: "job_dead",
        severity: "high",
        tenantId: job.tenantId,
        description: `${job.type} jobs are failing permanently`,
        details: { jobId: job.id, type: job.type, attempts: job.attempts, lastError: job.lastError },
        dedupKey: `jobs.dead:${job.type}`,
      },
      { jobId: job.id },
    );
  }
}

/** Pending jobs overdue by the grace period, and running ones past their lease, are made due again and returned for sending. */
export async function relayOverdueJobs(store: TierStore, config: JobRuntimeConfig): Promise<Job[]> {
  const [result] = await ledgerBatch(store, (db) => [
    db.execute(sql`
      update jobs j set status = 'pending', scheduled_at = now(), updated_at = now()
      where j.id in (
        select id from jobs
        where (status = 'pending' and scheduled_at < now() - make_interval(secs => ${config.relay.graceSeconds}))
           or (status = 'running' and started_at < now() - make_interval(secs => ${config.leaseSeconds}))
        order by scheduled_at
        limit ${config.relay.batchSize}
        for update skip locked)
      returning j.*`),
  ]);
  return rowsOfJobs(result);
}

/** Deletes finished jobs past retention: succeeded ones soon, failed and dead ones later (kept for inspection and redrive). */
export async function pruneJobs(store: TierStore, config: JobRuntimeConfig): Promise<number> {
  const [result] = await ledgerBatch(store, (db) => [
    db.execute(sql`
      with pruned as (
        delete from jobs where id in (
          select id from jobs
          where (status = 'succeeded' and completed_at < now() - make_interval(days => ${config.retention.succeededDays}))
             or (status in ('failed', 'dead') and completed_at < now() - make_interval(days => ${config.retention.failedDays}))
          limit ${config.retention.batchSize})
        returning 1)
      select count(*)::int as deleted from pruned`),
  ]);
  return Number(rowsOf(result)[0]?.deleted ?? 0);
}
