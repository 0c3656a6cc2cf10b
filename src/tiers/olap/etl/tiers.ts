// Incremental ETL of the other tiers into OLAP (issue 20, point 7): notifications, the jobs ledger and the content catalog,
// each behind its own watermark, so a source that is down fails alone and catches up on a later run.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import { olapConfig } from "../config";
import { etlWatermarks } from "../schema";

/**
 * How each source is read. Unlike email_events these rows change after insert (a notification is read, a job
 * finishes, an object's references move), so each source table carries `changed_xid`, the 64-bit id of the
 * transaction that last inserted or updated the row (drizzle/oltp/0027, drizzle/notifications/0012). A run reads the
 * rows changed in [watermark, pg_snapshot_xmin): every transaction below that bound has finished, so a change that
 * commits late is read by a later run, never skipped; a change read twice is harmless because what a run writes is
 * recomputed from the source, not incremented.
 *
 * Notifications and jobs are cohorts: every count belongs to the UTC day the notification was created or the job
 * enqueued, a value that never changes. A changed row therefore touches exactly one (tenant, day), and the run
 * recomputes each touched (tenant, day) from all of its source rows and replaces what OLAP holds for it: a late
 * read, delivery or job outcome lands in its own day without doubling anything. Content is a daily sample of a
 * stock (objects and bytes in the catalog), taken for the tenants whose catalog changed (a row inserted or updated,
 * or a tombstone written: every path that deletes a catalog row writes one in the same statement), and for every
 * tenant at the day's first run.
 */
export const tierSources = { notifications: "notifications", jobs: "jobs", content: "content_objects" } as const;
export type TierSource = keyof typeof tierSources;

export interface TierAggregationRun {
  source: TierSource;
  /** Rows written (upserted) into its OLAP table. */
  rows: number;
  /** (tenant, day) keys recomputed. */
  keys: number;
  /** False when another run moved this source's watermark first: this run wrote nothing, that one covers it. */
  advanced: boolean;
  reflectsAt: Date;
}

type Row = Record<string, string | number | null>;
interface Read {
  high: bigint;
  reflectsAt: Date;
  /** The (tenant, day) keys recomputed: OLAP rows of these keys not in `rows` are removed. */
  keys: Array<{ tenant_id: string; day: string }>;
  rows: Row[];
}

interface Mark {
  low: bigint;
  reflectsAt: Date | null;
}

/** The watermark of one source and, for content, the tenants sampled lately (so a tenant whose catalog emptied is sampled again). */
async function readMark(olap: TierStore, source: TierSource): Promise<Mark & { carried: string[] }> {
  const [marks, carried] = await internalBatch(olap, "analytics", null, (db) => [
    db.select({ position: etlWatermarks.position, reflectsAt: etlWatermarks.reflectsAt }).from(etlWatermarks).where(sql`${etlWatermarks.source} = ${tierSources[source]}`),
    db.execute<{ tenant_id: string }>(
      source === "content"
        ? sql`select distinct tenant_id from content_analytics where day >= (now() at time zone 'UTC')::date - 1`
        : sql`select null::uuid as tenant_id where false`,
    ),
  ]);
  return { low: marks[0]?.position ?? 0n, reflectsAt: marks[0]?.reflectsAt ?? null, carried: carried.rows.map((r) => String(r.tenant_id)) };
}

const bounds = (low: bigint) => sql`bounds as (select ${low.toString()}::xid8 as low, pg_snapshot_xmin(pg_current_snapshot()) as high)`;
const changed = (alias: string) => sql.raw(`${alias}.changed_xid >= b.low and ${alias}.changed_xid < b.high`);
const dayOf = (column: string) => sql.raw(`(${column} at time zone 'UTC')::date`);
/**
 * A row of that UTC day: the range takes the (tenant, time) index for a small run; the redundant date equality is a
 * hash key, so a large run joins every row in one pass instead of testing each against every touched day.
 */
const inDay = (column: string, day: string) =>
  sql.raw(`${column} >= ${day}::timestamp at time zone 'UTC' and ${column} < (${day} + 1)::timestamp at time zone 'UTC' and (${column} at time zone 'UTC')::date = ${day}`);

/** One statement returning the bound, the source's clock, the touched keys and the recomputed rows, as JSON. */
const envelope = (low: bigint, ctes: SQL, keys: SQL, rows: SQL) => sql`
  with ${bounds(low)}, ${ctes}
  select (select high::text from bounds) as high, now() as at,
    (select coalesce(json_agg(k), '[]'::json) from (${keys}) k) as keys,
    (select coalesce(json_agg(r), '[]'::json) from (${rows}) r) as rows`;

/**
 * Per (tenant, creation day, channel): notifications created, outbox deliveries that succeeded or only failed,
 * reads (a user-addressed notification's read_at, a tenant-wide one's receipts). A delivery counts in its own
 * channel (email, push, webhook), so a channel row may carry deliveries and no creations.
 */
function notificationsQuery(low: bigint): SQL {
  const ctes = sql`
    touched_ids as (
      select n.id from notifications n cross join bounds b where ${changed("n")}
      union select r.notification_id from notification_receipts r cross join bounds b where ${changed("r")}
      union select d.notification_id from notification_deliveries d cross join bounds b where ${changed("d")}
    ),
    touched as materialized (
      select distinct n.tenant_id, ${dayOf("n.created_at")} as day from notifications n join touched_ids t on t.id = n.id
    ),
    cohort as materialized (
      select n.id, n.tenant_id, td.day, n.channel, n.read_at from touched td
      join notifications n on n.tenant_id = td.tenant_id and ${inDay("n.created_at", "td.day")}
    ),
    created as (
      select c.tenant_id, c.day, c.channel::text as channel, count(*)::int as created,
             (count(c.read_at) + coalesce(sum((select count(*) from notification_receipts r where r.notification_id = c.id and r.read_at is not null)), 0))::int as read
      from cohort c group by 1, 2, 3
    ),
    outbox as (
      select c.tenant_id, c.day, d.channel::text as channel, d.outbox_id,
             bool_or(d.outcome = 'sent') as ok, bool_or(d.outcome in ('failed', 'rejected')) as bad
      from cohort c join notification_deliveries d on d.notification_id = c.id
      group by 1, 2, 3, 4
    ),
    delivered as (
      select tenant_id, day, channel, count(*) filter (where ok)::int as delivered, count(*) filter (where bad and not ok)::int as failed
      from outbox group by 1, 2, 3
    )`;
  return envelope(
    low,
    ctes,
    sql`select tenant_id, day from touched`,
    sql`select coalesce(c.tenant_id, d.tenant_id) as tenant_id, coalesce(c.day, d.day) as day, coalesce(c.channel, d.channel) as channel,
               coalesce(c.created, 0) as created, coalesce(d.delivered, 0) as delivered, coalesce(d.failed, 0) as failed, coalesce(c.read, 0) as read
        from created c full join delivered d on d.tenant_id = c.tenant_id and d.day = c.day and d.channel = c.channel
        -- A channel whose only deliveries are still pending (deferred, no outcome) has nothing to count: no row, as in the source.
        where coalesce(c.created, 0) + coalesce(d.delivered, 0) + coalesce(d.failed, 0) + coalesce(c.read, 0) > 0`,
  );
}

/** Per (tenant, enqueue day, type): jobs enqueued, started, ended by status, and the milliseconds waited and run. */
function jobsQuery(low: bigint): SQL {
  const ms = (a: string, b: string) => sql.raw(`coalesce(sum(round(extract(epoch from (${b} - ${a})) * 1000)) filter (where ${a} is not null and ${b} is not null), 0)::bigint`);
  const ctes = sql`
    touched as materialized (
      select distinct j.tenant_id, ${dayOf("j.created_at")} as day from jobs j cross join bounds b
      where ${changed("j")} and j.tenant_id is not null
    )`;
  return envelope(
    low,
    ctes,
    sql`select tenant_id, day from touched`,
    sql`select td.tenant_id, td.day, j.type, count(*)::int as created, count(j.started_at)::int as started,
               count(*) filter (where j.status = 'succeeded')::int as succeeded, count(*) filter (where j.status = 'failed')::int as failed,
               count(*) filter (where j.status = 'dead')::int as dead,
               ${ms("j.created_at", "j.started_at")} as wait_ms,
               ${ms("j.started_at", "j.completed_at")} as run_ms
        from touched td join jobs j on j.tenant_id = td.tenant_id and ${inDay("j.created_at", "td.day")}
        group by 1, 2, 3`,
  );
}

/** Today's sample of each changed (or, at the day's first run, every) tenant's catalog. */
function contentQuery(mark: Mark & { carried: string[] }): SQL {
  const firstOfDay = mark.reflectsAt === null ? sql`true` : sql`(${mark.reflectsAt.toISOString()}::timestamptz at time zone 'UTC')::date < (now() at time zone 'UTC')::date`;
  const ctes = sql`
    touched as materialized (
      select distinct o.tenant_id from content_objects o cross join bounds b where ${changed("o")}
      union select distinct t.tenant_id from content_tombstones t cross join bounds b where ${changed("t")}
      union select distinct o.tenant_id from content_objects o where ${firstOfDay}
      union select value::uuid from json_array_elements_text(${JSON.stringify(mark.carried)}::json) where ${firstOfDay}
    ),
    today as (select (now() at time zone 'UTC')::date as day)`;
  return envelope(
    mark.low,
    ctes,
    sql`select t.tenant_id, d.day from touched t cross join today d`,
    sql`select t.tenant_id, d.day, count(o.tenant_id)::int as objects, coalesce(sum(o.raw_size), 0)::bigint as raw_bytes,
               coalesce(sum(o.stored_size), 0)::bigint as stored_bytes
        from touched t cross join today d left join content_objects o on o.tenant_id = t.tenant_id
        group by 1, 2`,
  );
}

const targets = {
  notifications: {
    table: "notification_analytics",
    keys: ["channel"],
    columns: { channel: "text", created: "int", delivered: "int", failed: "int", read: "int" },
  },
  jobs: {
    table: "job_analytics",
    keys: ["type"],
    columns: { type: "text", created: "int", started: "int", succeeded: "int", failed: "int", dead: "int", wait_ms: "bigint", run_ms: "bigint" },
  },
  content: { table: "content_analytics", keys: [], columns: { objects: "int", raw_bytes: "bigint", stored_bytes: "bigint" } },
} as const satisfies Record<TierSource, { table: string; keys: readonly string[]; columns: Record<string, string> }>;

async function readSource(store: TierStore, query: SQL): Promise<Read> {
  const [result] = await internalBatch(store, "analytics", null, (db) => [
    db.execute<{ high: string; at: string; keys: Read["keys"]; rows: Row[] }>(query),
  ]);
  const { high, at, keys, rows } = result.rows[0]!;
  return { high: BigInt(high), reflectsAt: new Date(at), keys, rows };
}

/**
 * One OLAP round trip: a single statement moves the watermark from `low` to `high` (compare-and-set) and, only if
 * that succeeded, upserts the recomputed rows and removes the rows of recomputed keys that the source no longer has.
 * The upserted and removed rows are disjoint, so one statement holds both. Content also writes the same sample
 * into billing_analytics.storage_mb (and its cost) of that day: the billing storage figure is this aggregate's.
 */
async function write(olap: TierStore, source: TierSource, mark: Mark, read: Read): Promise<TierAggregationRun> {
  const { table, keys, columns } = targets[source];
  const names = Object.keys(columns);
  const recordType = sql.raw(["tenant_id uuid", "day date", ...Object.entries(columns).map(([n, t]) => `"${n}" ${t}`)].join(", "));
  const rowsOf = sql`json_to_recordset(${JSON.stringify(read.rows)}::json) as r(${recordType})`;
  const keyMatch = (a: string, b: string) => sql.raw([`${a}.tenant_id = ${b}.tenant_id`, `${a}.day = ${b}.day`, ...keys.map((k) => `${a}."${k}" = ${b}."${k}"`)].join(" and "));
  const gate = sql`exists (select 1 from advanced)`;
  const values = names.filter((n) => !(keys as readonly string[]).includes(n));
  const { billing: price } = olapConfig;
  const billing =
    source === "content"
      ? sql`, billed as (
          insert into billing_analytics (tenant_id, day, storage_mb, estimated_cost)
          select r.tenant_id, r.day, round(r.stored_bytes / 1048576.0, 3), round(round(r.stored_bytes / 1048576.0, 3) * ${price.perMbDay}::numeric, 4)
          from ${rowsOf} where ${gate}
          on conflict (tenant_id, day) do update set storage_mb = excluded.storage_mb,
            estimated_cost = round(billing_analytics.emails_sent * ${price.perEmail}::numeric + excluded.storage_mb * ${price.perMbDay}::numeric, 4),
            updated_at = now())`
      : sql``;
  const statement = sql`
    with advanced as (
      update ${etlWatermarks} set position = ${read.high.toString()}::bigint, reflects_at = ${read.reflectsAt.toISOString()}::timestamptz, updated_at = now()
      where source = ${tierSources[source]} and position = ${mark.low.toString()}::bigint
      returning 1
    ),
    upserted as (
      insert into ${sql.identifier(table)} (tenant_id, day, ${sql.raw(names.map((n) => `"${n}"`).join(", "))})
      select r.tenant_id, r.day, ${sql.raw(names.map((n) => `r."${n}"`).join(", "))} from ${rowsOf}
      where ${gate}
      on conflict (tenant_id, ${sql.raw(keys.map((k) => `"${k}", `).join(""))}day) do update set
        ${sql.raw(values.map((v) => `"${v}" = excluded."${v}"`).join(", "))}, updated_at = now()
      returning 1
    ),
    removed as (
      delete from ${sql.identifier(table)} t
      using json_to_recordset(${JSON.stringify(read.keys)}::json) as k(tenant_id uuid, day date)
      where ${gate} and t.tenant_id = k.tenant_id and t.day = k.day
        and not exists (select 1 from ${rowsOf} where ${keyMatch("r", "t")})
    )${billing}
    select (select count(*)::int from advanced) as advanced, (select count(*)::int from upserted) as rows`;
  // billing_analytics is partitioned by month: the sample's day needs its partition (normally made ahead by cron).
  const days = read.rows.map((r) => String(r.day)).sort();
  const partitions =
    source === "content" && days.length > 0
      ? sql`select olap_ensure_partitions('billing_analytics', ${days[0]!}::date, ${days[days.length - 1]!}::date)`
      : sql`select 0`;
  const [, result] = await internalBatch(olap, "analytics", null, (db) => [db.execute(partitions), db.execute<{ advanced: number; rows: number }>(statement)]);
  const advanced = result.rows[0]?.advanced === 1;
  return { source, rows: advanced ? Number(result.rows[0]?.rows ?? 0) : 0, keys: advanced ? read.keys.length : 0, advanced, reflectsAt: read.reflectsAt };
}

/** One incremental run of one source: 3 round trips whatever the volume (OLAP watermark, source read, OLAP write). */
export async function aggregateTierSource(source: TierSource, store: TierStore, olap: TierStore): Promise<TierAggregationRun> {
  const mark = await readMark(olap, source);
  const query = source === "notifications" ? notificationsQuery(mark.low) : source === "jobs" ? jobsQuery(mark.low) : contentQuery(mark);
  const read = await readSource(store, query);
  return write(olap, source, mark, read);
}

/** The store each source is read from. */
export const sourceTier: Record<TierSource, "oltp" | "notifications"> = { notifications: "notifications", jobs: "oltp", content: "oltp" };

export type TierOutcome = TierAggregationRun | { source: TierSource; error: unknown };

/**
 * Every source, each on its own: a source whose tier is down (or whose run fails) is reported and left behind its
 * watermark, to catch up on a later run; the others still progress.
 */
export async function aggregateTiers(store: (tier: "oltp" | "notifications" | "olap") => TierStore): Promise<TierOutcome[]> {
  const olap = store("olap");
  const outcomes: TierOutcome[] = [];
  for (const source of Object.keys(tierSources) as TierSource[]) {
    try {
      outcomes.push(await aggregateTierSource(source, store(sourceTier[source]), olap));
    } catch (error) {
      outcomes.push({ source, error });
    }
  }
  return outcomes;
}
