// Reading the ledger (a tenant's own jobs; every tenant's for operators) and redriving dead jobs.
import { sql, type SQL } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { rowsOf } from "../../../platform/rows";
import { decodeCursor, encodeCursor } from "../../../platform/paging";
import { messageForJob, type QueuedMessage } from "../../../platform/jobs/enqueue";
import { rowsOfJobs, toJob, type Job, type JobStatus } from "../../../platform/jobs/rows";
import { idList } from "../../../platform/rows";
import type { Services } from "../../../platform/services";

export interface JobPage {
  items: Job[];
  nextCursor: string | null;
}

const cursorAt = sql`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as cursor_at`;

async function page(store: TierStore, scope: TenantScope, conditions: SQL[], limit: number, cursor?: string): Promise<JobPage> {
  if (cursor) {
    const at = decodeCursor(cursor);
    conditions.push(sql`(created_at, id) < (${at.t}::timestamptz, ${at.id}::uuid)`);
  }
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select *, ${cursorAt} from jobs where ${sql.join(conditions, sql` and `)}
                   order by created_at desc, id desc limit ${limit + 1}`),
  ]);
  const rows = rowsOf(result);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toJob),
    nextCursor: rows.length > limit && last ? encodeCursor(String(last.cursor_at), String(last.id)) : null,
  };
}

/** The caller's tenant's job; another tenant's id is NOT_FOUND, operators included. */
export async function getJob(store: TierStore, scope: TenantScope, id: string): Promise<Job> {
  const [result] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select * from jobs where tenant_id = ${scope.tenantId} and id = ${id}`),
  ]);
  const job = rowsOfJobs(result)[0];
  if (!job) throw new AppError("NOT_FOUND", "Job not found", { tier: "jobs" });
  return job;
}

export interface JobFilter {
  status?: JobStatus | undefined;
  type?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

export function listJobs(store: TierStore, scope: TenantScope, filter: JobFilter, tenantId = scope.tenantId): Promise<JobPage> {
  const conditions = [sql`tenant_id = ${tenantId}`];
  if (filter.status) conditions.push(sql`status = ${filter.status}`);
  if (filter.type) conditions.push(sql`type = ${filter.type}`);
  return page(store, scope, conditions, filter.limit, filter.cursor);
}

/** Operators: dead jobs of every tenant (the operator policy admits reads across tenants). */
export function listDeadJobs(
  store: TierStore,
  scope: TenantScope,
  filter: { type?: string | undefined; tenantId?: string | undefined; limit: number; cursor?: string | undefined },
): Promise<JobPage> {
  const conditions = [sql`status = 'dead'`];
  if (filter.type) conditions.push(sql`type = ${filter.type}`);
  if (filter.tenantId) conditions.push(sql`tenant_id = ${filter.tenantId}`);
  return page(store, scope, conditions, filter.limit, filter.cursor);
}

/** Operators: one tenant's jobs, any type and status (the operator policy admits reads across tenants). */
export const listTenantJobs = (store: TierStore, scope: TenantScope, filter: JobFilter & { tenantId: string }): Promise<JobPage> =>
  listJobs(store, scope, filter, filter.tenantId);

/**
 * Operators: dead or failed jobs start over (attempts reset, error kept until the next one) and
 * their messages are returned for sending. Ids that are not dead or failed are reported, not touched.
 */
export async function redriveJobs(
  services: Services,
  scope: TenantScope,
  ids: string[],
): Promise<{ redriven: Job[]; skipped: string[]; messages: QueuedMessage[] }> {
  const audit = services.audit.redrives(scope, ids);
  const [result] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.execute(sql`
      update jobs set status = 'pending', attempts = 0, scheduled_at = now(), started_at = null, completed_at = null, updated_at = now()
      where id in (select value::uuid from jsonb_array_elements_text(${idList(ids)}::jsonb)) and status in ('dead', 'failed')
      returning *`),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  const redriven = rowsOfJobs(result);
  const done = new Set(redriven.map((job) => job.id));
  return { redriven, skipped: ids.filter((id) => !done.has(id)), messages: redriven.map((job) => messageForJob(job, services.clock)) };
}

export interface JobStats {
  counts: Array<{ type: string; status: JobStatus; count: number }>;
  /** Seconds since the oldest pending job was due; null when nothing is pending. */
  oldestPendingAgeSeconds: number | null;
}

export async function jobStats(store: TierStore, scope: TenantScope, tenantId?: string): Promise<JobStats> {
  const only = tenantId ? sql`and tenant_id = ${tenantId}` : sql``;
  const [counts, oldest] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select type, status, count(*)::int as count from jobs where true ${only} group by type, status order by type, status`),
    db.execute(sql`select extract(epoch from now() - min(scheduled_at))::float8 as age from jobs where status = 'pending' ${only}`),
  ]);
  const age = rowsOf(oldest)[0]?.age;
  return {
    counts: rowsOf(counts).map((r) => ({ type: String(r.type), status: r.status as JobStatus, count: Number(r.count) })),
    oldestPendingAgeSeconds: age === null || age === undefined ? null : Math.max(0, Math.round(Number(age))),
  };
}
