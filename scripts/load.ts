// Load test (issue 9, "Load"): a realistic mix — logins reading the notification list and unread count, lead
// lists, email creates with bodies, marks read — at rising concurrency against the bundled Worker under Miniflare
// (workerd, without wrangler's proxy; scripts/bench/worker.ts) on the local stack: real Postgres and Redis when DATABASE_URL / REDIS_URL are set,
// embedded otherwise. Reports throughput, p50/p95/p99 per call, errors (any error fails the run) and the Worker's
// memory. Usage: npm run load [-- --steps 4,16,32 --duration 10] ; `--short` is the CI form.
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { mintToken } from "./jwt";
import pg from "pg";
import { uuidOf, uuidSql } from "./bench/ids";
import { percentile, writeBenchResult, type BenchFigure } from "./bench/result";
import { startBundledWorker } from "./bench/worker";
import { startStack } from "./stack";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "4,16,32" },
    duration: { type: "string", default: "10" },
    tenants: { type: "string", default: "20" },
    short: { type: "boolean", default: false },
  },
});
const steps = (args.short ? "2,8" : args.steps).split(",").map(Number);
const durationS = args.short ? 3 : Number(args.duration);
const tenants = args.short ? 5 : Number(args.tenants);
const usersPerTenant = 10;
const leadsPerTenant = 200;
const notificationsPerUser = 50;
const log = (message: string) => console.error(`[load] ${message}`);


const jwtSecret = `load-${uuidOf(String(Date.now()))}-${uuidOf("secret")}`;
const stack = await startStack({ purpose: "test", jwtSecret });
log(stack.describe());

async function seed(): Promise<void> {
  const oltp = new pg.Client({ connectionString: stack.databases.ownerUrls.oltp });
  const notifications = new pg.Client({ connectionString: stack.databases.ownerUrls.notifications });
  await oltp.connect();
  await notifications.connect();
  try {
    const n = (q: string) => q.replaceAll("$T", String(tenants)).replaceAll("$U", String(usersPerTenant)).replaceAll("$L", String(leadsPerTenant)).replaceAll("$N", String(notificationsPerUser));
    await oltp.query(n(`
      insert into tenants (id, name, max_mailboxes) select ${uuidSql("'t' || t")}, 'Load tenant ' || t, 10 from generate_series(1, $T) t;
      insert into users (id, tenant_id, email, role)
        select ${uuidSql("'u' || t || '.' || u")}, ${uuidSql("'t' || t")}, 'user' || u || '@t' || t || '.load.test', case when u = 1 then 'admin' else 'member' end
        from generate_series(1, $T) t, generate_series(1, $U) u;
      insert into domains (id, tenant_id, name, dns_records) select ${uuidSql("'d' || t")}, ${uuidSql("'t' || t")}, 'load' || t || '.example', '[]' from generate_series(1, $T) t;
      insert into mailboxes (id, tenant_id, domain_id, address)
        select ${uuidSql("'m' || t")}, ${uuidSql("'t' || t")}, ${uuidSql("'d' || t")}, 'sales@load' || t || '.example' from generate_series(1, $T) t;
      insert into leads (id, tenant_id, email, first_name, company)
        select ${uuidSql("'l' || t || '.' || l")}, ${uuidSql("'t' || t")}, 'lead' || l || '@t' || t || '.example', 'Lead ' || l, 'Company ' || (l % 50)
        from generate_series(1, $T) t, generate_series(1, $L) l;
      analyze;`));
    await notifications.query(n(`
      insert into notifications (id, tenant_id, user_id, type, title, message, channel)
        select ${uuidSql("'n' || t || '.' || u || '.' || k")}, ${uuidSql("'t' || t")}, ${uuidSql("'u' || t || '.' || u")}, 'lead.replied',
               'Reply ' || k, 'Lead ' || k || ' replied to your campaign.', 'in_app'
        from generate_series(1, $T) t, generate_series(1, $U) u, generate_series(1, $N) k;
      analyze;`));
  } finally {
    await Promise.all([oltp.end(), notifications.end()]);
  }
}

const tokenFor = (t: number, u: number) =>
  mintToken(jwtSecret, { sub: uuidOf(`u${t}.${u}`), tenant_id: uuidOf(`t${t}`), role: u === 1 ? "admin" : "member" });

interface Spec {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const query = (path: string, input: unknown) => `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`;

/** The mix: each call class with its share of the connections and the requests it rotates through. */
async function buildMix(): Promise<Array<{ name: string; share: number; requests: Spec[] }>> {
  const callers: Array<{ t: number; u: number; headers: Record<string, string> }> = [];
  for (let t = 1; t <= tenants; t++) {
    for (let u = 1; u <= usersPerTenant; u++) callers.push({ t, u, headers: { authorization: `Bearer ${await tokenFor(t, u)}` } });
  }
  let k = 0;
  return [
    { name: "notifications.list (login)", share: 3, requests: callers.map((c) => ({ method: "GET", path: query("notifications.list", { limit: 20 }), headers: c.headers })) },
    { name: "GET /v1/notifications/unread-count", share: 3, requests: callers.map((c) => ({ method: "GET", path: "/v1/notifications/unread-count", headers: c.headers })) },
    { name: "leads.list", share: 2, requests: callers.map((c) => ({ method: "GET", path: query("leads.list", { limit: 50 }), headers: c.headers })) },
    {
      name: "notifications.markRead",
      share: 1,
      requests: callers.flatMap((c) =>
        Array.from({ length: notificationsPerUser }, (_, i) => ({
          method: "POST" as const,
          path: "/trpc/notifications.markRead",
          headers: { ...c.headers, "content-type": "application/json" },
          body: JSON.stringify({ ids: [uuidOf(`n${c.t}.${c.u}.${i + 1}`)] }),
        })),
      ),
    },
    {
      name: "emails.create (with body)",
      share: 1,
      requests: callers.map((c) => ({
        method: "POST",
        path: "/trpc/emails.create",
        headers: { ...c.headers, "content-type": "application/json" },
        body: JSON.stringify({
          leadId: uuidOf(`l${c.t}.${1 + (k++ % leadsPerTenant)}`),
          mailboxId: uuidOf(`m${c.t}`),
          subject: "Quick question",
          body: { text: `Hi, a quick question about your team (${k}).`, html: `<p>Hi, a quick question about your team (${k}).</p>`, headers: {} },
        }),
      })),
    },
  ];
}

interface StepResult {
  name: string;
  connections: number;
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  firstError?: string;
}

function run(base: string, name: string, requests: Spec[], connections: number): Promise<StepResult> {
  let next = 0;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  return new Promise((resolve) => {
    const instance = autocannon(
      {
        url: base,
        connections,
        duration: durationS,
        timeout: 30,
        requests: [{ setupRequest: (req) => ({ ...req, ...requests[next++ % requests.length]! }) }],
      },
      (error, result) => {
        const sorted = latencies.sort((a, b) => a - b);
        const at = (q: number) => percentile(sorted, q);
        errors += (result?.errors ?? 0) + (result?.timeouts ?? 0) + (error ? 1 : 0);
        resolve({ name, connections, requests: sorted.length, rps: sorted.length / durationS, p50: at(0.5), p95: at(0.95), p99: at(0.99), errors, firstError: firstError ?? (error ? String(error) : undefined) });
      },
    );
    instance.on("response", (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
      else {
        errors++;
        firstError ??= `HTTP ${status}`;
      }
    });
  });
}

await seed();
const worker = await startBundledWorker(stack.workerVars);
log(`Worker at ${worker.base}; seeded ${tenants} tenants × ${usersPerTenant} users, ${leadsPerTenant} leads and ${notificationsPerUser} notifications per user`);
const figures: BenchFigure[] = [];
const out: string[] = [];
let failed = false;
try {
  const mix = await buildMix();
  const shares = mix.reduce((sum, m) => sum + m.share, 0);
  // Warm-up: every call class once per caller at low concurrency (caches, JIT, connections).
  await Promise.all(mix.map((m) => run(worker.base, m.name, m.requests, 1)));
  const memoryAtStart = worker.memoryMiB();
  out.push(
    `Load: ${stack.describe()}; Worker: the bundle under Miniflare (workerd), no wrangler proxy or local tracing. ${durationS} s per step; the mix's connections split ` +
      mix.map((m) => `${m.name} ${m.share}/${shares}`).join(", ") + ".",
    "",
    "| total connections | call | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  let peakMemory = memoryAtStart;
  for (const total of steps) {
    const sampler = setInterval(() => (peakMemory = Math.max(peakMemory, worker.memoryMiB())), 500);
    const results = await Promise.all(mix.map((m) => run(worker.base, m.name, m.requests, Math.max(1, Math.round((total * m.share) / shares)))));
    clearInterval(sampler);
    const all = results.reduce((sum, r) => sum + r.requests, 0);
    for (const r of results) {
      out.push(`| ${total} | ${r.name} | ${r.requests} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors}${r.firstError ? ` (${r.firstError})` : ""} |`);
      figures.push(
        { metric: `${r.name} at ${total} connections: p50`, value: r.p50, unit: "ms" },
        { metric: `${r.name} at ${total} connections: p99`, value: r.p99, unit: "ms" },
        { metric: `${r.name} at ${total} connections: errors`, value: r.errors, unit: "count", floor: "target", floorValue: 0 },
      );
      if (r.errors > 0) failed = true;
    }
    out.push(`| ${total} | all | ${all} | ${(all / durationS).toFixed(0)} | | | | ${results.reduce((s, r) => s + r.errors, 0)} |`);
    figures.push({ metric: `mix throughput at ${total} connections`, value: all / durationS, unit: "req/s" });
  }
  const memoryAtEnd = worker.memoryMiB();
  out.push("", `Worker memory (workerd RSS): ${memoryAtStart.toFixed(0)} MiB after warm-up, peak ${peakMemory.toFixed(0)} MiB, ${memoryAtEnd.toFixed(0)} MiB at the end.`);
  figures.push({ metric: "Worker memory (workerd RSS) peak", value: peakMemory, unit: "MiB", floor: "after warm-up", floorValue: memoryAtStart });
  out.push(failed ? "\nErrors occurred: the run FAILS." : "\nZero errors.");
  console.log(out.join("\n"));
  writeBenchResult(args.short ? "load-short" : "load", { figures, markdown: out.join("\n"), missed: failed ? ["errors under load"] : [] });
} finally {
  await worker.stop();
  await stack.close();
}
process.exit(failed ? 1 : 0);
