// Jobs benchmark (issue 6, "Performance"): job throughput of the jobs tier through the bundled Worker under
// Miniflare without wrangler's proxy, request log or local tracing (scripts/bench/queue-host.ts: ledger in OLTP,
// Miniflare's queues as wrangler.toml declares them, the Worker's own consumer), beside pg-boss doing the same
// number of send + work + complete cycles on the same Postgres in the same run. A measurement, not a test.
// The peers are tuned as their documentation says for throughput (issue 22): pg-boss at its minimum polling interval
// (0.5 s), fetching and completing in batches of --boss-batch, with --boss-workers work() loops (each call adds one
// polling worker); graphile-worker with the configuration of its performance page (24 concurrent jobs, a pool of 25,
// a local queue of 500, batched completion), woken by LISTEN/NOTIFY. Both on the same Postgres, in its own schema.
// Usage: npm run bench:jobs [-- --jobs 10000 --emails 10000 --connections 8 --boss-workers 4 --boss-batch 500 --graphile-concurrency 24]
// Postgres: embedded PGlite, or the server named by DATABASE_URL (its edp_test_* databases are recreated).
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { mintToken } from "../jwt";
import pg from "pg";
import PgBoss from "pg-boss";
import { Logger as GraphileLogger, makeWorkerUtils, run as runGraphile } from "graphile-worker";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { projectRoot, startStack } from "../stack";
import { writeBenchResult, type BenchFigure } from "./result";
import { startQueueHost } from "./queue-host";
import { profileWhile, summarizeProfile } from "./profile";
import { startAutovacuumStandIn } from "./autovacuum";

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string", default: "10000" },
    emails: { type: "string", default: "10000" },
    connections: { type: "string", default: "8" },
    "boss-workers": { type: "string", default: "4" },
    "boss-batch": { type: "string", default: "500" },
    "graphile-concurrency": { type: "string", default: "24" },
    "timeout-s": { type: "string", default: "1500" },
    /** CPU-profile the Worker's isolate through the NOOP phase (bench-results/profile-jobs.md); its figures then carry the profiler's cost. */
    profile: { type: "boolean", default: false },
  },
});
const jobCount = Number(args.jobs);
const emailCount = Number(args.emails);
const connections = Number(args.connections);
const bossWorkers = Number(args["boss-workers"]);
const bossBatch = Number(args["boss-batch"]);
/** pg-boss refuses a polling interval under 0.5 s (its attorney's MIN_POLLING_INTERVAL_MS). */
const bossPollingSeconds = 0.5;
const graphileConcurrency = Number(args["graphile-concurrency"]);
const timeoutMs = Number(args["timeout-s"]) * 1000;
/** Redrive takes at most 500 ids per call (src/tiers/jobs/router.ts); pg-boss gets the same chunks. */
const enqueueChunk = 500;

const log = (message: string) => console.error(`[bench] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "–");

const jwtSecret = `bench-${randomUUID()}-${randomUUID()}`;
const stack = await startStack({ purpose: "test", jwtSecret });
log(stack.describe());
const ownerUrl = stack.databases.ownerUrls.oltp;
const embedded = stack.databases.kind === "pglite";
/**
 * The bench's own reads and seeding, as the owner and around the counted Neon endpoint. Embedded PGlite is one
 * session that a TCP connection holds for its whole life (scripts/stack/pglite-server.ts), so there each query
 * connects and leaves at once rather than parking an idle pooled connection in front of the Worker's queries.
 */
const pool = embedded ? null : new pg.Pool({ connectionString: ownerUrl, max: 2 });
const owner = {
  async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (pool) return pool.query<R>(text, values);
    const client = new pg.Client({ connectionString: ownerUrl });
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end();
    }
  },
  end: async () => pool?.end(),
};

const tenantId = randomUUID();
const adminId = randomUUID();
const operatorId = randomUUID();

/** One tenant with an admin, written as the app role the way the test factories do. */
async function seedTenant(): Promise<void> {
  const url = new URL(ownerUrl);
  if (embedded) {
    url.username = "app_user";
    url.password = "";
  }
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query("begin");
    if (!embedded) await client.query("set local role app_user");
    await client.query("select set_config('app.current_tenant_id', $1, true), set_config('app.current_user_id', $2, true)", [tenantId, adminId]);
    // A tenant's daily send limit defaults to 500 (its plan's): the bench sends `emailCount` in one day.
    await client.query("insert into tenants (id, name, daily_send_limit) values ($1, 'Jobs bench', $2)", [tenantId, emailCount + 100]);
    await client.query("insert into users (id, tenant_id, email, role) values ($1, $2, 'admin@bench.example', 'admin')", [adminId, tenantId]);
    await client.query("commit");
  } finally {
    await client.end();
  }
}

const token = (sub: string, role: "admin" | "operator") =>
  mintToken(jwtSecret, { sub, tenant_id: tenantId, role });

async function call<T>(base: string, bearer: string, procedure: string, input: unknown): Promise<T> {
  const response = await fetch(`${base}/trpc/${procedure}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(input),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${procedure} answered ${response.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { result: { data: T } }).result.data;
}

/** Polls the ledger (owner connection, not through the counted endpoint) until every id has finished. */
async function waitForLedger(ids: string[], what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await owner.query<{ done: number; failed: number }>(
      `select count(*) filter (where status = 'succeeded')::int as done, count(*) filter (where status in ('failed', 'dead'))::int as failed
       from jobs where id = any($1::uuid[])`,
      [ids],
    );
    const { done, failed } = rows[0]!;
    if (done + failed >= ids.length) {
      if (failed > 0) log(`${what}: ${failed} jobs failed`);
      return performance.now();
    }
    if (Date.now() > deadline) throw new Error(`${what}: ${done}/${ids.length} done after ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** p50/p99 of enqueue → completion in ms, and the number of consumer batches (a batch's claim shares one started_at). */
async function ledgerFigures(ids: string[], enqueuedAt: "scheduled_at" | "created_at") {
  const { rows } = await owner.query<{ p50: number; p99: number; batches: number }>(
    `select percentile_cont(0.5) within group (order by extract(epoch from completed_at - ${enqueuedAt}) * 1000)::float8 as p50,
            percentile_cont(0.99) within group (order by extract(epoch from completed_at - ${enqueuedAt}) * 1000)::float8 as p99,
            count(distinct started_at)::int as batches
     from jobs where id = any($1::uuid[]) and status = 'succeeded'`,
    [ids],
  );
  return rows[0]!;
}

const figures: BenchFigure[] = [];
const out: string[] = [];
const worker = await startQueueHost(stack.workerVars, args.profile ? { inspectorPort: 9231 } : {});
const autovacuum = stack.databases.kind === "pglite" ? undefined : await startAutovacuumStandIn([ownerUrl], { log });
try {
  await seedTenant();
  const adminToken = await token(adminId, "admin");
  const operatorToken = await token(operatorId, "operator");

  // -------------------------------------------------------------------------------------------------------------
  // 1. NOOP through the Worker, enqueued as pg-boss's insert is: per chunk of 500, the pending ledger rows in one
  //    statement (the columns the Worker's own enqueue writes) and their messages to the normal queue (sendBatch of
  //    100, JSON, as src/platform/jobs/enqueue.ts sends). The consumer claims each batch in one statement and records
  //    every outcome in one more. Enqueue time = the row's created_at.
  const insertPending = (chunk: string[]) =>
    owner.query(
      `insert into jobs (id, tenant_id, type, payload, priority, max_attempts)
       select id, $2, 'NOOP', '{}'::jsonb, 'normal', 3 from unnest($1::uuid[]) as id`,
      [chunk, tenantId],
    );
  const enqueueNoop = async (chunk: string[]) => {
    await insertPending(chunk);
    const enqueuedAt = new Date().toISOString();
    await worker.send("JOBS_NORMAL", chunk.map((jobId) => ({ jobId, type: "NOOP", tenantId, payload: {}, enqueuedAt })));
  };
  log(`NOOP: ${jobCount} jobs through the Worker…`);
  const ids = Array.from({ length: jobCount }, () => randomUUID());
  // Warm-up: isolate start, JIT, first queue delivery, outside the figures.
  const warmIds = Array.from({ length: 200 }, () => randomUUID());
  await enqueueNoop(warmIds);
  await waitForLedger(warmIds, "warm-up");

  stack.neon.resetRoundTrips();
  const t0 = performance.now();
  let enqueuedMs = 0;
  let t1 = 0;
  const noopPhase = async () => {
    for (let start = 0; start < ids.length; start += enqueueChunk) await enqueueNoop(ids.slice(start, start + enqueueChunk));
    enqueuedMs = performance.now() - t0;
    t1 = await waitForLedger(ids, "NOOP");
  };
  if (args.profile) {
    const profile = await profileWhile(worker.inspector!, noopPhase, worker.workerName);
    const file = path.join(projectRoot, "bench-results/profile-jobs.md");
    writeFileSync(file, summarizeProfile(profile, worker.sourceMap, `NOOP jobs through the queue consumer (${jobCount} jobs; "requests" are jobs)`, jobCount));
    log(`profile: ${file}`);
  } else await noopPhase();
  const noopTrips = stack.neon.roundTrips().oltp ?? 0;
  const noop = await ledgerFigures(ids, "created_at");
  const noopRate = jobCount / ((t1 - t0) / 1000);
  const tripsPerBatch = noopTrips / noop.batches;

  // 1b. The operator's way to put jobs back: jobs.redrive (one OLTP statement per 500 ids) makes failed rows pending
  //     and sends them; each redriven job also gets its compliance entry, a RECORD_AUDIT job on the same queue, so a
  //     redrive of n jobs is 2n jobs run (the entries of a delivery go to OLAP in one round trip).
  log(`NOOP by jobs.redrive: ${jobCount} jobs and their ${jobCount} audit jobs…`);
  const redriveIds = Array.from({ length: jobCount }, () => randomUUID());
  await owner.query(
    `insert into jobs (id, tenant_id, type, payload, priority, status, attempts, max_attempts, completed_at)
     select id, $2, 'NOOP', '{}'::jsonb, 'normal', 'failed', 1, 3, now() from unnest($1::uuid[]) as id`,
    [redriveIds, tenantId],
  );
  stack.neon.resetRoundTrips();
  const r0 = performance.now();
  for (let start = 0; start < redriveIds.length; start += enqueueChunk) {
    await call(worker.base, operatorToken, "jobs.redrive", { ids: redriveIds.slice(start, start + enqueueChunk) });
  }
  const redriveCalls = Math.ceil(redriveIds.length / enqueueChunk);
  const auditIdsOf = async () =>
    (
      await owner.query<{ id: string }>(
        `select id from jobs where type = 'RECORD_AUDIT' and created_at >= now() - interval '1 hour' and payload->>'targetId' = any($1::text[])`,
        [redriveIds],
      )
    ).rows.map((r) => r.id);
  const auditIds = await auditIdsOf();
  const r1 = await waitForLedger([...redriveIds, ...auditIds], "redrive");
  const redriveTrips = stack.neon.roundTrips();
  const redriveRate = (redriveIds.length + auditIds.length) / ((r1 - r0) / 1000);

  // -------------------------------------------------------------------------------------------------------------
  // 2. The same cycles with pg-boss on the same Postgres (its own schema in the OLTP database): insert in chunks of
  //    500, `bossWorkers` work() loops each fetching up to `bossBatch` jobs per poll at the minimum polling interval;
  //    a batch handler's return completes the whole batch in one statement. On PGlite pg-boss gets one connection
  //    (the database is one session) and the progress polls share it.
  log(`pg-boss: ${jobCount} jobs…`);
  const boss = new PgBoss({ connectionString: ownerUrl, max: embedded ? 1 : Math.max(4, bossWorkers + 2), schedule: false, supervise: false });
  boss.on("error", (error) => log(`pg-boss error: ${String(error)}`));
  await boss.start();
  const queue = "bench-noop";
  await boss.createQueue(queue);
  for (let i = 0; i < bossWorkers; i++) {
    await boss.work(queue, { batchSize: bossBatch, pollingIntervalSeconds: bossPollingSeconds }, async () => undefined);
  }
  await boss.insert(Array.from({ length: 50 }, () => ({ name: queue, data: { warm: true } })));
  const waitForBoss = async (expected: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = (await boss.getDb().executeSql(`select count(*)::int as n from pgboss.job where name = $1 and state = 'completed'`, [queue])) as { rows: Array<{ n: number }> };
      if (rows[0]!.n >= expected) return performance.now();
      if (Date.now() > deadline) throw new Error(`pg-boss: ${rows[0]!.n}/${expected} completed after ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  };
  await waitForBoss(50);
  const b0 = performance.now();
  const bossStart = new Date();
  for (let start = 0; start < jobCount; start += enqueueChunk) {
    await boss.insert(Array.from({ length: Math.min(enqueueChunk, jobCount - start) }, (_, i) => ({ name: queue, data: { n: start + i } })));
  }
  const b1 = await waitForBoss(50 + jobCount);
  const { rows: bossRows } = (await boss.getDb().executeSql(
    `select percentile_cont(0.5) within group (order by extract(epoch from completed_on - created_on) * 1000)::float8 as p50,
            percentile_cont(0.99) within group (order by extract(epoch from completed_on - created_on) * 1000)::float8 as p99
     from pgboss.job where name = $1 and state = 'completed' and created_on >= $2`,
    [queue, bossStart],
  )) as { rows: Array<{ p50: number; p99: number }> };
  await boss.stop({ graceful: true, wait: true });
  const bossRate = jobCount / ((b1 - b0) / 1000);

  // -------------------------------------------------------------------------------------------------------------
  // 2b. The same cycles with graphile-worker (its own schema in the OLTP database), configured as its performance
  //     page does: concurrentJobs, a pool of concurrency + 1, a local queue of 500 fetched in one statement, job
  //     completion batched; new jobs wake it through LISTEN/NOTIFY. Jobs are added with addJobs in chunks of 500.
  //     Completed jobs are deleted, so the handler records each job's enqueue → run latency itself.
  let graphile: { rate: number; p50: number; p99: number } | null = null;
  let graphileSkipped = "";
  if (embedded) graphileSkipped = "not run on embedded PGlite (one session; graphile-worker needs LISTEN and a pool)";
  else {
    log(`graphile-worker: ${jobCount} jobs…`);
    const latencies: number[] = [];
    let done = 0;
    // Its info lines (one per completed job) would drown the report: warnings and errors only.
    const logger = new GraphileLogger(() => (level, message) => {
      if (level === "error" || level === "warning") log(`graphile-worker ${level}: ${message}`);
    });
    const utils = await makeWorkerUtils({ connectionString: ownerUrl, logger });
    await utils.migrate();
    const runner = await runGraphile({
      noHandleSignals: true,
      logger,
      preset: {
        worker: {
          connectionString: ownerUrl,
          concurrentJobs: graphileConcurrency,
          maxPoolSize: graphileConcurrency + 1,
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
      taskList: {
        noop: async (payload) => {
          latencies.push(Date.now() - (payload as { t: number }).t);
          done++;
        },
      },
    });
    const waitForGraphile = async (expected: number) => {
      const deadline = Date.now() + timeoutMs;
      while (done < expected) {
        if (Date.now() > deadline) throw new Error(`graphile-worker: ${done}/${expected} done after ${timeoutMs / 1000} s`);
        await sleep(5);
      }
      return performance.now();
    };
    await utils.addJobs(Array.from({ length: 50 }, () => ({ identifier: "noop", payload: { t: Date.now() } })));
    await waitForGraphile(50);
    latencies.length = 0;
    const g0 = performance.now();
    for (let start = 0; start < jobCount; start += enqueueChunk) {
      const t = Date.now();
      await utils.addJobs(Array.from({ length: Math.min(enqueueChunk, jobCount - start) }, () => ({ identifier: "noop", payload: { t } })));
    }
    const g1 = await waitForGraphile(50 + jobCount);
    await runner.stop();
    await utils.release();
    const sorted = [...latencies].sort((a, b) => a - b);
    graphile = {
      rate: jobCount / ((g1 - g0) / 1000),
      p50: sorted[Math.floor(sorted.length / 2)]!,
      p99: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // 3. SEND_EMAIL through the Worker: emails.create (body to the content tier, email + its job in one OLTP
  //    transaction, message to the high queue), sent by the consumer through the recording provider.
  log(`SEND_EMAIL: ${emailCount} emails through the Worker…`);
  const domain = await call<{ id: string; name: string; dnsRecords: Array<{ host: string; type: string; value: string }> }>(
    worker.base,
    adminToken,
    "domains.add",
    { name: "mail.jobs-bench.example" },
  );
  // Only a verified domain's mailboxes send: publish its records on the stack's DNS-over-HTTPS endpoint and verify.
  for (const record of domain.dnsRecords) {
    await fetch(stack.dns.recordsUrl, { method: "PUT", body: JSON.stringify({ name: record.host, type: record.type, values: [record.value] }) });
  }
  await call(worker.base, adminToken, "domains.verify", { id: domain.id });
  const mailbox = await call<{ id: string }>(worker.base, adminToken, "mailboxes.add", {
    domainId: domain.id,
    address: `sales@${domain.name}`,
    dailyLimit: 10_000,
    warmupEnabled: false,
  });
  const lead = await call<{ id: string }>(worker.base, adminToken, "leads.create", { email: "lead@jobs-bench.example" });
  const createEmail = (i: number) =>
    call<{ id: string }>(worker.base, adminToken, "emails.create", {
      leadId: lead.id,
      mailboxId: mailbox.id,
      subject: `Hello ${i}`,
      body: { text: `Hello number ${i}`, html: `<p>Hello number ${i}</p>`, headers: {} },
    });
  stack.neon.resetRoundTrips();
  const e0 = performance.now();
  const emailIds: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < emailCount) {
        const i = next++;
        emailIds.push((await createEmail(i)).id);
      }
    }),
  );
  const createdMs = performance.now() - e0;
  const e1 = await waitForLedger(emailIds, "SEND_EMAIL");
  const emailTrips = stack.neon.roundTrips().oltp ?? 0;
  const sends = await ledgerFigures(emailIds, "created_at");
  const sendRate = emailCount / ((e1 - e0) / 1000);

  // -------------------------------------------------------------------------------------------------------------
  out.push(
    `\n## Jobs tier throughput (${stack.databases.kind === "pglite" ? "embedded PGlite" : "PostgreSQL server"}, the bundle under Miniflare, its local queues)\n`,
    "| run | jobs | jobs/s end to end | enqueue → completion p50 / p99 ms | consumer batches | OLTP round trips |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
    `| NOOP via Worker (ledger rows ${enqueueChunk}/statement + sendBatch → normal queue → consumer) | ${jobCount} | ${fmt(noopRate)} | ${fmt(noop.p50, 0)} / ${fmt(noop.p99, 0)} | ${noop.batches} | ${noopTrips} total: ${fmt(tripsPerBatch, 2)} per batch (${fmt(noopTrips / jobCount, 3)} per job) |`,
    `| NOOP by jobs.redrive ${enqueueChunk}/call, with a RECORD_AUDIT job per redriven job | ${redriveIds.length} + ${auditIds.length} audit | ${fmt(redriveRate)} | – | – | OLTP ${redriveTrips.oltp ?? 0} (${redriveCalls} redrive calls), OLAP ${redriveTrips.olap ?? 0} |`,
    `| floor: pg-boss ${bossWorkers} × work(batchSize ${bossBatch}, pollingIntervalSeconds ${bossPollingSeconds}), insert ${enqueueChunk}/call | ${jobCount} | ${fmt(bossRate)} | ${fmt(bossRows[0]!.p50, 0)} / ${fmt(bossRows[0]!.p99, 0)} | – | by design 1 fetch + 1 complete per batch |`,
    graphile
      ? `| floor: graphile-worker concurrentJobs ${graphileConcurrency}, maxPoolSize ${graphileConcurrency + 1}, localQueue 500, completeJobBatchDelay 0, LISTEN/NOTIFY, addJobs ${enqueueChunk}/call | ${jobCount} | ${fmt(graphile.rate)} | ${fmt(graphile.p50, 0)} / ${fmt(graphile.p99, 0)} | – | 1 fetch per local-queue batch, completions batched |`
      : `| floor: graphile-worker | – | – | – | – | ${graphileSkipped} |`,
    `| SEND_EMAIL via Worker (emails.create × ${connections} in flight → high queue → provider) | ${emailCount} | ${fmt(sendRate)} | ${fmt(sends.p50, 0)} / ${fmt(sends.p99, 0)} | ${sends.batches} | ${emailTrips} total, ${fmt(emailTrips / emailCount, 2)} per email (create + INDEX_CONTENT + send) |`,
    "",
    `Enqueue alone: ${jobCount} NOOP in ${fmt(enqueuedMs, 0)} ms (${Math.ceil(jobCount / enqueueChunk)} chunks); ${emailCount} emails.create in ${fmt(createdMs, 0)} ms.`,
    "Round trips are the local Neon endpoint's per-database counter over the whole phase (the bench's own polling goes around it).",
    `Miniflare's local queues deliver one batch at a time per queue, by max_batch_size / max_batch_timeout from wrangler.toml (${Object.entries(worker.consumers).map(([q, c]) => `${q}: ${c.maxBatchSize} / ${c.maxBatchTimeout} s`).join("; ")});`,
    "Cloudflare Queues deliver up to max_concurrency batches at once, so the Worker's figures are a floor of what the edge does.",
    `Postgres maintenance: ${autovacuum?.note ?? "embedded PGlite"} (scripts/bench/autovacuum.ts).`,
  );
  figures.push(
    { metric: "NOOP jobs/s end to end (Worker)", value: Number(fmt(noopRate)), unit: "jobs/s", floor: `pg-boss same Postgres (${bossWorkers} workers × batchSize ${bossBatch}, polling ${bossPollingSeconds} s)`, floorValue: Number(fmt(bossRate)), note: `${fmt(noopRate / bossRate, 2)}× pg-boss` },
    ...(graphile
      ? [{ metric: "NOOP jobs/s end to end (Worker) vs graphile-worker", value: Number(fmt(noopRate)), unit: "jobs/s", floor: `graphile-worker same Postgres (concurrentJobs ${graphileConcurrency}, localQueue 500, batched completion)`, floorValue: Number(fmt(graphile.rate)), note: `${fmt(noopRate / graphile.rate, 2)}× graphile-worker; its p50 / p99 ${fmt(graphile.p50, 0)} / ${fmt(graphile.p99, 0)} ms` }]
      : []),
    { metric: "NOOP enqueue→completion p50", value: Number(fmt(noop.p50, 0)), unit: "ms", floor: "pg-boss p50", floorValue: Number(fmt(bossRows[0]!.p50, 0)) },
    { metric: "NOOP enqueue→completion p99", value: Number(fmt(noop.p99, 0)), unit: "ms", floor: "pg-boss p99", floorValue: Number(fmt(bossRows[0]!.p99, 0)) },
    { metric: "ledger round trips per consumer batch", value: Number(fmt(tripsPerBatch, 2)), unit: "round trips", floor: "target", floorValue: 2 },
    { metric: "OLTP round trips per NOOP job", value: Number(fmt(noopTrips / jobCount, 3)), unit: "round trips" },
    { metric: "jobs/s by jobs.redrive, each with its RECORD_AUDIT job", value: Number(fmt(redriveRate)), unit: "jobs/s", note: `${redriveIds.length} NOOP + ${auditIds.length} audit jobs; OLAP round trips ${redriveTrips.olap ?? 0}` },
    { metric: "SEND_EMAIL jobs/s end to end (Worker)", value: Number(fmt(sendRate)), unit: "jobs/s", note: `${emailCount} emails, ${connections} creates in flight` },
    { metric: "SEND_EMAIL create→sent p50 / p99", value: `${fmt(sends.p50, 0)} / ${fmt(sends.p99, 0)}`, unit: "ms" },
    { metric: "OLTP round trips per email (create + index + send)", value: Number(fmt(emailTrips / emailCount, 2)), unit: "round trips" },
  );
  // Issue 22's targets: end to end at least the tuned peers' rate, at most one OLTP round trip per job.
  const missed: string[] = [];
  if (noopRate < bossRate) missed.push(`NOOP ${fmt(noopRate)} jobs/s is ${fmt(noopRate / bossRate, 2)}× tuned pg-boss's ${fmt(bossRate)} (target ≥ 1.0×)`);
  if (noopTrips / jobCount > 1) missed.push(`NOOP ${fmt(noopTrips / jobCount, 2)} OLTP round trips per job (target ≤ 1)`);
  out.push("", missed.length ? `Missed targets:\n${missed.map((m) => `- ${m}`).join("\n")}` : "All targets met.");
  // graphile-worker stands beside the target's peer (issue 22: "beside it if it runs here"), not as a target.
  if (graphile) out.push(`Beside the target: NOOP ${fmt(noopRate)} jobs/s is ${fmt(noopRate / graphile.rate, 2)}× graphile-worker's ${fmt(graphile.rate)} (one batch at a time here; see above).`);
  console.log(out.join("\n"));
  const file = writeBenchResult("jobs", { figures, markdown: out.join("\n"), missed });
  log(`wrote ${file}`);
} finally {
  await autovacuum?.stop();
  await worker.stop();
  await owner.end().catch(() => undefined);
  await stack.close();
}
