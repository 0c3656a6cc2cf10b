// OLTP benchmark: seeds tenants × leads × campaigns, then times four paths through the Worker and as the same service SQL sent directly.
// Usage: npx tsx scripts/bench/oltp.ts [--tenants 100] [--leads 10000] [--campaigns 50] [--iterations 100]
import { parseArgs } from "node:util";
import { mintToken } from "../jwt";
import pg from "pg";
import type { TenantScope } from "../../src/platform/db";
import { systemClock } from "../../src/platform/clock";
import { tierStore } from "../../src/platform/db";
import { createLogger } from "../../src/platform/logger";
import { createServices } from "../../src/platform/services";
import { wired } from "../../src/root";
import type { Env } from "../../src/platform/env";
import { enrolLeads, getCampaign } from "../../src/tiers/oltp/services/campaigns";
import { createEmail } from "../../src/tiers/oltp/services/emails";
import { listLeads } from "../../src/tiers/oltp/services/leads";
import { startStack } from "../stack";
import { uuidOf, uuidSql } from "./ids";
import { writeBenchResult } from "./result";
import { startBundledWorker } from "./worker";

const { values: args } = parseArgs({
  options: {
    tenants: { type: "string", default: "100" },
    leads: { type: "string", default: "10000" },
    campaigns: { type: "string", default: "50" },
    iterations: { type: "string", default: "100" },
    port: { type: "string", default: "0" },
  },
});
const scale = { tenants: Number(args.tenants), leads: Number(args.leads), campaigns: Number(args.campaigns), iterations: Number(args.iterations) };
const jwtSecret = "bench-secret-0123456789abcdef0123456789abcdef";
const stack = await startStack({ purpose: "test", jwtSecret });
console.error(`[bench] ${stack.describe()}`);

async function seed(): Promise<void> {
  const client = new pg.Client({ connectionString: stack.databases.ownerUrls.oltp });
  await client.connect();
  const started = performance.now();
  try {
    // Deterministic ids (md5-derived, shaped as version-4 uuids) so the benchmark can address rows without reading them back.
    const u = uuidSql;
    await client.query(`
      insert into tenants (id, name, max_mailboxes)
        select ${u("'t' || t")}, 'Bench tenant ' || t, 10 from generate_series(1, $1) t;
      insert into users (id, tenant_id, email, role)
        select ${u("'u' || t")}, ${u("'t' || t")}, 'admin' || t || '@bench.test', 'admin' from generate_series(1, $1) t;
      insert into domains (id, tenant_id, name, dns_records)
        select ${u("'d' || t")}, ${u("'t' || t")}, 'bench' || t || '.example', '[]' from generate_series(1, $1) t;
      insert into mailboxes (id, tenant_id, domain_id, address)
        select ${u("'m' || t")}, ${u("'t' || t")}, ${u("'d' || t")}, 'sales@bench' || t || '.example' from generate_series(1, $1) t;
      insert into campaigns (id, tenant_id, name)
        select ${u("'c' || t || '.' || c")}, ${u("'t' || t")}, 'Campaign ' || c from generate_series(1, $1) t, generate_series(1, $3) c;
      insert into sequence_steps (tenant_id, campaign_id, position, delay_hours, variants)
        select ${u("'t' || t")}, ${u("'c' || t || '.' || c")}, s, s * 48,
               jsonb_build_array(jsonb_build_object('label', 'A', 'subject', 'Hi', 'bodyStorageKey', 'k', 'weight', 1))
        from generate_series(1, $1) t, generate_series(1, $3) c, generate_series(0, 2) s;
      insert into leads (id, tenant_id, email, first_name, company, created_at)
        select ${u("'l' || t || '.' || l")}, ${u("'t' || t")}, 'lead' || l || '@t' || t || '.example', 'Lead ' || l, 'Company ' || (l % 500),
               now() - make_interval(secs => l)
        from generate_series(1, $1) t, generate_series(1, $2) l;
      analyze;`.replaceAll("$1", String(scale.tenants)).replaceAll("$2", String(scale.leads)).replaceAll("$3", String(scale.campaigns)));
  } finally {
    await client.end();
  }
  console.error(`[bench] seeded ${scale.tenants} tenants × ${scale.leads} leads, ${scale.campaigns} campaigns each, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}



interface Result {
  name: string;
  path: "worker" | "direct";
  p50: number;
  p99: number;
  roundTrips: number;
  maxRoundTrips: number;
}

async function measure(name: string, pathName: Result["path"], iterations: number, run: (i: number) => Promise<unknown>): Promise<Result> {
  const timings: number[] = [];
  const trips: number[] = [];
  for (let i = 0; i < iterations; i++) {
    stack.neon.resetRoundTrips();
    const started = performance.now();
    await run(i);
    timings.push(performance.now() - started);
    trips.push(stack.neon.roundTrips().oltp ?? 0);
  }
  timings.sort((x, y) => x - y);
  trips.sort((x, y) => x - y);
  const at = (q: number) => Math.round(timings[Math.min(timings.length - 1, Math.floor(q * timings.length))]! * 10) / 10;
  // The counter sees every OLTP trip during the call, including the queue consumer's work for earlier calls'
  // jobs (the Worker consumes SEND_EMAIL in the background): the median is the call's own cost, the max that noise.
  return { name, path: pathName, p50: at(0.5), p99: at(0.99), roundTrips: trips[Math.floor(trips.length / 2)]!, maxRoundTrips: trips[trips.length - 1]! };
}

await seed();
const worker = await startBundledWorker(stack.workerVars, Number(args.port) || 0);
try {
  const tenants = await Promise.all(
    Array.from({ length: scale.tenants }, async (_, i) => {
      const t = i + 1;
      const [tenantId, userId, mailboxId] = [uuidOf(`t${t}`), uuidOf(`u${t}`), uuidOf(`m${t}`)];
      const token = await mintToken(jwtSecret, { sub: userId, tenant_id: tenantId, role: "admin" });
      return { t, tenantId, userId, mailboxId, token, scope: { tenantId, userId, role: "admin" } as TenantScope };
    }),
  );
  const tenantAt = (i: number) => tenants[i % tenants.length]!;
  const leadIds = (t: number, from: number, count: number) => Array.from({ length: count }, (_, k) => uuidOf(`l${t}.${from + k}`));
  const campaignId = (t: number, c: number) => uuidOf(`c${t}.${c}`);

  const call = async (token: string, procedure: string, kind: "query" | "mutation", input: unknown) => {
    const url = kind === "query" ? `${worker.base}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}` : `${worker.base}/trpc/${procedure}`;
    const response = await fetch(url, {
      method: kind === "query" ? "GET" : "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(kind === "mutation" ? { body: JSON.stringify(input) } : {}),
    });
    if (!response.ok) throw new Error(`${procedure} answered ${response.status}: ${await response.text()}`);
    return response.json();
  };
  const env = { ...stack.workerVars, STORE_TIMEOUT_MS: 30_000 } as unknown as Env;
  const store = tierStore(env, "oltp");
  const n = scale.iterations;
  const enrolRuns = Math.min(n, Math.floor(scale.campaigns / 2) * scale.tenants, 20);
  const results: Result[] = [];

  results.push(await measure("list leads page (25)", "worker", n, (i) => call(tenantAt(i).token, "leads.list", "query", { limit: 25 })));
  results.push(await measure("list leads page (25)", "direct", n, (i) => listLeads(store, tenantAt(i).scope, { limit: 25 })));

  const campaignIds = Array.from({ length: n }, (_, i) => campaignId(tenantAt(i).t, (i % scale.campaigns) + 1));
  results.push(await measure("get campaign with steps", "worker", n, (i) => call(tenantAt(i).token, "campaigns.get", "query", { id: campaignIds[i] })));
  results.push(await measure("get campaign with steps", "direct", n, (i) => getCampaign(store, tenantAt(i).scope, campaignIds[i]!, new Date())));

  // Each run enrols 1,000 leads into a campaign nobody enrolled into yet: the worker half, then the direct half.
  const enrolPlan = Array.from({ length: enrolRuns * 2 }, (_, i) => {
    const tenant = tenantAt(i);
    const c = Math.floor(i / tenants.length) + 1;
    return { tenant, campaign: campaignId(tenant.t, c), leads: leadIds(tenant.t, 1, Math.min(1000, scale.leads)) };
  });
  results.push(await measure("enrol 1,000 leads", "worker", enrolRuns, (i) => call(enrolPlan[i]!.tenant.token, "campaigns.enrolLeads", "mutation", { id: enrolPlan[i]!.campaign, leadIds: enrolPlan[i]!.leads })));
  results.push(await measure("enrol 1,000 leads", "direct", enrolRuns, (i) => enrolLeads(store, enrolPlan[enrolRuns + i]!.tenant.scope, enrolPlan[enrolRuns + i]!.campaign, enrolPlan[enrolRuns + i]!.leads)));

  const emailLeads = Array.from({ length: n }, (_, i) => uuidOf(`l${tenantAt(i).t}.${(i % scale.leads) + 1}`));
  const email = (i: number) => ({ leadId: emailLeads[i]!, mailboxId: tenantAt(i).mailboxId, subject: "Bench", contentStorageKey: `bench/${i}` });
  results.push(await measure("create email metadata", "worker", n, (i) => call(tenantAt(i).token, "emails.create", "mutation", email(i))));
  // The service's own statement: its SEND_EMAIL message is prepared but not sent (the worker half sends it).
  const services = createServices({ env, requestId: "bench", logger: createLogger("warn"), clock: systemClock, waitUntil: () => undefined }, wired);
  results.push(await measure("create email metadata", "direct", n, (i) => createEmail(services, tenantAt(i).scope, email(i))));

  console.log(`\nOLTP benchmark: ${scale.tenants} tenants × ${scale.leads} leads, ${scale.campaigns} campaigns each; ${stack.describe()}\n`);
  console.log("| path | via | round trips (median) | max seen (incl. background) | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- | --- |");
  for (const r of results) console.log(`| ${r.name} | ${r.path} | ${r.roundTrips} | ${r.maxRoundTrips} | ${r.p50} | ${r.p99} |`);

  // The plan of the lead page as the app runs it: app role, tenant context, RLS forced.
  const sql = store.sql;
  const [, plan = []] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenants[0]!.tenantId}, true)`,
    sql`explain (analyze, costs off) select * from leads where tenant_id = ${tenants[0]!.tenantId} order by created_at desc, id desc limit 26`,
  ]);
  console.log(`\nEXPLAIN ANALYZE, lead page under RLS as app_user:\n${plan.map((r) => `  ${r["QUERY PLAN"]}`).join("\n")}`);
  writeBenchResult("oltp", {
    figures: results
      .filter((r) => r.path === "worker")
      .flatMap((r) => {
        const direct = results.find((d) => d.name === r.name && d.path === "direct");
        return [
          { metric: `${r.name}: OLTP round trips (median)`, value: r.roundTrips, unit: "trips", floor: "direct service call", floorValue: direct?.roundTrips ?? "–" },
          { metric: `${r.name}: p50 through the Worker`, value: r.p50, unit: "ms", floor: "same service SQL direct", floorValue: direct?.p50 ?? "–" },
          { metric: `${r.name}: p99 through the Worker`, value: r.p99, unit: "ms", floor: "same service SQL direct", floorValue: direct?.p99 ?? "–" },
        ];
      }),
  });
} finally {
  await worker.stop();
  await stack.close();
}
