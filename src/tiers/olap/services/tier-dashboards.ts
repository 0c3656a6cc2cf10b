// Dashboard reads of the other tiers' aggregates (notifications, jobs, content storage): 1 OLAP round trip each, with the source's freshness.
import { sql, type SQL } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { tierSources, type TierSource } from "../etl/tiers";
import type { RangeInput } from "./dashboards";

const period = (granularity: RangeInput["granularity"]) => sql`to_char(date_trunc(${granularity}::text, day::timestamp), 'YYYY-MM-DD')`;
const inRange = (input: RangeInput) => sql`day between ${input.from}::date and ${input.to}::date`;

async function read(store: TierStore, scope: TenantScope, source: TierSource, statement: SQL) {
  const [marks, rows] = await tenantBatch(store, scope, (db) => [
    db.execute<{ reflects_at: string | null }>(sql`select reflects_at from etl_watermarks where source = ${tierSources[source]}`),
    db.execute<Record<string, unknown>>(statement),
  ]);
  const at = marks.rows[0]?.reflects_at;
  return { rows: rows.rows, reflectsAt: at ? new Date(String(at)) : null };
}

const numbersOf = <K extends string>(row: Record<string, unknown>, keys: readonly K[]) =>
  Object.fromEntries(keys.map((k) => [k, Number(row[k] ?? 0)])) as Record<K, number>;
const sumInto = <K extends string>(totals: Record<K, number>, row: Record<K, number>, keys: readonly K[]) => {
  for (const k of keys) totals[k] += row[k];
};

const notificationCounts = ["created", "delivered", "failed", "read"] as const;
export type NotificationCounts = Record<(typeof notificationCounts)[number], number>;

export interface NotificationActivity {
  /** Per period and channel (in_app, email, push, webhook), counts of the notifications created in the period. */
  periods: Array<{ period: string; channel: string } & NotificationCounts>;
  channels: Record<string, NotificationCounts>;
  totals: NotificationCounts;
  reflectsAt: Date | null;
}

export async function notificationActivity(store: TierStore, scope: TenantScope, input: RangeInput): Promise<NotificationActivity> {
  const { rows, reflectsAt } = await read(
    store,
    scope,
    "notifications",
    sql`select ${period(input.granularity)} as period, channel, ${sql.raw(notificationCounts.map((c) => `sum("${c}")::int as "${c}"`).join(", "))}
        from notification_analytics where tenant_id = ${scope.tenantId} and ${inRange(input)} group by 1, 2 order by 1, 2`,
  );
  const zero = (): NotificationCounts => numbersOf({}, notificationCounts);
  const totals = zero();
  const channels: Record<string, NotificationCounts> = {};
  const periods = rows.map((r) => {
    const counts = numbersOf(r, notificationCounts);
    const channel = String(r.channel);
    sumInto(totals, counts, notificationCounts);
    channels[channel] ??= zero();
    sumInto(channels[channel], counts, notificationCounts);
    return { period: String(r.period), channel, ...counts };
  });
  return { periods, channels, totals, reflectsAt };
}

const jobCounts = ["created", "started", "succeeded", "failed", "dead", "waitMs", "runMs"] as const;
type JobCounts = Record<(typeof jobCounts)[number], number>;

export interface JobActivity {
  /** Per job type: jobs enqueued in the range, how they ended, and the average wait (enqueue to start) and run time. */
  types: Array<{ type: string } & JobCounts & { avgWaitMs: number | null; avgRunMs: number | null }>;
  periods: Array<{ period: string; type: string } & JobCounts>;
  reflectsAt: Date | null;
}

export async function jobActivity(store: TierStore, scope: TenantScope, input: RangeInput & { type?: string | undefined }): Promise<JobActivity> {
  const only = input.type ? sql`and type = ${input.type}` : sql``;
  const { rows, reflectsAt } = await read(
    store,
    scope,
    "jobs",
    sql`select ${period(input.granularity)} as period, type, sum(created)::int as "created", sum(started)::int as "started",
               sum(succeeded)::int as "succeeded", sum(failed)::int as "failed", sum(dead)::int as "dead",
               sum(wait_ms)::float8 as "waitMs", sum(run_ms)::float8 as "runMs"
        from job_analytics where tenant_id = ${scope.tenantId} and ${inRange(input)} ${only} group by 1, 2 order by 1, 2`,
  );
  const byType = new Map<string, JobCounts>();
  const periods = rows.map((r) => {
    const counts = numbersOf(r, jobCounts);
    const type = String(r.type);
    const totals = byType.get(type) ?? numbersOf({}, jobCounts);
    sumInto(totals, counts, jobCounts);
    byType.set(type, totals);
    return { period: String(r.period), type, ...counts };
  });
  const ended = (t: JobCounts) => t.succeeded + t.failed + t.dead;
  return {
    types: [...byType].map(([type, t]) => ({
      type,
      ...t,
      avgWaitMs: t.started > 0 ? Math.round(t.waitMs / t.started) : null,
      avgRunMs: ended(t) > 0 ? Math.round(t.runMs / ended(t)) : null,
    })),
    periods,
    reflectsAt,
  };
}

export interface StorageUsage {
  /** Per period, the catalog as last sampled in it (its latest day): objects, raw and stored bytes. */
  periods: Array<{ period: string; day: string; objects: number; rawBytes: number; storedBytes: number; compressionRatio: number | null }>;
  /** The latest sample in the range; billing_analytics.storage_mb of that day is the same sample in MB. */
  latest: { day: string; objects: number; rawBytes: number; storedBytes: number; storageMb: number } | null;
  reflectsAt: Date | null;
}

export async function storageUsage(store: TierStore, scope: TenantScope, input: RangeInput): Promise<StorageUsage> {
  const { rows, reflectsAt } = await read(
    store,
    scope,
    "content",
    sql`select distinct on (1) ${period(input.granularity)} as period, to_char(day, 'YYYY-MM-DD') as day, objects, raw_bytes::float8 as raw_bytes, stored_bytes::float8 as stored_bytes
        from content_analytics where tenant_id = ${scope.tenantId} and ${inRange(input)} order by 1, day desc`,
  );
  const periods = rows.map((r) => {
    const rawBytes = Number(r.raw_bytes);
    const storedBytes = Number(r.stored_bytes);
    return {
      period: String(r.period),
      day: String(r.day),
      objects: Number(r.objects),
      rawBytes,
      storedBytes,
      compressionRatio: rawBytes > 0 ? Math.round((storedBytes / rawBytes) * 10_000) / 10_000 : null,
    };
  });
  const last = periods[periods.length - 1];
  return {
    periods,
    latest: last
      ? { day: last.day, objects: last.objects, rawBytes: last.rawBytes, storedBytes: last.storedBytes, storageMb: Math.round((last.storedBytes / 1_048_576) * 1000) / 1000 }
      : null,
    reflectsAt,
  };
}
