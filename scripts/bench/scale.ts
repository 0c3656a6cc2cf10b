// bench:scale (issue 22.5): does the cost of a call stay flat as tenants grow? Seeds `--small` tenants (100) on the real
// PostgreSQL server, measures, grows the same databases to `--tenants` (10,000; with 1,000 leads and 1,000 email events
// each: 10 million of both), measures again, and reports each figure at both sizes with their ratio (target ≤ 1.2×):
// - reads through the Worker under plain workerd (scripts/bench/host.ts), loaded by the one load client
//   (scripts/bench/load-client.ts) over the same sample tenants: the lead list, the login list (notifications page
//   and unread count), a dashboard read (analytics.campaignPerformance);
// - the ETL: one run over an increment of 1,000 new events (the target), and the catch-up over each phase's seeded
//   backlog in bounded runs (informational);
// - the sequencer's leads advanced per second over five sample tenants' campaigns, through the production batch.
// Set-based SQL seeds in chunks of tenants. A measurement, not a test: it exits non-zero only when it crashes.
// Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:scale [-- --tenants 10000 --small 100]
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import { systemClock } from "../../src/platform/clock";
import { tierStore } from "../../src/platform/db";
import type { Env } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { createServices } from "../../src/platform/services";
import { wired } from "../../src/root";
import { advanceTenant } from "../../src/tiers/jobs/services/sequencer";
import { aggregateEmailEvents, catchUpEmailEvents } from "../../src/tiers/olap/etl/email-events";
import { mintToken } from "../jwt";
import { startStack } from "../stack";
import { startBenchHost } from "./host";
import { uuidOf, uuidSql } from "./ids";
import { measureLoad, type Measured, type Spec } from "./load-client";
import { type BenchFigure, writeBenchResult } from "./result";

const { values: args } = parseArgs({
  options: {
    tenants: { type: "string", default: "10000" },
    small: { type: "string", default: "100" },
    leads: { type: "string", default: "1000" },
    events: { type: "string", default: "1000" },
    connections: { type: "string", default: "10" },
    duration: { type: "string", default: "5" },
    "campaign-leads": { type: "string", default: "2000" },
  },
});
const TENANTS = Number(args.tenants);
const SMALL = Number(args.small);
const LEADS = Number(args.leads);
const EMAILS = Math.max(1, Math.round(Number(args.events) / 4));
const NOTIFICATIONS = 20;
const CAMPAIGN_LEADS = Number(args["campaign-leads"]);
const connections = Number(args.connections);
const durationS = Number(args.duration);
const CHUNK = 250;
const log = (message: string) => console.error(`[bench:scale] ${message}`);
if (!process.env.DATABASE_URL) throw new Error("bench:scale seeds millions of rows: it runs on a PostgreSQL server (DATABASE_URL), not embedded PGlite");
if (!(SMALL >= 10 && TENANTS > SMALL)) throw new Error("--tenants must exceed --small, which must be at least 10");

const tenantId = (t: number) => uuidOf(`st${t}`);
const adminId = (t: number) => uuidOf(`su${t}`);
const campaignId = (t: number) => uuidOf(`sc${t}`);
/** Sample tenants, the same at both sizes: spread over the small set. */
const sample = Array.from({ length: 10 }, (_, i) => 1 + Math.floor((i * SMALL) / 10));

const jwtSecret = `scale-${randomUUID()}-${randomUUID()}`;
const stack = await startStack({ purpose: "test", databaseSet: "scale", jwtSecret });
log(stack.describe());

async function ownerQuery(tier: "oltp" | "notifications", text: string): Promise<void> {
  const client = new pg.Client({ connectionString: stack.databases.ownerUrls[tier] });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Tenants [from, to]: an admin, a verified domain with 2 mailboxes, a completed campaign of 1 step, leads, emails with 4 events each, notifications. */
async function seed(from: number, to: number): Promise<number> {
  const started = performance.now();
  for (let a = from; a <= to; a += CHUNK) {
    const b = Math.min(to, a + CHUNK - 1);
    const range = `generate_series(${a}, ${b}) t`;
    await ownerQuery(
      "oltp",
      `
      insert into tenants (id, name, daily_send_limit) select ${uuidSql("'st' || t")}, 'Scale tenant ' || t, 1000000 from ${range};
      insert into users (id, tenant_id, email, role) select ${uuidSql("'su' || t")}, ${uuidSql("'st' || t")}, 'admin@t' || t || '.scale.test', 'admin' from ${range};
      insert into domains (id, tenant_id, name, dns_records, verification_status, verified_at)
        select ${uuidSql("'sd' || t")}, ${uuidSql("'st' || t")}, 't' || t || '.scale.example', '[]'::jsonb, 'verified', now() from ${range};
      insert into mailboxes (id, tenant_id, domain_id, address, daily_limit, warmup_enabled)
        select ${uuidSql("'sm' || t || '.' || m")}, ${uuidSql("'st' || t")}, ${uuidSql("'sd' || t")}, 'box' || m || '@t' || t || '.scale.example', 10000, false
        from ${range}, generate_series(1, 2) m;
      insert into campaigns (id, tenant_id, name, status, window_start_minute, window_end_minute, send_days, daily_limit)
        select ${uuidSql("'sc' || t")}, ${uuidSql("'st' || t")}, 'Campaign', 'completed', 0, 1440, '{0,1,2,3,4,5,6}', 1000000 from ${range};
      insert into sequence_steps (id, tenant_id, campaign_id, position, delay_hours, variants)
        select ${uuidSql("'ss' || t")}, ${uuidSql("'st' || t")}, ${uuidSql("'sc' || t")}, 0, 0,
               '[{"label":"A","subject":"Hello {{firstName}}","text":"Hi {{firstName}} at {{company}}","weight":1}]'::jsonb from ${range};
      insert into leads (id, tenant_id, email, first_name, company)
        select ${uuidSql("'sl' || t || '.' || l")}, ${uuidSql("'st' || t")}, 'lead' || l || '@t' || t || '.example', 'Lead' || l, 'Company ' || (l % 97)
        from ${range}, generate_series(1, ${LEADS}) l;
      insert into emails (id, tenant_id, campaign_id, step_id, lead_id, mailbox_id, subject, content_storage_key, status, sent_at)
        select ${uuidSql("'se' || t || '.' || e")}, ${uuidSql("'st' || t")}, ${uuidSql("'sc' || t")}, ${uuidSql("'ss' || t")},
               ${uuidSql(`'sl' || t || '.' || (1 + e % ${LEADS})`)}, ${uuidSql("'sm' || t || '.' || (1 + e % 2)")}, 'Hello', 'external/' || t || '/' || e,
               'sent', now() - make_interval(days => e % 20)
        from ${range}, generate_series(1, ${EMAILS}) e;
      insert into email_events (tenant_id, email_id, type, occurred_at)
        select ${uuidSql("'st' || t")}, ${uuidSql("'se' || t || '.' || e")}, k.type, now() - make_interval(days => e % 20) + k.offset_minutes * interval '1 minute'
        from ${range}, generate_series(1, ${EMAILS}) e, (values ('queued', -3), ('sent', -2), ('delivered', -1), ('opened', 0)) as k(type, offset_minutes);`,
    );
    await ownerQuery(
      "notifications",
      `insert into notifications (tenant_id, user_id, type, title, message, channel, created_at)
       select ${uuidSql("'st' || t")}, ${uuidSql("'su' || t")}, 'lead.replied', 'Reply ' || k, 'Lead ' || k || ' replied.', 'in_app', now() - make_interval(mins => k)
       from ${range}, generate_series(1, ${NOTIFICATIONS}) k;`,
    );
    if ((b - from + 1) % 1000 < CHUNK) log(`  seeded tenants ${from}–${b} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  await Promise.all([ownerQuery("oltp", "analyze"), ownerQuery("notifications", "analyze")]);
  return (performance.now() - started) / 1000;
}

const env = { ...stack.workerVars, STORE_TIMEOUT_MS: 1_800_000 } as unknown as Env;
const oltp = tierStore(env, "oltp", 1_800_000);
const olap = tierStore(env, "olap", 1_800_000);
const services = createServices({ env, requestId: randomUUID(), logger: createLogger("error"), clock: systemClock, waitUntil: () => undefined }, wired);

/**
 * The ETL over the seeded backlog, as the cron's job reads it: bounded runs back to back (catchUpEmailEvents) until
 * caught up. Ms per thousand events, informational: the small phase's backlog starts with a first (set-based) run.
 */
async function etlCatchUp(newEvents: number) {
  const started = performance.now();
  const run = await catchUpEmailEvents(oltp, olap, { maxRuns: Number.MAX_SAFE_INTEGER });
  const ms = performance.now() - started;
  return { ms, runs: run.runs, perThousand: (ms / Math.max(1, newEvents)) * 1000 };
}

/**
 * One cron run's increment, the same at both sizes: INCREMENT new facts (a click on as many of the sample tenants'
 * emails) then one ETL run over them. Its time must not grow with the tenants and facts around it.
 */
const INCREMENT = 1000;
let incrementRound = 0;
async function etlIncrement() {
  // Each round a kind the emails have no fact of yet, so every new fact is its email's first of its kind: the same work each round.
  const kind = ["clicked", "replied", "unsubscribed", "complained"][incrementRound++];
  if (!kind) throw new Error("etlIncrement runs at most 4 rounds");
  const perTenant = Math.min(EMAILS, Math.ceil(INCREMENT / sample.length));
  await ownerQuery(
    "oltp",
    `insert into email_events (tenant_id, email_id, type, occurred_at)
     select ${uuidSql("'st' || t")}, ${uuidSql("'se' || t || '.' || e")}, '${kind}', now() - make_interval(days => e % 20) + interval '1 minute'
     from unnest(array[${sample.join(",")}]) t, generate_series(1, ${perTenant}) e`,
  );
  const started = performance.now();
  const run = await aggregateEmailEvents(oltp, olap);
  const ms = performance.now() - started;
  if (!run.advanced || run.more) throw new Error(`the increment's ETL run did not read it in one run: ${JSON.stringify(run)}`);
  return { ms, events: perTenant * sample.length };
}

/**
 * Sample tenants' campaigns, one after the other: `CAMPAIGN_LEADS` of each one's leads enrolled, running; the first
 * step advanced batch by batch. Several tenants, so that a phase times tens of batches rather than a handful (one
 * tenant's 1,000 leads are 5 batches, half a second: noise decides that ratio).
 */
async function sequencerRate(tenants: number[]) {
  let advanced = 0;
  let ms = 0;
  for (const t of tenants) {
    await ownerQuery(
      "oltp",
      `insert into campaign_mailboxes (tenant_id, campaign_id, mailbox_id) select '${tenantId(t)}', '${campaignId(t)}', id from mailboxes where tenant_id = '${tenantId(t)}' on conflict do nothing;
       insert into campaign_leads (tenant_id, campaign_id, lead_id) select '${tenantId(t)}', '${campaignId(t)}', id from leads where tenant_id = '${tenantId(t)}'
         order by id limit ${CAMPAIGN_LEADS} on conflict do nothing;
       update campaigns set status = 'running' where tenant_id = '${tenantId(t)}' and id = '${campaignId(t)}';
       analyze campaign_leads;`,
    );
    let carried: Awaited<ReturnType<typeof advanceTenant>>["next"];
    const started = performance.now();
    for (;;) {
      const result = await advanceTenant(services, tenantId(t), carried);
      carried = result.next;
      if (result.claimed === 0) break;
      advanced += result.claimed;
    }
    ms += performance.now() - started;
    await ownerQuery("oltp", `update campaigns set status = 'completed' where tenant_id = '${tenantId(t)}' and id = '${campaignId(t)}'`);
  }
  return { advanced, perSecond: advanced / (ms / 1000) };
}

const trpcQuery = (proc: string, input: unknown) => `/trpc/${proc}?input=${encodeURIComponent(JSON.stringify(input))}`;
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

async function readSpecs() {
  const tokens = await Promise.all(sample.map((t) => mintToken(jwtSecret, { sub: adminId(t), tenant_id: tenantId(t), role: "admin" })));
  const bearer = (i: number) => ({ authorization: `Bearer ${tokens[i]}` });
  return {
    "lead list": sample.map((_, i): Spec => ({ method: "GET", path: trpcQuery("leads.list", { limit: 20 }), headers: bearer(i) })),
    "login list": sample.map((_, i): Spec => ({ method: "GET", path: trpcQuery("notifications.list", { limit: 20 }), headers: bearer(i) })),
    "dashboard read": sample.map(
      (t, i): Spec => ({ method: "GET", path: trpcQuery("analytics.campaignPerformance", { campaignId: campaignId(t), granularity: "day", from: day(-30), to: day(0) }), headers: bearer(i) }),
    ),
  };
}

async function measureReads(): Promise<Record<string, Measured>> {
  const host = await startBenchHost(stack.workerVars);
  try {
    const specs = await readSpecs();
    const out: Record<string, Measured> = {};
    for (const [name, list] of Object.entries(specs)) {
      // Warm the isolate and the caches the call uses, then measure.
      for (const spec of list) {
        const response = await fetch(`${host.base}${spec.path}`, { headers: spec.headers });
        if (!response.ok) throw new Error(`${name} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
      }
      await measureLoad(host, list, { connections, durationS: 1 }); // warm-up: JIT and pools, not measured
      out[name] = await measureLoad(host, list, { connections, durationS, log });
      log(`  ${name}: p50 ${out[name]!.p50.toFixed(2)} ms, p99 ${out[name]!.p99.toFixed(2)} ms, ${out[name]!.rps.toFixed(0)} req/s`);
    }
    return out;
  } finally {
    await host.stop();
  }
}

async function phase(label: string, from: number, to: number) {
  log(`${label}: seeding tenants ${from}–${to} (${LEADS} leads, ${EMAILS * 4} email events, ${NOTIFICATIONS} notifications each)`);
  const seedS = await seed(from, to);
  log(`${label}: seeded in ${seedS.toFixed(0)} s; the ETL catching up on the new events`);
  const etl = await etlCatchUp((to - from + 1) * EMAILS * 4);
  log(`${label}: ETL catch-up ${etl.ms.toFixed(0)} ms in ${etl.runs} runs (${etl.perThousand.toFixed(2)} ms per 1,000 events); an increment`);
  // The first increment warms what a cron's run finds warm (the plans, the touched pages); the second is measured.
  await etlIncrement();
  const increment = await etlIncrement();
  log(`${label}: ETL increment of ${increment.events} events ${increment.ms.toFixed(0)} ms; the sequencer`);
  // Half the sample tenants each phase (a campaign advances once): both halves were seeded in the small phase.
  const sequencer = await sequencerRate(label === "small" ? sample.filter((_, i) => i % 2 === 0) : sample.filter((_, i) => i % 2 === 1));
  log(`${label}: sequencer ${sequencer.perSecond.toFixed(0)} leads/s; reads through the Worker`);
  const reads = await measureReads();
  return { seedS, etl, increment, sequencer, reads, load: loadavg()[0]! };
}

const small = await phase("small", 1, SMALL);
const large = await phase("large", SMALL + 1, TENANTS);

const figures: BenchFigure[] = [];
const rows: string[] = [];
const missed: string[] = [];
const compare = (metric: string, unit: string, at100: number, atN: number, higherIsWorse: boolean) => {
  const ratio = higherIsWorse ? atN / at100 : at100 / atN;
  figures.push({ metric: `${metric} at ${TENANTS} tenants`, value: atN, unit, floor: `the same at ${SMALL} tenants`, floorValue: at100, note: `ratio ${ratio.toFixed(2)} (target ≤ 1.2)` });
  rows.push(`| ${metric} | ${at100.toFixed(2)} | ${atN.toFixed(2)} | ${unit} | ${ratio.toFixed(2)}× |`);
  if (ratio > 1.2) missed.push(`${metric}: ${ratio.toFixed(2)}× at ${TENANTS} tenants against ${SMALL} (target ≤ 1.2×)`);
};
for (const name of Object.keys(small.reads)) {
  compare(`${name} p50`, "ms", small.reads[name]!.p50, large.reads[name]!.p50, true);
  compare(`${name} p99`, "ms", small.reads[name]!.p99, large.reads[name]!.p99, true);
}
compare(`ETL run over an increment of ${INCREMENT} new events`, "ms", small.increment.ms, large.increment.ms, true);
figures.push({
  metric: `ETL catch-up per 1,000 email events at ${TENANTS} tenants`, value: large.etl.perThousand, unit: "ms",
  floor: `the same at ${SMALL} tenants`, floorValue: small.etl.perThousand,
  note: `a backlog in bounded runs (${small.etl.runs} and ${large.etl.runs}); informational: the small phase's first run is the set-based full read`,
});
rows.push(`| ETL catch-up per 1,000 email events (bounded runs: ${small.etl.runs} and ${large.etl.runs}; informational) | ${small.etl.perThousand.toFixed(2)} | ${large.etl.perThousand.toFixed(2)} | ms | ${(large.etl.perThousand / small.etl.perThousand).toFixed(2)}× |`);
compare("sequencer leads advanced per second", "leads/s", small.sequencer.perSecond, large.sequencer.perSecond, false);
const markdown = [
  `Seeded on the PostgreSQL server: ${SMALL} tenants in ${small.seedS.toFixed(0)} s, then ${TENANTS - SMALL} more in ${large.seedS.toFixed(0)} s; each tenant ${LEADS} leads, ${EMAILS * 4} email events, ${NOTIFICATIONS} notifications (${((TENANTS * LEADS) / 1e6).toFixed(1)} million leads and ${((TENANTS * EMAILS * 4) / 1e6).toFixed(1)} million events in all). Reads: ${sample.length} sample tenants in turn, ${connections} connections, ${durationS} s each, the Worker under plain workerd. Sequencer: ${small.sequencer.advanced} and ${large.sequencer.advanced} leads, over 5 sample tenants' campaigns each. 1-minute load average at the end of each phase: ${small.load.toFixed(2)}, ${large.load.toFixed(2)}.`,
  "",
  `| figure | ${SMALL} tenants | ${TENANTS} tenants | unit | ratio |`,
  "| --- | --- | --- | --- | --- |",
  ...rows,
].join("\n");
console.log(markdown);
for (const m of missed) console.log(`missed: ${m}`);
writeBenchResult("scale", { figures, missed, markdown });
await stack.close();
