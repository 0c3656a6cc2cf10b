// Incremental ETL of OLTP email events into every daily aggregate: read from one watermark, recompute the touched days, upsert.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import { olapConfig } from "../config";
import { etlWatermarks } from "../schema";
import { aggregateTables, monthStart } from "../services/partitions";

export const emailEventsSource = "email_events";

export const eventCounts = ["queued", "sent", "delivered", "opened", "replied", "bounced", "failed", "unsubscribed"] as const;

/** The aggregates fed by email events, each with its key columns (taken from the fact's email). */
const dimensions = {
  campaign: { table: "campaign_analytics", keys: ["campaign_id"] },
  mailbox: { table: "mailbox_analytics", keys: ["mailbox_id"] },
  lead: { table: "lead_analytics", keys: ["lead_id"] },
  sequenceStep: { table: "sequence_step_analytics", keys: ["campaign_id", "step_id"] },
} as const;
type Dimension = keyof typeof dimensions;
const warmupColumns = ["warmup_day", "allowance", "daily_limit"] as const;
const billingCounts = ["emails_sent", "emails_delivered", "emails_bounced"] as const;

/**
 * Rows travel as JSON arrays in a fixed column order (half the bytes of objects, which matters for a
 * full run's tens of thousands of keys): OLTP builds them, OLAP reads them back by position.
 */
type Row = Array<string | number | null>;
type Output = Dimension | "warmup" | "billing";
export type AggregateRows = Record<Output, Row[]>;
type Column = [name: string, type: "uuid" | "date" | "int" | "numeric"];
const countLayout: Column[] = eventCounts.map((c) => [c, "int"]);
const layouts: Record<Output, Column[]> = {
  campaign: [["tenant_id", "uuid"], ["campaign_id", "uuid"], ["day", "date"], ...countLayout],
  mailbox: [["tenant_id", "uuid"], ["mailbox_id", "uuid"], ["day", "date"], ...countLayout],
  lead: [["tenant_id", "uuid"], ["lead_id", "uuid"], ["day", "date"], ...countLayout],
  sequenceStep: [["tenant_id", "uuid"], ["campaign_id", "uuid"], ["step_id", "uuid"], ["day", "date"], ...countLayout],
  warmup: [["tenant_id", "uuid"], ["mailbox_id", "uuid"], ["day", "date"], ...countLayout, ["warmup_day", "int"], ["allowance", "int"], ["daily_limit", "int"]],
  billing: [["tenant_id", "uuid"], ["day", "date"], ["emails_sent", "int"], ["emails_delivered", "int"], ["emails_bounced", "int"], ["storage_mb", "numeric"]],
};
const dayOf = (output: Output, row: Row) => String(row[layouts[output].findIndex(([name]) => name === "day")]);

export interface AggregationRun {
  /** (tenant, campaign, day) keys recomputed from the source. */
  recomputed: number;
  /** Keys recomputed per aggregate table. */
  tables: Record<string, number>;
  /** False when another run moved the watermark first: this run wrote nothing, that one covers it. */
  advanced: boolean;
  reflectsAt: Date;
}

const ident = (name: string) => sql.identifier(name);
const list = (names: readonly string[], prefix = "") => sql.raw(names.map((n) => `${prefix}"${n}"`).join(", "));
const countColumns = sql.raw(eventCounts.map((type) => `count(*) filter (where f.type = '${type}')::int as "${type}"`).join(", "));

/**
 * The OLTP read, one statement. `facts` selects (tenant_id, campaign_id, step_id, lead_id, mailbox_id, day)
 * of the facts that decide what is touched: the new facts of an incremental run, or a tenant's range for a
 * rebuild. Every fact of each touched (tenant, day) is read once (the tenant's index on occurred_at) and
 * joined to its email; each aggregate then groups those facts, keeping only its touched keys. So a run
 * costs the touched tenant-days, not the entities' whole history, and a full run is one pass over the facts.
 */
function readAggregates(facts: SQL, bounds: SQL, today: SQL) {
  const dimension = (name: Dimension) => {
    const { keys } = dimensions[name];
    // Group first, then keep the touched keys: the groups are far fewer than the facts.
    return sql`select g.* from (
        select f.tenant_id, ${list(keys, "f.")}, f.day, ${countColumns}
        from day_facts f where ${sql.raw(keys.map((k) => `f."${k}" is not null`).join(" and "))}
        group by f.tenant_id, ${list(keys, "f.")}, f.day
      ) g
      where (g.tenant_id, ${list(keys, "g.")}, g.day) in (select distinct tenant_id, ${list(keys)}, day from facts)`;
  };
  const json = (output: Output, query: SQL) =>
    sql`(select coalesce(json_agg(json_build_array(${sql.raw(layouts[output].map(([name]) => `x."${name}"`).join(", "))})), '[]'::json) from (${query}) x)`;
  return sql`
    with ${bounds}, facts as materialized (${facts}),
    tenant_days as (
      select distinct tenant_id, day from facts
      union select distinct tenant_id, ${today} from facts where ${today} is not null
    ),
    day_facts as materialized (
      select ev.tenant_id, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, td.day, ev.type
      from tenant_days td
      join email_events ev on ev.tenant_id = td.tenant_id
        and ev.occurred_at >= td.day::timestamp at time zone 'UTC' and ev.occurred_at < (td.day + 1)::timestamp at time zone 'UTC'
        -- Redundant with the range, but a hash key: a full run joins every fact in one pass instead of
        -- testing each against every day of its tenant; a small run still takes the index range per day.
        and (ev.occurred_at at time zone 'UTC')::date = td.day
      join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
    ),
    mailbox_days as materialized (${dimension("mailbox")})
    select (select high::text from bounds) as high, now() as at,
      ${json("campaign", dimension("campaign"))} as campaign,
      ${json("mailbox", sql`select * from mailbox_days`)} as mailbox,
      ${json("lead", dimension("lead"))} as lead,
      ${json("sequenceStep", dimension("sequenceStep"))} as "sequenceStep",
      ${json("warmup", sql`
        select d.*, mb.warmup_day, least(mb.daily_limit, mb.warmup_start + mb.warmup_day * mb.warmup_increment) as allowance, mb.daily_limit
        from mailbox_days d join mailboxes mb on mb.tenant_id = d.tenant_id and mb.id = d.mailbox_id
        where mb.warmup_enabled`)} as warmup,
      ${json("billing", sql`
        select td.tenant_id, td.day,
               count(f.type) filter (where f.type = 'sent')::int as emails_sent,
               count(f.type) filter (where f.type = 'delivered')::int as emails_delivered,
               count(f.type) filter (where f.type = 'bounced')::int as emails_bounced,
               case when td.day = ${today} then
                 (select round(coalesce(sum(o.stored_size), 0) / 1048576.0, 3) from content_objects o where o.tenant_id = td.tenant_id)
               end as storage_mb
        from tenant_days td left join day_facts f on f.tenant_id = td.tenant_id and f.day = td.day
        group by td.tenant_id, td.day`)} as billing`;
}

/** The source columns of facts: the fact's email gives every key, its own time gives the day. */
const factColumns = sql`ev.tenant_id, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, (ev.occurred_at at time zone 'UTC')::date as day`;

/**
 * One incremental run: 3 round trips whatever the volume (OLAP watermark, OLTP read, OLAP write).
 *
 * Why the keys are recomputed rather than incremented: a run reads every fact recorded by a transaction
 * between the watermark and the oldest transaction still running (pg_snapshot_xmin), so nothing that
 * commits late is ever skipped; facts of transactions that committed above that bound are visible
 * too and are read again next run. Recomputing each touched key and day from all of its source facts
 * makes reading a fact twice harmless, and a fact that occurred days ago lands in its own day. One pass
 * over the new facts feeds every aggregate, and one watermark covers them all.
 */
export async function aggregateEmailEvents(oltp: TierStore, olap: TierStore): Promise<AggregationRun> {
  const [marks] = await internalBatch(olap, "analytics", null, (db) => [
    db.select({ position: etlWatermarks.position }).from(etlWatermarks).where(sql`${etlWatermarks.source} = ${emailEventsSource}`),
  ]);
  const low = marks[0]?.position ?? 0n;
  const bounds = sql`bounds as (select ${low.toString()}::xid8 as low, pg_snapshot_xmin(pg_current_snapshot()) as high)`;
  const facts = sql`
    select ${factColumns}
    from email_events ev join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id cross join bounds b
    where ev.recorded_xid >= b.low and ev.recorded_xid < b.high`;
  const read = await readSource(oltp, facts, bounds);
  return writeAggregates(olap, read.rows, { reflectsAt: read.reflectsAt, watermark: { low, high: read.high } });
}

/**
 * Recomputes one tenant's days in [from, to] from the source and replaces what OLAP holds for them,
 * whatever it holds (a corrupted or lost row is restored, a row without facts removed). The watermark
 * does not move. Billing storage is only known now: past days keep their sampled storage.
 */
export async function rebuildTenantRange(
  oltp: TierStore,
  olap: TierStore,
  range: { tenantId: string; from: string; to: string },
): Promise<AggregationRun> {
  const bounds = sql`bounds as (select null::text as high)`;
  const facts = sql`
    select ${factColumns}
    from email_events ev join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
    where ev.tenant_id = ${range.tenantId}
      and ev.occurred_at >= (${range.from}::date)::timestamp at time zone 'UTC'
      and ev.occurred_at < (${range.to}::date + 1)::timestamp at time zone 'UTC'`;
  const read = await readSource(oltp, facts, bounds, range);
  return writeAggregates(olap, read.rows, { reflectsAt: read.reflectsAt, clear: range });
}

async function readSource(oltp: TierStore, facts: SQL, bounds: SQL, range?: { from: string; to: string }) {
  // A rebuild samples storage only if today is in its range; an incremental run always for the tenants it touches.
  const today = range
    ? sql`(case when current_date between ${range.from}::date and ${range.to}::date then (now() at time zone 'UTC')::date end)`
    : sql`(now() at time zone 'UTC')::date`;
  const [read] = await internalBatch(oltp, "analytics", null, (db) => [
    db.execute<{ high: string | null; at: string } & AggregateRows>(readAggregates(facts, bounds, today)),
  ]);
  const { high, at, ...rows } = read.rows[0]!;
  return { high: high === null ? 0n : BigInt(high), reflectsAt: new Date(at), rows };
}

/** The rows of one output as a relation `r`, each column read back by its position. */
const recordset = (output: Output, rows: Row[]) =>
  sql`(select ${sql.raw(layouts[output].map(([name, type], i) => `(e->>${i})::${type} as "${name}"`).join(", "))}
       from json_array_elements(${JSON.stringify(rows)}::json) e) r`;

/** An upsert of recomputed days into one table, gated on the watermark's compare-and-set when there is one. */
function upsert(output: Output, table: string, keys: readonly string[], values: readonly string[], rows: Row[], gate: SQL) {
  const columns = [...keys, "day", ...values];
  return sql`
    insert into ${ident(table)} (tenant_id, ${list(columns)})
    select r.tenant_id, ${list(columns, "r.")} from ${recordset(output, rows)}
    where ${gate}
    on conflict (tenant_id, ${list([...keys, "day"])}) do update set
      ${sql.raw(values.map((v) => `"${v}" = excluded."${v}"`).join(", "))}, updated_at = now()`;
}

/**
 * Writes every recomputed day (and, incrementally, moves the watermark) in one OLAP round trip: the
 * partitions any late day needs, then one statement whose upserts only apply if the watermark still
 * holds the value this run started from, so overlapping runs never interleave their writes.
 */
async function writeAggregates(
  olap: TierStore,
  all: AggregateRows,
  run: { reflectsAt: Date; watermark?: { low: bigint; high: bigint }; clear?: { tenantId: string; from: string; to: string } },
): Promise<AggregationRun> {
  // Facts older than the retention would only recreate partitions that pruning drops again.
  const oldest = monthStart(run.reflectsAt, -olapConfig.retentionMonths);
  const rows = Object.fromEntries(
    (Object.entries(all) as [Output, Row[]][]).map(([output, list]) => [output, list.filter((r) => dayOf(output, r) >= oldest)]),
  ) as AggregateRows;
  const days = (Object.entries(rows) as [Output, Row[]][]).flatMap(([output, list]) => list.map((r) => dayOf(output, r))).sort();
  const { billing: price } = olapConfig;
  const gate = run.watermark ? sql`exists (select 1 from advanced)` : sql`true`;
  const counts = [...eventCounts];
  const parts: SQL[] = [];
  if (run.watermark) {
    parts.push(sql`advanced as (
      update ${etlWatermarks} set position = ${run.watermark.high.toString()}::bigint, reflects_at = ${run.reflectsAt.toISOString()}::timestamptz, updated_at = now()
      where source = ${emailEventsSource} and position = ${run.watermark.low.toString()}::bigint
      returning 1)`);
  }
  // A rebuild first empties the range (its own statements, before the upserts see the table): rows the
  // source no longer supports go, billing keeps its storage samples.
  const clear: SQL[] = [];
  if (run.clear) {
    const { tenantId, from, to } = run.clear;
    for (const { table } of [...Object.values(dimensions), { table: "warmup_analytics" }]) {
      clear.push(sql`delete from ${ident(table)} where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date`);
    }
    clear.push(sql`
      update billing_analytics set emails_sent = 0, emails_delivered = 0, emails_bounced = 0,
        estimated_cost = round(storage_mb * ${price.perMbDay}::numeric, 4), updated_at = now()
      where tenant_id = ${tenantId} and day between ${from}::date and ${to}::date`);
  }
  for (const [name, { table, keys }] of Object.entries(dimensions)) {
    parts.push(sql`${ident(`upserted_${name}`)} as (${upsert(name as Dimension, table, keys, counts, rows[name as Dimension], gate)})`);
  }
  parts.push(sql`upserted_warmup as (${upsert("warmup", "warmup_analytics", ["mailbox_id"], [...counts, ...warmupColumns], rows.warmup, gate)})`);
  parts.push(sql`upserted_billing as (
    insert into billing_analytics (tenant_id, day, ${list(billingCounts)}, storage_mb, estimated_cost)
    select r.tenant_id, r.day, ${list(billingCounts, "r.")}, s.mb, round(r.emails_sent * ${price.perEmail}::numeric + s.mb * ${price.perMbDay}::numeric, 4)
    from ${recordset("billing", rows.billing)}
    cross join lateral (select coalesce(r.storage_mb, (select b.storage_mb from billing_analytics b where b.tenant_id = r.tenant_id and b.day = r.day), 0) as mb) s
    where ${gate}
    on conflict (tenant_id, day) do update set
      ${sql.raw(billingCounts.map((c) => `"${c}" = excluded."${c}"`).join(", "))}, storage_mb = excluded.storage_mb,
      estimated_cost = excluded.estimated_cost, updated_at = now())`);
  const write = sql`with ${sql.join(parts, sql`, `)} select ${run.watermark ? sql`(select count(*)::int from advanced)` : sql`1`} as advanced`;
  const tables = aggregateTables;
  const partitions = sql`select sum(olap_ensure_partitions(t, ${days[0] ?? null}::date, ${days[days.length - 1] ?? null}::date))
                         from unnest(${`{${tables.join(",")}}`}::text[]) as t where ${sql.raw(String(days.length > 0))}`;
  const results = await internalBatch(olap, "analytics", null, (db) => [
    db.execute(partitions),
    ...clear.map((statement) => db.execute(statement)),
    db.execute<{ advanced: number }>(write),
  ]);
  const advanced = (results[results.length - 1] as { rows: { advanced: number }[] }).rows[0]?.advanced === 1;
  const sizes = {
    campaign_analytics: rows.campaign.length,
    mailbox_analytics: rows.mailbox.length,
    lead_analytics: rows.lead.length,
    sequence_step_analytics: rows.sequenceStep.length,
    warmup_analytics: rows.warmup.length,
    billing_analytics: rows.billing.length,
  };
  return {
    recomputed: advanced ? rows.campaign.length : 0,
    tables: Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, advanced ? v : 0])),
    advanced,
    reflectsAt: run.reflectsAt,
  };
}
