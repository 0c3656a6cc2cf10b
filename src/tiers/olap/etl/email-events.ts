// Incremental ETL of OLTP email events into every daily aggregate: read from one watermark, add what the new facts
// change (a first run and a rebuild recompute instead), upsert.
import { sql, type SQL } from "drizzle-orm";
import { internalBatch, type TierStore } from "../../../platform/db";
import { olapConfig } from "../config";
import { etlWatermarks } from "../schema";
import { aggregateTables } from "../services/partitions";

export const emailEventsSource = "email_events";

/**
 * Each count is of emails, not of facts: an email counts once per kind, on the UTC day of its first
 * fact of that kind. A provider repeating a fact (a webhook retried, a recordEvent re-sent) adds nothing.
 */
export const eventCounts = ["queued", "sent", "delivered", "opened", "clicked", "replied", "bounced", "failed", "unsubscribed", "complained"] as const;

/** The aggregates fed by email events, each with its key columns (taken from the fact's email). */
const dimensions = {
  campaign: { table: "campaign_analytics", keys: ["campaign_id"], labels: [] },
  mailbox: { table: "mailbox_analytics", keys: ["mailbox_id"], labels: [] },
  lead: { table: "lead_analytics", keys: ["lead_id"], labels: ["lead_email", "lead_name"] },
  sequenceStep: { table: "sequence_step_analytics", keys: ["campaign_id", "step_id"], labels: ["step_position", "step_subject"] },
} as const;
/**
 * What a dashboard shows beside a lead's or a step's numbers, copied from OLTP when the row is
 * recomputed: a dashboard read stays one OLAP round trip, and OLAP stays off every live path. The
 * lead's copy goes with its per-lead rows when the person is erased (lifecycle erasure deletes them).
 */
const labelSources: Record<Dimension, SQL> = {
  campaign: sql``,
  mailbox: sql``,
  lead: sql`, l.email as lead_email, nullif(concat_ws(' ', l.first_name, l.last_name), '') as lead_name
    from dim d left join leads l on l.tenant_id = d.tenant_id and l.id = d.lead_id`,
  sequenceStep: sql`, s.position as step_position, s.variants->0->>'subject' as step_subject
    from dim d left join sequence_steps s on s.tenant_id = d.tenant_id and s.id = d.step_id`,
};
type Dimension = keyof typeof dimensions;
const warmupColumns = ["warmup_day", "allowance", "daily_limit"] as const;
const billingCounts = ["emails_sent", "emails_delivered", "emails_bounced"] as const;

/**
 * Rows travel by column: OLTP aggregates each column into one Postgres array and sends its text, OLAP
 * casts that text back to a typed array and unnests the columns side by side. Neither side builds or
 * parses a JSON value per row, which is what a full run's hundreds of thousands of keys cost before.
 */
type Output = Dimension | "warmup" | "billing";
interface OutputColumns {
  /** Rows of the output (recomputed keys, emptied ones included). */
  n: number;
  minDay: string | null;
  maxDay: string | null;
  /** Each layout column's array, as Postgres array text (null when there are no rows). */
  columns: Array<string | null>;
}
export type AggregateRows = Record<Output, OutputColumns>;
type Column = [name: string, type: "uuid" | "date" | "int" | "numeric" | "text"];
const countLayout: Column[] = eventCounts.map((c) => [c, "int"]);
const layouts: Record<Output, Column[]> = {
  campaign: [["tenant_id", "uuid"], ["campaign_id", "uuid"], ["day", "date"], ...countLayout],
  mailbox: [["tenant_id", "uuid"], ["mailbox_id", "uuid"], ["day", "date"], ...countLayout],
  lead: [["tenant_id", "uuid"], ["lead_id", "uuid"], ["day", "date"], ...countLayout, ["lead_email", "text"], ["lead_name", "text"]],
  sequenceStep: [
    ["tenant_id", "uuid"], ["campaign_id", "uuid"], ["step_id", "uuid"], ["day", "date"], ...countLayout, ["step_position", "int"], ["step_subject", "text"],
  ],
  warmup: [["tenant_id", "uuid"], ["mailbox_id", "uuid"], ["day", "date"], ...countLayout, ["warmup_day", "int"], ["allowance", "int"], ["daily_limit", "int"]],
  billing: [["tenant_id", "uuid"], ["day", "date"], ["emails_sent", "int"], ["emails_delivered", "int"], ["emails_bounced", "int"], ["storage_mb", "numeric"]],
};
/** A recomputed key with no email to count (only repeats of facts counted on another day). */
const isEmpty = sql.raw(eventCounts.map((c) => `r."${c}" = 0`).join(" and "));

export interface AggregationRun {
  /** (tenant, campaign, day) keys recomputed from the source. */
  recomputed: number;
  /** Keys recomputed per aggregate table. */
  tables: Record<string, number>;
  /** False when another run moved the watermark first: this run wrote nothing, that one covers it. */
  advanced: boolean;
  /** True when this run stopped at its bound of facts with more already committed past it: run again to catch up. */
  more: boolean;
  reflectsAt: Date;
}

const ident = (name: string) => sql.identifier(name);
const list = (names: readonly string[], prefix = "") => sql.raw(names.map((n) => `${prefix}"${n}"`).join(", "));
/** A UTC day boundary of the source's timestamps. */
const utcDate = (column: string) => sql.raw(`(${column} at time zone 'UTC')::date`);

/**
 * What a run reads. `all`: every email's first fact of each kind, found by one GROUP BY over the facts below the
 * run's high bound (a first run, or a re-read from a zero watermark; a later chunk of it is an increment): every
 * aggregate is its plain GROUP BY of those firsts. `delta` (an incremental run): for each (email, kind) with a new
 * fact, the day its first fact had among the facts already counted and the day it has now; each aggregate gets
 * −1 on the old day and +1 on the new one, and nothing where they are the same. `touched` (a rebuild): only the
 * (tenant, keys, day) rows named by the CTEs `touched` and `touched_tenants` are recomputed, from the first facts
 * of their tenant-days.
 */
type ReadPlan = { kind: "all" } | { kind: "touched"; ctes: SQL } | { kind: "delta" };

/**
 * The OLTP read, one statement. Counts are of emails per kind: only an email's first fact of a kind (by time,
 * then id) counts, on its own UTC day; a repeated fact counts nowhere.
 *
 * `all` reads the facts once: one GROUP BY (tenant, email, kind) keeps each pair's first day, joined to its email
 * for the keys; each aggregate groups those firsts. `touched` reads the facts of the touched tenant-days only (the
 * tenant's index on occurred_at), keeps those that are their pair's first (the (tenant, email, occurred_at) index),
 * and each aggregate keeps its touched keys: a touched key with nothing left to count comes back as zeros, and is removed.
 */
function readAggregates(plan: ReadPlan, bounds: SQL, today: SQL) {
  const touched = plan.kind === "touched";
  const delta = plan.kind === "delta";
  const counted = sql.raw(
    eventCounts.map((c) => (delta ? `coalesce(sum(f.d) filter (where f.type = '${c}'), 0)::int as "${c}"` : `count(*) filter (where f.type = '${c}')::int as "${c}"`)).join(", "),
  );
  /** The facts' counts per (tenant, keys, day), one column per kind; in a delta read each fact is a +1 or −1 (`f.d`). */
  const pivoted = (keys: string[], where: SQL) => sql`
      select f.tenant_id, ${list(keys, "f.")}, f.day, ${counted}
      from day_facts f where ${where}
      group by f.tenant_id, ${list(keys, "f.")}, f.day`;
  const dimension = (name: Dimension) => {
    const { keys } = dimensions[name];
    const present = sql.raw(keys.map((k) => `f."${k}" is not null`).join(" and "));
    // Every aggregate but the lead's is a sum over `grain` (far fewer rows than facts); the lead's reads the facts.
    const grouped =
      name === "lead"
        ? pivoted(["lead_id"], present)
        : sql`select f.tenant_id, ${list(keys, "f.")}, f.day, ${summed}
        from grain f where ${present}
        group by f.tenant_id, ${list(keys, "f.")}, f.day`;
    if (!touched) return grouped;
    return sql`select k.tenant_id, ${list(keys, "k.")}, k.day,
        ${sql.raw(eventCounts.map((c) => `coalesce(g."${c}", 0) as "${c}"`).join(", "))}
      from (select distinct f.tenant_id, ${list(keys, "f.")}, f.day from touched f where ${present}) k
      left join (${grouped}) g on g.tenant_id = k.tenant_id and ${sql.raw(keys.map((k) => `g."${k}" = k."${k}"`).join(" and "))} and g.day = k.day`;
  };
  // The counts per (tenant, campaign, step, mailbox, day): one pass over the facts serves four aggregates and billing.
  const grainOf = pivoted(["campaign_id", "step_id", "mailbox_id"], sql`true`);
  const summed = sql.raw(eventCounts.map((c) => `sum(f."${c}")::int as "${c}"`).join(", "));
  const labelled = (name: Dimension) => sql`with dim as (${dimension(name)}) select d.*${labelSources[name]}`;
  // Days older than the retention would only recreate partitions that pruning drops again.
  const oldest = sql.raw(`(date_trunc('month', now() at time zone 'UTC') - interval '${olapConfig.retentionMonths} months')::date`);
  const json = (output: Output, query: SQL) =>
    sql`(select json_build_array(count(*), min(x.day)::text, max(x.day)::text,
          ${sql.raw(layouts[output].map(([name]) => `array_agg(x."${name}")::text`).join(", "))})
        from (${query}) x where x.day >= ${oldest})`;
  const sources =
    plan.kind === "delta"
      ? sql`
    new_pairs as materialized (
      select distinct ev.tenant_id, ev.email_id, ev.type
      from email_events ev cross join bounds b
      where ev.recorded_xid >= b.low and ev.recorded_xid < b.high
    ),
    touched_tenants as (select distinct tenant_id from new_pairs),
    -- Per (email, kind) with a new fact: the day its first fact had among the facts already counted (recorded
    -- below the watermark) and the day it has now (below the run's high bound). Index probes of that email's facts.
    moves as materialized (
      select p.tenant_id, p.type, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, o.day as old_day, c.day as new_day
      from new_pairs p
      cross join lateral (
        select ${utcDate("s.occurred_at")} as day from email_events s
        where s.tenant_id = p.tenant_id and s.email_id = p.email_id and s.type = p.type and s.recorded_xid < (select high from bounds)
        order by s.occurred_at, s.id limit 1
      ) c
      left join lateral (
        select ${utcDate("s.occurred_at")} as day from email_events s
        where s.tenant_id = p.tenant_id and s.email_id = p.email_id and s.type = p.type and s.recorded_xid < (select low from bounds)
        order by s.occurred_at, s.id limit 1
      ) o on true
      cross join lateral (
        select m.campaign_id, m.step_id, m.lead_id, m.mailbox_id from emails m
        where m.tenant_id = p.tenant_id and m.id = p.email_id limit 1
      ) m
      where o.day is distinct from c.day
    ),
    day_facts as materialized (
      select tenant_id, campaign_id, step_id, lead_id, mailbox_id, new_day as day, type, 1 as d from moves
      union all
      select tenant_id, campaign_id, step_id, lead_id, mailbox_id, old_day, type, -1 from moves where old_day is not null
    ),
    tenant_days as (
      select distinct tenant_id, day from day_facts
      union select distinct tenant_id, ${today} from touched_tenants where ${today} is not null
    )`
      : plan.kind === "all"
      ? sql`
    day_facts as materialized (
      select f.tenant_id, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, f.day, f.type
      from (
        select ev.tenant_id, ev.email_id, ev.type, ${utcDate("min(ev.occurred_at)")} as day
        from email_events ev where ev.recorded_xid < (select high from bounds) group by ev.tenant_id, ev.email_id, ev.type
      ) f
      join emails m on m.tenant_id = f.tenant_id and m.id = f.email_id
    ),
    grain as materialized (${grainOf}),
    tenant_days as (
      select distinct tenant_id, day from grain
      union select distinct tenant_id, ${today} from grain where ${today} is not null
    )`
      : sql`
    ${plan.ctes},
    tenant_days as (
      select distinct tenant_id, day from touched
      union select distinct tenant_id, ${today} from touched_tenants where ${today} is not null
    ),
    -- Laterals, so that each tenant-day is an index range and each fact's first-of-its-kind test an index probe:
    -- a join would let the planner hash every fact of the table for a few tenant-days.
    day_facts as materialized (
      select ev.tenant_id, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, td.day, ev.type
      from tenant_days td
      cross join lateral (
        select ev.id, ev.tenant_id, ev.email_id, ev.type, ev.occurred_at from email_events ev
        where ev.tenant_id = td.tenant_id
          and ev.occurred_at >= td.day::timestamp at time zone 'UTC' and ev.occurred_at < (td.day + 1)::timestamp at time zone 'UTC'
        offset 0 -- a fence: the planner may not pull the range up into a scan of every fact
      ) ev
      cross join lateral (
        select p.id from email_events p
        where p.tenant_id = ev.tenant_id and p.email_id = ev.email_id and p.type = ev.type
        order by p.occurred_at, p.id limit 1
      ) first
      cross join lateral (
        select m.campaign_id, m.step_id, m.lead_id, m.mailbox_id from emails m where m.tenant_id = ev.tenant_id and m.id = ev.email_id limit 1
      ) m
      where first.id = ev.id
    )`;
  // "all" defines grain itself, before tenant_days reads it; the others after day_facts (which needs their tenant_days).
  const grain = plan.kind === "all" ? sql`` : sql`, grain as materialized (${grainOf})`;
  return sql`
    with ${bounds}, ${sources}${grain},
    mailbox_days as materialized (${dimension("mailbox")})
    select (select high::text from bounds) as high, (select high < xmin from bounds) as more, now() as at,
      ${json("campaign", dimension("campaign"))} as campaign,
      ${json("mailbox", sql`select * from mailbox_days`)} as mailbox,
      ${json("lead", labelled("lead"))} as lead,
      ${json("sequenceStep", labelled("sequenceStep"))} as "sequenceStep",
      ${json("warmup", sql`
        select d.*, mb.warmup_day, least(mb.daily_limit, mb.warmup_start + mb.warmup_day * mb.warmup_increment) as allowance, mb.daily_limit
        from mailbox_days d join mailboxes mb on mb.tenant_id = d.tenant_id and mb.id = d.mailbox_id
        where mb.warmup_enabled`)} as warmup,
      ${json("billing", sql`
        select td.tenant_id, td.day,
               coalesce(g.emails_sent, 0) as emails_sent, coalesce(g.emails_delivered, 0) as emails_delivered,
               coalesce(g.emails_bounced, 0) as emails_bounced,
               case when td.day = ${today} then
                 (select round(coalesce(sum(o.stored_size), 0) / 1048576.0, 3) from content_objects o where o.tenant_id = td.tenant_id)
               end as storage_mb
        from tenant_days td left join (
          select f.tenant_id, f.day, sum(f.sent)::int as emails_sent, sum(f.delivered)::int as emails_delivered, sum(f.bounced)::int as emails_bounced
          from grain f group by f.tenant_id, f.day
        ) g on g.tenant_id = td.tenant_id and g.day = td.day`)} as billing`;
}

/**
 * One incremental run: 3 round trips whatever the volume (OLAP watermark, OLTP read, OLAP write).
 *
 * A run reads every fact recorded by a transaction between the watermark and the oldest transaction still
 * running (pg_snapshot_xmin), so nothing that commits late is ever skipped; what OLAP holds is then exactly the
 * count of the facts recorded below the new watermark (facts of transactions that committed above it are left for
 * the next run). A backlog larger than `maxFacts` is read in bounded runs (`more` says another is due); the job
 * runs them back to back. A fact that occurred days ago lands in its own day.
 *
 * An increment costs what its new facts cost, not what their days hold. An email's count of a kind sits on the
 * day of its first fact of that kind, so a new fact changes a number only when it is now that first fact: the
 * count moves from the day of the first fact recorded below the watermark (if any) to the new first's day. Those
 * changes are added to OLAP in the statement that moves the watermark from the value this run read, so they apply
 * exactly once: a run that lost the race to another writes nothing. Moving the watermark back is therefore only
 * allowed to zero (a re-read, which recomputes everything) — any other position would add its facts twice; a
 * tenant's range is repaired with rebuildTenantRange, which recomputes it. A first run (watermark zero) reads
 * everything in one set-based pass.
 */
export async function aggregateEmailEvents(
  oltp: TierStore,
  olap: TierStore,
  options: { maxFacts?: number } = {},
): Promise<AggregationRun> {
  const maxFacts = options.maxFacts ?? olapConfig.etl.maxFactsPerRun;
  if (!Number.isSafeInteger(maxFacts) || maxFacts < 1) throw new Error(`maxFacts must be a positive integer, not ${maxFacts}`);
  const [marks] = await internalBatch(olap, "analytics", null, (db) => [
    db.select({ position: etlWatermarks.position }).from(etlWatermarks).where(sql`${etlWatermarks.source} = ${emailEventsSource}`),
  ]);
  const low = marks[0]?.position ?? 0n;
  // A run reads at most `maxFacts` new facts: its high bound is the recording transaction of the first fact past
  // them (an index walk of recorded_xid), never above pg_snapshot_xmin; whole transactions only, and at least one,
  // so a transaction that recorded more facts than that is still read (alone). A backlog (a first run over years
  // of facts, an outage) is caught up by consecutive bounded runs instead of one read that outlives its connection.
  const bounds = sql`bounds as (
      select s.low, s.xmin,
             case when s.nth is null or s.nth >= s.xmin then s.xmin
                  when s.nth > s.first then s.nth
                  else (s.first::text::numeric + 1)::text::xid8 end as high
      from (
        select l.low, pg_snapshot_xmin(pg_current_snapshot()) as xmin,
               (select e.recorded_xid from email_events e where e.recorded_xid >= l.low order by e.recorded_xid offset ${maxFacts} limit 1) as nth,
               (select e.recorded_xid from email_events e where e.recorded_xid >= l.low order by e.recorded_xid limit 1) as first
        from (select ${low.toString()}::xid8 as low) l
      ) s
    )`;
  const plan: ReadPlan = low === 0n ? { kind: "all" } : { kind: "delta" };
  const read = await readSource(oltp, plan, bounds);
  const run = await writeAggregates(olap, read.rows, { reflectsAt: read.reflectsAt, mayEmpty: false, additive: plan.kind === "delta", watermark: { low, high: read.high } });
  return { ...run, more: run.advanced && read.more };
}

/**
 * Bounded runs back to back until the email events are caught up, at most `maxRuns` of them (the job's share): a
 * backlog larger than that ends with `more`, and the next cron's job continues it. Tables sum each run's keys.
 */
export async function catchUpEmailEvents(
  oltp: TierStore,
  olap: TierStore,
  options: { maxFacts?: number; maxRuns?: number } = {},
): Promise<AggregationRun & { runs: number }> {
  const maxRuns = options.maxRuns ?? olapConfig.etl.runsPerJob;
  const tables: Record<string, number> = {};
  for (let runs = 1; ; runs++) {
    const run = await aggregateEmailEvents(oltp, olap, { maxFacts: options.maxFacts });
    for (const [table, n] of Object.entries(run.tables)) tables[table] = (tables[table] ?? 0) + n;
    if (!run.more || runs >= maxRuns) return { ...run, recomputed: tables.campaign_analytics ?? 0, tables, runs };
  }
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
  const bounds = sql`bounds as (select null::text as high, null::text as xmin)`;
  const plan: ReadPlan = {
    kind: "touched",
    ctes: sql`
    touched as materialized (
      select distinct ev.tenant_id, m.campaign_id, m.step_id, m.lead_id, m.mailbox_id, ${utcDate("ev.occurred_at")} as day
      from email_events ev join emails m on m.tenant_id = ev.tenant_id and m.id = ev.email_id
      where ev.tenant_id = ${range.tenantId}
        and ev.occurred_at >= (${range.from}::date)::timestamp at time zone 'UTC'
        and ev.occurred_at < (${range.to}::date + 1)::timestamp at time zone 'UTC'
    ),
    touched_tenants as (select distinct tenant_id from touched)`,
  };
  const read = await readSource(oltp, plan, bounds, range);
  return writeAggregates(olap, read.rows, { reflectsAt: read.reflectsAt, mayEmpty: true, clear: range });
}

/**
 * The read's sorts and hashes (a full run groups every fact by email and kind) stay in memory rather than spill;
 * and no JIT: the read's many small expressions cost seconds to compile (3.4 s of a 4.7 s increment measured)
 * and run only thousands of times.
 */
const readWorkMem = "256MB";

async function readSource(oltp: TierStore, plan: ReadPlan, bounds: SQL, range?: { from: string; to: string }) {
  // A rebuild samples storage only if today is in its range; an incremental run always for the tenants it touches.
  const today = range
    ? sql`(case when current_date between ${range.from}::date and ${range.to}::date then (now() at time zone 'UTC')::date end)`
    : sql`(now() at time zone 'UTC')::date`;
  const [, read] = await internalBatch(oltp, "analytics", null, (db) => [
    // A full read joins hundreds of thousands of grouped rows to their labels, where the planner, blind to the CTEs'
    // sizes, would probe an index per row: a hash join there. Increments and rebuilds rely on their laterals' probes.
    db.execute(sql`select set_config('work_mem', ${readWorkMem}, true), set_config('jit', 'off', true),
      set_config('enable_nestloop', ${plan.kind === "all" ? "off" : "on"}, true)`),
    db.execute(readAggregates(plan, bounds, today)),
  ]);
  const { high, more, at, ...outputs } = read.rows[0]! as unknown as { high: string | null; more: boolean | null; at: string } & Record<
    Output,
    [number, string | null, string | null, ...Array<string | null>]
  >;
  const rows = Object.fromEntries(
    Object.entries(outputs).map(([output, [n, minDay, maxDay, ...columns]]) => [output, { n, minDay, maxDay, columns }]),
  ) as AggregateRows;
  return { high: high === null ? 0n : BigInt(high), more: more === true, reflectsAt: new Date(at), rows };
}

/**
 * The rows of one output as a relation `r`: one typed array per column, unnested side by side. Postgres parses
 * each array once, where reading a JSON array per row back by position re-parses the row for every column.
 */
const recordset = (output: Output, rows: OutputColumns) => {
  const layout = layouts[output];
  const columns = layout.map(([, type], i) => sql`${rows.columns[i] ?? null}::${sql.raw(type)}[]`);
  return sql`unnest(${sql.join(columns, sql`, `)}) as r(${list(layout.map(([name]) => name))})`;
};

/**
 * An upsert of recomputed days into one table, gated on the watermark's compare-and-set when there is one. Additive:
 * the rows are changes, added to the counts held (labels and warmup figures are still replaced); a row whose change
 * is zero throughout is not written.
 */
function upsert(output: Output, table: string, keys: readonly string[], values: readonly string[], rows: OutputColumns, gate: SQL, additive: boolean) {
  const columns = [...keys, "day", ...values];
  const counted = new Set<string>(eventCounts);
  const set = values.map((v) => (additive && counted.has(v) ? `"${v}" = t."${v}" + excluded."${v}"` : `"${v}" = excluded."${v}"`));
  return sql`
    insert into ${ident(table)} as t (tenant_id, ${list(columns)})
    select r.tenant_id, ${list(columns, "r.")} from ${recordset(output, rows)}
    where ${gate} and not (${isEmpty})
    on conflict (tenant_id, ${list([...keys, "day"])}) do update set ${sql.raw(set.join(", "))}, updated_at = now()`;
}

/**
 * Writes every recomputed day (and, incrementally, moves the watermark) in one OLAP round trip: the
 * partitions any late day needs, then one statement whose upserts only apply if the watermark still
 * holds the value this run started from, so overlapping runs never interleave their writes.
 */
async function writeAggregates(
  olap: TierStore,
  all: AggregateRows,
  run: {
    reflectsAt: Date;
    mayEmpty: boolean;
    /** The rows are changes to add (an incremental run), not recomputed values. */
    additive?: boolean;
    watermark?: { low: bigint; high: bigint };
    clear?: { tenantId: string; from: string; to: string };
  },
): Promise<AggregationRun> {
  // The read left out days older than the retention (they would only recreate partitions that pruning drops again).
  const rows = all;
  const days = Object.values(rows).flatMap((r) => [r.minDay, r.maxDay]).filter((d): d is string => d !== null).sort();
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
  // A key whose day has nothing left to count goes (disjoint from the upserted rows, so one statement holds both).
  const outputs: Array<[Exclude<Output, "billing">, string, readonly string[], readonly string[]]> = [
    ...(Object.entries(dimensions) as [Dimension, { table: string; keys: readonly string[]; labels: readonly string[] }][]).map(
      ([name, { table, keys, labels }]) => [name, table, keys, [...counts, ...labels]] as [Dimension, string, readonly string[], readonly string[]],
    ),
    ["warmup", "warmup_analytics", ["mailbox_id"], [...counts, ...warmupColumns]],
  ];
  const emptied: SQL[] = [];
  for (const [name, table, keys, values] of outputs) {
    if (rows[name].n === 0) continue;
    parts.push(sql`${ident(`upserted_${name}`)} as (${upsert(name, table, keys, values, rows[name], gate, run.additive === true)})`);
    // Added changes that leave a key with nothing to count (its first fact moved to another day): the row goes, in
    // a statement after the write (which it must see), in the same transaction.
    if (run.additive) {
      const zero = sql.raw(eventCounts.map((c) => `t."${c}" = 0`).join(" and "));
      emptied.push(sql`delete from ${ident(table)} t using ${recordset(name, rows[name])}
        where ${zero} and t.tenant_id = r.tenant_id and t.day = r.day and ${sql.raw(keys.map((k) => `t."${k}" = r."${k}"`).join(" and "))}`);
    }
    // A full run recomputes only keys that have something to count: there is nothing to empty.
    if (run.mayEmpty) {
      parts.push(sql`${ident(`emptied_${name}`)} as (
        delete from ${ident(table)} t using ${recordset(name, rows[name])}
        where ${gate} and ${isEmpty} and t.tenant_id = r.tenant_id and t.day = r.day and ${sql.raw(keys.map((k) => `t."${k}" = r."${k}"`).join(" and "))})`);
    }
  }
  const billed = (c: string) => (run.additive ? `t."${c}" + excluded."${c}"` : `excluded."${c}"`);
  parts.push(sql`upserted_billing as (
    insert into billing_analytics as t (tenant_id, day, ${list(billingCounts)}, storage_mb, estimated_cost)
    select r.tenant_id, r.day, ${list(billingCounts, "r.")}, s.mb, round(r.emails_sent * ${price.perEmail}::numeric + s.mb * ${price.perMbDay}::numeric, 4)
    from ${recordset("billing", rows.billing)}
    cross join lateral (select coalesce(r.storage_mb, (select b.storage_mb from billing_analytics b where b.tenant_id = r.tenant_id and b.day = r.day), 0) as mb) s
    where ${gate}
    on conflict (tenant_id, day) do update set
      ${sql.raw(billingCounts.map((c) => `"${c}" = ${billed(c)}`).join(", "))}, storage_mb = excluded.storage_mb,
      estimated_cost = round((${sql.raw(billed("emails_sent"))}) * ${price.perEmail}::numeric + excluded.storage_mb * ${price.perMbDay}::numeric, 4),
      updated_at = now())`);
  const write = sql`with ${sql.join(parts, sql`, `)} select ${run.watermark ? sql`(select count(*)::int from advanced)` : sql`1`} as advanced`;
  const tables = aggregateTables;
  const partitions = sql`select sum(olap_ensure_partitions(t, ${days[0] ?? null}::date, ${days[days.length - 1] ?? null}::date))
                         from unnest(${`{${tables.join(",")}}`}::text[]) as t where ${sql.raw(String(days.length > 0))}`;
  const results = await internalBatch(olap, "analytics", null, (db) => [
    db.execute(partitions),
    ...clear.map((statement) => db.execute(statement)),
    db.execute<{ advanced: number }>(write),
    ...emptied.map((statement) => db.execute(statement)),
  ]);
  const advanced = (results[results.length - 1 - emptied.length] as { rows: { advanced: number }[] }).rows[0]?.advanced === 1;
  const sizes = {
    campaign_analytics: rows.campaign.n,
    mailbox_analytics: rows.mailbox.n,
    lead_analytics: rows.lead.n,
    sequence_step_analytics: rows.sequenceStep.n,
    warmup_analytics: rows.warmup.n,
    billing_analytics: rows.billing.n,
  };
  return {
    recomputed: advanced ? rows.campaign.n : 0,
    tables: Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, advanced ? v : 0])),
    advanced,
    more: false,
    reflectsAt: run.reflectsAt,
  };
}
