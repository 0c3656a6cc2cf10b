// Campaign sequencer benchmark (issue 16): leads advanced per second and OLTP round trips per lead for one step of a
// big campaign, through the production sequencer batch (advanceTenant: the plan carried from the previous batch, one
// write transaction that also reads the next plan), beside the floor measured in the same run: the same email, event,
// ledger, plan and lead updates as ONE hand-written statement per batch, selecting due leads the same indexed way.
// Bodies are rendered and stored by SEND_EMAIL when it sends (src/tiers/jobs/services/sequence-content.ts), so neither
// side touches R2; what that moved costs is reported too (render + compress + store per email, R2 in memory).
// A measurement, not a test: it exits non-zero only when it crashes, and lists missed targets.
// Usage: npm run bench:campaigns [-- --leads 100000] (the scale by default)
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import type { Env } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { systemClock } from "../../src/platform/clock";
import { createServices } from "../../src/platform/services";
import { wired } from "../../src/root";
import { advanceTenant, sequencerConfig } from "../../src/tiers/jobs/services/sequencer";
import { contentConfig, prepareEmailContent, storeContent } from "../../src/tiers/content";
import { renderStep } from "../../src/tiers/oltp";
import { startStack } from "../stack";
import { writeBenchResult, type BenchFigure } from "./result";

const { values: args } = parseArgs({ options: { leads: { type: "string", default: "100000" } } });
const leadCount = Number(args.leads);
const log = (message: string) => console.error(`[bench:campaigns] ${message}`);

const stack = await startStack({ purpose: "test", jwtSecret: randomUUID() + randomUUID() });
log(stack.describe());

/** Embedded PGlite is one session held by a TCP connection for its life: connect per statement there. */
async function ownerQuery<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: stack.databases.ownerUrls.oltp });
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end();
  }
}

/** An R2-shaped bucket in memory: head, put, get, delete. */
function memoryBucket() {
  const objects = new Map<string, { bytes: Uint8Array; customMetadata: Record<string, string> }>();
  const head = async (key: string) => {
    const o = objects.get(key);
    return o ? { key, size: o.bytes.byteLength, customMetadata: o.customMetadata } : null;
  };
  return {
    objects,
    head,
    get: async (key: string) => {
      const o = objects.get(key);
      return o ? { ...(await head(key)), arrayBuffer: async () => o.bytes.slice().buffer } : null;
    },
    put: async (key: string, bytes: Uint8Array, options?: { customMetadata?: Record<string, string> }) => {
      objects.set(key, { bytes, customMetadata: options?.customMetadata ?? {} });
      return head(key);
    },
    delete: async (keys: string | string[]) => {
      for (const key of Array.isArray(keys) ? keys : [keys]) objects.delete(key);
    },
  };
}

/** One tenant, 100 mailboxes of 10,000 a day, one running campaign of 2 steps (window always open), `n` enrolled leads. */
async function seedCampaign(n: number): Promise<{ tenantId: string; campaignId: string }> {
  const tenantId = randomUUID();
  const campaignId = randomUUID();
  await ownerQuery(`
    with t as (insert into tenants (id, name, daily_send_limit) values ('${tenantId}', 'Bench', 2000000000) returning id),
    d as (insert into domains (tenant_id, name, dns_records, verification_status, verified_at) select id, 'bench-' || id || '.example', '[]'::jsonb, 'verified', now() from t returning id, tenant_id, name),
    m as (insert into mailboxes (tenant_id, domain_id, address, daily_limit, warmup_enabled)
          select d.tenant_id, d.id, 'box' || g || '@' || d.name, 10000, false from d, generate_series(1, 100) g returning id, tenant_id),
    c as (insert into campaigns (id, tenant_id, name, status, window_start_minute, window_end_minute, send_days, daily_limit)
          select '${campaignId}', id, 'Bench', 'running', 0, 1440, '{0,1,2,3,4,5,6}', 2000000000 from t returning id, tenant_id),
    cm as (insert into campaign_mailboxes (tenant_id, campaign_id, mailbox_id) select m.tenant_id, c.id, m.id from m, c)
    insert into sequence_steps (tenant_id, campaign_id, position, delay_hours, variants)
    select c.tenant_id, c.id, g, g * 48,
           jsonb_build_array(jsonb_build_object('label', 'A', 'subject', 'Hello {{firstName}}', 'weight', 1,
             'text', 'Hi {{firstName}}, a note for {{company}}. ' || repeat('We help teams like yours ship faster. ', 20),
             'html', '<p>Hi {{firstName}},</p><p>a note for {{company}}.</p>' || repeat('<p>We help teams like yours ship faster.</p>', 20)))
    from c, generate_series(0, 1) g`);
  await ownerQuery(`
    with l as (
      insert into leads (tenant_id, email, first_name, company)
      select '${tenantId}', 'lead' || g || '@bench.example', 'Lead' || g, 'Company ' || (g % 997) from generate_series(1, ${n}) g returning id)
    insert into campaign_leads (tenant_id, campaign_id, lead_id) select '${tenantId}', '${campaignId}', id from l`);
  return { tenantId, campaignId };
}

const env = {
  ...stack.workerVars,
  STORE_TIMEOUT_MS: 600_000,
  CONTENT_BUCKET: memoryBucket(),
  JOBS_HIGH: { send: async () => undefined, sendBatch: async () => undefined },
  JOBS_NORMAL: { send: async () => undefined, sendBatch: async () => undefined },
  JOBS_LOW: { send: async () => undefined, sendBatch: async () => undefined },
} as unknown as Env;
const services = createServices({ env, requestId: randomUUID(), logger: createLogger("error"), clock: systemClock, waitUntil: () => undefined }, wired);

log(`seeding 2 campaigns of ${leadCount} leads each`);
const engine = await seedCampaign(leadCount);
const floor = await seedCampaign(leadCount);
await ownerQuery("analyze");

// The sequencer's batches and the floor's, interleaved (one of each in turn, until both are done), so the machine's
// load at any moment weighs on both alike; each side's time and OLTP round trips are summed over its own calls.
log(`sequencer and floor, interleaved: first step for ${leadCount} leads each, ${sequencerConfig.batchSize} per batch`);
const store = services.store("oltp");
const trips = () => stack.neon.roundTrips().oltp ?? 0;
let carried: Awaited<ReturnType<typeof advanceTenant>>["next"];
const engineSide = { advanced: 0, batches: 0, ms: 0, trips: 0, done: false };
const floorSide = { advanced: 0, batches: 0, ms: 0, trips: 0, done: false };

async function engineBatch(): Promise<number> {
  const result = await advanceTenant(services, engine.tenantId, carried);
  carried = result.next;
  return result.claimed;
}

// The floor: one hand-written statement per batch doing the same inserts and updates (emails with their subject, queued
// events, SEND_EMAIL ledger rows, usage, the day's plan, the leads moved to their next step), over the app role's HTTP path.
// Its emails go only where the sequencer's may (campaign running; lead not unsubscribed, bounced, suppressed or replied):
// the same inserts in any state of the data, not merely in this seed's, where no lead is stopped.
async function floorBatch(): Promise<number> {
  const result = await store.sql.transaction((sql) => [
    sql`select set_config('app.current_tenant_id', ${floor.tenantId}, true), set_config('app.current_role', 'member', true)`,
    sql`
      with due as (
        select cl.campaign_id, cl.lead_id, l.first_name, gen_random_uuid() as email_id,
               (select id from mailboxes m where m.tenant_id = cl.tenant_id order by id limit 1) as mailbox_id
        from campaign_leads cl join leads l on l.tenant_id = cl.tenant_id and l.id = cl.lead_id
        join campaigns c on c.tenant_id = cl.tenant_id and c.id = cl.campaign_id and c.status = 'running'
        where cl.tenant_id = ${floor.tenantId} and cl.status = 'active' and (cl.next_send_at is null or cl.next_send_at <= now())
          -- The conditions any correct sender checks before an email exists, as the sequencer's insert does.
          and l.unsubscribed_at is null and l.bounced_at is null
          and not exists (select 1 from suppressions s where s.tenant_id = l.tenant_id and s.address = l.email)
          and not exists (select 1 from emails r where r.tenant_id = cl.tenant_id and r.lead_id = cl.lead_id
                            and r.campaign_id = cl.campaign_id and r.replied_at is not null)
        order by cl.next_send_at nulls first, cl.lead_id limit ${sequencerConfig.batchSize}
        for update of cl skip locked
      ), email as (
        insert into emails (id, tenant_id, campaign_id, lead_id, mailbox_id, subject, content_storage_key)
        select email_id, ${floor.tenantId}, campaign_id, lead_id, mailbox_id, 'Hello ' || first_name, 'emails/' || email_id from due
        returning id, tenant_id, campaign_id, lead_id, mailbox_id, queued_at
      ), event as (
        insert into email_events (tenant_id, email_id, type, occurred_at) select tenant_id, id, 'queued', queued_at from email
      ), ledger as (
        insert into jobs (id, tenant_id, type, payload, priority, max_attempts, idempotency_key)
        select id, tenant_id, 'SEND_EMAIL', jsonb_build_object('emailId', id), 'high', 6, 'email:' || id from email
      ), usage as (
        insert into usage_counters (tenant_id, period_start, emails_queued)
        select tenant_id, date_trunc('month', now() at time zone 'UTC') at time zone 'UTC', count(*)::int from email group by tenant_id
        on conflict (tenant_id, period_start) do update set emails_queued = usage_counters.emails_queued + excluded.emails_queued
      ), planned as (
        insert into sequencer_daily_plans as p (tenant_id, campaign_id, mailbox_id, day, planned)
        select tenant_id, campaign_id, mailbox_id, current_date, count(*)::int from email group by 1, 2, 3
        on conflict (tenant_id, campaign_id, mailbox_id, day) do update set planned = p.planned + excluded.planned
      ), moved as (
        update campaign_leads cl set current_step = 1, next_send_at = now() + interval '2 days', thread_email_id = email.id, mailbox_id = email.mailbox_id
        from email where cl.tenant_id = email.tenant_id and cl.campaign_id = email.campaign_id and cl.lead_id = email.lead_id
        returning 1
      )
      select count(*)::int as n from moved`,
  ]);
  return Number((result[1] as Array<{ n: number }>)[0]?.n ?? 0);
}

async function timed(side: typeof engineSide, batch: () => Promise<number>): Promise<void> {
  if (side.done) return;
  const before = trips();
  const start = performance.now();
  const n = await batch();
  side.ms += performance.now() - start;
  side.trips += trips() - before;
  if (n === 0) side.done = true;
  else {
    side.advanced += n;
    side.batches += 1;
  }
}

// The servers this runs on here have autovacuum off; Neon's is on. Without it two things grow with the run on both
// sides: every advanced lead leaves a dead entry at the front of the due index, which each batch scans past; and the
// tables the batches fill keep the statistics of their empty start, so the foreign-key checks' cached plans (made
// per session, replanned only when a table is analyzed) stay sequential scans of emails as it grows: quadratic. So
// between batches (untimed) the bench vacuums and analyzes what the batches write every 10 rounds, as autovacuum
// would; both sides share the tables.
const autovacuum = (await ownerQuery<{ autovacuum: string }>("show autovacuum")).rows[0]?.autovacuum;
const grownTables = "campaign_leads, emails, email_events, jobs, sequencer_daily_plans, usage_counters";
let rounds = 0;
while (!engineSide.done || !floorSide.done) {
  await timed(engineSide, engineBatch);
  await timed(floorSide, floorBatch);
  if (++rounds % 10 === 0 && autovacuum !== "on") await ownerQuery(`vacuum analyze ${grownTables}`);
  if (engineSide.batches % 100 === 0 && !engineSide.done) log(`  ${engineSide.advanced} leads`);
}
const { advanced, batches, ms: engineMs, trips: engineTrips } = engineSide;
const { advanced: floorAdvanced, batches: floorBatches, ms: floorMs, trips: floorTrips } = floorSide;

// The work the sequencer no longer does, per email: render the step for a lead, compress it against the template, hash
// and store it (SEND_EMAIL does this for each email it sends, as many at once as the queue delivers).
const sample = 500;
const variant = {
  label: "A",
  subject: "Hello {{firstName}}",
  weight: 1,
  text: `Hi {{firstName}}, a note for {{company}}. ${"We help teams like yours ship faster. ".repeat(20)}`,
  html: `<p>Hi {{firstName}},</p><p>a note for {{company}}.</p>${"<p>We help teams like yours ship faster.</p>".repeat(20)}`,
};
const t0 = performance.now();
for (let i = 0; i < sample; i++) {
  const outcome = renderStep(variant, { email: `lead${i}@bench.example`, firstName: `Lead${i}`, lastName: null, company: `Company ${i % 997}`, customFields: {} }, null);
  if (!("rendered" in outcome)) throw new Error("the bench's variant did not render");
  const body = { text: outcome.rendered.text, html: outcome.rendered.html, headers: { "Message-ID": `<${randomUUID()}@bench.example>` }, template: outcome.rendered.template };
  await storeContent(env.CONTENT_BUCKET, await prepareEmailContent(engine.tenantId, { body, attachments: [] }, contentConfig), contentConfig);
}
const renderMs = (performance.now() - t0) / sample;

const engineRate = advanced / (engineMs / 1000);
const floorRate = floorAdvanced / (floorMs / 1000);
const figures: BenchFigure[] = [
  { metric: "leads advanced per second (sequencer)", value: engineRate, unit: "leads/s", floor: "one statement per batch", floorValue: floorRate },
  { metric: "sequencer time / floor time", value: engineMs / floorMs, unit: "×", note: "target ≤ 1.5×" },
  { metric: "OLTP round trips per lead (sequencer)", value: engineTrips / Math.max(1, advanced), unit: "round trips", floor: "one statement per batch", floorValue: floorTrips / Math.max(1, floorAdvanced) },
  { metric: "OLTP round trips per batch (sequencer)", value: engineTrips / Math.max(1, batches), unit: "round trips", floorValue: floorTrips / Math.max(1, floorBatches), note: "one write transaction per batch that also reads the next plan, plus the first plan read" },
  { metric: "leads advanced", value: advanced, unit: "leads", floorValue: floorAdvanced },
];
figures.push({ metric: "send-time render + compress + store per email (moved to SEND_EMAIL)", value: renderMs, unit: "ms", note: `${sample} renders, R2 in memory; was in the sequencer's batch` });
const missed: string[] = [];
if (engineMs / floorMs > 1.5) missed.push(`sequencer ${(engineMs / floorMs).toFixed(2)}× the floor's time (target ≤ 1.5×)`);
// A tenant's first batch reads its plan on its own; every later batch reads the next one in its write transaction.
if (engineTrips > batches + 1) missed.push(`${engineTrips} OLTP round trips for ${batches} batches (target: one per batch, plus the first plan read)`);
const markdown = [
  `| metric | sequencer | floor |`,
  `| --- | --- | --- |`,
  `| leads advanced | ${advanced} | ${floorAdvanced} |`,
  `| leads/s | ${engineRate.toFixed(1)} | ${floorRate.toFixed(1)} |`,
  `| OLTP round trips per lead | ${(engineTrips / Math.max(1, advanced)).toFixed(3)} | ${(floorTrips / Math.max(1, floorAdvanced)).toFixed(3)} |`,
  `| OLTP round trips per batch | ${(engineTrips / Math.max(1, batches)).toFixed(3)} (${engineTrips} for ${batches} batches) | ${(floorTrips / Math.max(1, floorBatches)).toFixed(3)} (${floorTrips} for ${floorBatches}) |`,
  `| send-time render + compress + store per email (SEND_EMAIL) | ${renderMs.toFixed(3)} ms | – |`,
].join("\n");
console.log(markdown);
for (const m of missed) console.log(`missed: ${m}`);
writeBenchResult("campaigns", { figures, missed, markdown });
await stack.close();
