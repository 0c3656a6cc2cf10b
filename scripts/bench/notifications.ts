// Notifications benchmark (issue 3, "Performance"): seeds 1,000 users × 200 notifications in one tenant plus 20 small
// tenants, then measures the notification center through the running Worker next to two floors: the Worker's bare
// `GET /ping` and the services' own SQL sent straight to Postgres with `pg`. A measurement, not a test: it exits
// non-zero only when it crashes, and prints missed targets as such.
// Usage: npm run bench:notifications [-- --connections 10 --duration 5 --rt-calls 30 --port 0]
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import { mintToken } from "../jwt";
import pg from "pg";
import type { TenantScope, TierStore } from "../../src/platform/db";
import { systemClock } from "../../src/platform/clock";
import type { Env } from "../../src/platform/env";
import type { Logger } from "../../src/platform/logger";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import {
  createNotification,
  listNotifications,
  markAllRead,
  markRead,
  unreadCount,
  type NotificationDeps,
} from "../../src/tiers/notifications/services/notifications";
import { startStack } from "../stack";
import { uuidOf, uuidSql } from "./ids";
import { percentile, writeBenchResult, type BenchFigure } from "./result";
import { startBundledWorker } from "./worker";

const { values: args } = parseArgs({
  options: {
    connections: { type: "string", default: "10" },
    duration: { type: "string", default: "5" },
    "rt-calls": { type: "string", default: "30" },
    port: { type: "string", default: "0" },
  },
});
const connections = Number(args.connections);
const durationS = Number(args.duration);
const rtCalls = Number(args["rt-calls"]);

// The seed's shape. Tenant 0 is the big one; tenants 1..20 are the neighbours.
const BIG = { users: 1000, perUser: 200, wide: 100 };
const SMALL = { tenants: 20, users: 20, perUser: 50, wide: 10 };
/** Own rows k = 1..UNREAD_NEWEST (the newest) are unread, older ones read. */
const UNREAD_NEWEST = 40;
const expiredK = (k: number) => k % 25 === 0;
const deletedK = (k: number) => k % 50 === 13;

const jwtSecret = `bench-${randomUUID()}-${randomUUID()}`;
const log = (message: string) => console.error(`[bench] ${message}`);
const startedAt = performance.now();
/** Everything here shares the machine's cores; a busy machine (load above the core count) inflates every figure. */
const loadAtStart = loadavg()[0]!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// Deterministic ids: md5-derived, shaped as version-4 uuids, the same in SQL and here, so nothing is read back.

const tenantId = (t: number) => uuidOf(`t${t}`);
const userId = (t: number, u: number) => uuidOf(`u${t}.${u}`);
const notificationId = (t: number, u: number, k: number) => uuidOf(`n${t}.${u}.${k}`);

// ---------------------------------------------------------------------------------------------------------------
// Stack, seed, Worker

const stack = await startStack({ purpose: "test", jwtSecret });
log(stack.describe());
const ownerUrl = stack.databases.ownerUrls.notifications;
/** PGlite serves one session per connection, so (like the local Neon endpoint) direct SQL connects per call there. */
const embedded = stack.databases.kind === "pglite";
const appUrl = (() => {
  const url = new URL(ownerUrl);
  url.username = "app_user";
  url.password = embedded ? "" : url.password;
  return url.toString();
})();
/** Direct SQL runs as the app role: PGlite logs in as it; a real server keeps the owner login and SET LOCAL ROLE. */
const directUrl = embedded ? appUrl : ownerUrl;
const directPrelude: Query[] = embedded ? [] : [{ text: "set local role app_user", values: [] }];

function ownRowsSql(t: number, users: number, perUser: number): string {
  return `
    insert into notifications (id, tenant_id, user_id, type, title, message, data, channel, is_read, read_at, created_at, expires_at, deleted_at)
    select ${uuidSql(`'n${t}.' || u || '.' || k`)}, '${tenantId(t)}', ${uuidSql(`'u${t}.' || u`)},
           (array['campaign.completed', 'mailbox.bounced', 'lead.replied', 'billing.invoice'])[1 + k % 4],
           'Notification ' || k,
           'Update ' || k || ' for user ' || u || ': replies, bounces and opens since your last visit.',
           jsonb_build_object('k', k, 'campaign', 'c' || (k % 7)),
           case when k % 10 = 3 then 'email' else 'in_app' end,
           k > ${UNREAD_NEWEST},
           case when k > ${UNREAD_NEWEST} then c.at + interval '1 hour' end,
           c.at,
           case when k % 25 = 0 then now() - interval '1 hour' when k % 25 = 5 then now() + interval '3 days' end,
           case when k % 50 = 13 then c.at + interval '10 minutes' end
    from generate_series(1, ${users}) u, generate_series(1, ${perUser}) k,
         lateral (select now() - make_interval(mins => k * 37, secs => u) as at) c`;
}

function wideRowsSql(t: number, wide: number): string {
  return `
    insert into notifications (id, tenant_id, user_id, type, title, message, channel, created_at, expires_at)
    select ${uuidSql(`'w${t}.' || k`)}, '${tenantId(t)}', null, 'announcement', 'Announcement ' || k,
           'Something every member of the tenant should know, number ' || k || '.', 'in_app',
           now() - make_interval(mins => k * 53), case when k % 25 = 0 then now() - interval '1 hour' end
    from generate_series(1, ${wide}) k`;
}

/** Read receipts for a third of the older tenant-wide rows, and some per-user deletions. */
function receiptsSql(t: number, users: number, wide: number): string {
  return `
    insert into notification_receipts (notification_id, tenant_id, user_id, read_at, deleted_at)
    select ${uuidSql(`'w${t}.' || k`)}, '${tenantId(t)}', ${uuidSql(`'u${t}.' || u`)},
           case when (u + k) % 3 = 0 then now() - interval '1 hour' end,
           case when (u + k) % 17 = 0 then now() - interval '30 minutes' end
    from generate_series(1, ${users}) u, generate_series(21, ${wide}) k
    where (u + k) % 3 = 0 or (u + k) % 17 = 0`;
}

/** The tenants and their members in OLTP, which every call's authorization reads (user 1 of each tenant is its admin). */
function membersSql(): string {
  const member = (t: string, u: string) => `${uuidSql(`'u' || ${t} || '.' || ${u}`)}, ${uuidSql(`'t' || ${t}`)}, 'user' || ${u} || '@t' || ${t} || '.bench.test', case when ${u} = 1 then 'admin' else 'member' end`;
  return `
    insert into tenants (id, name) select ${uuidSql("'t' || t")}, 'Bench tenant ' || t from generate_series(0, ${SMALL.tenants}) t;
    insert into users (id, tenant_id, email, role)
      select ${member("0", "u")} from generate_series(1, ${BIG.users}) u
      union all
      select ${member("t", "u")} from generate_series(1, ${SMALL.tenants}) t, generate_series(1, ${SMALL.users}) u;
    analyze;`;
}

async function seed(): Promise<void> {
  const started = performance.now();
  const oltp = new pg.Client({ connectionString: stack.databases.ownerUrls.oltp });
  await oltp.connect();
  try {
    await oltp.query(membersSql());
  } finally {
    await oltp.end();
  }
  // The ids are the same every run, so a cache entry of an earlier run (a refusal cached while these users did not
  // exist) would answer for them: the bench's Redis starts empty, as its databases do.
  await stack.upstash.flushAll();
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await client.query(ownRowsSql(0, BIG.users, BIG.perUser));
    await client.query(wideRowsSql(0, BIG.wide));
    await client.query(receiptsSql(0, BIG.users, BIG.wide));
    for (let t = 1; t <= SMALL.tenants; t++) {
      await client.query(ownRowsSql(t, SMALL.users, SMALL.perUser));
      await client.query(wideRowsSql(t, SMALL.wide));
      await client.query(receiptsSql(t, SMALL.users, SMALL.wide));
    }
    await client.query("analyze");
    const { rows } = await client.query<{ total: string; big: string; unread: string; wide: string; expired: string; receipts: string }>(`
      select count(*) as total, count(*) filter (where tenant_id = '${tenantId(0)}') as big,
             count(*) filter (where not is_read and user_id is not null) as unread, count(*) filter (where user_id is null) as wide,
             count(*) filter (where expires_at < now()) as expired, (select count(*) from notification_receipts) as receipts
      from notifications`);
    const r = rows[0]!;
    log(
      `seeded ${r.total} notifications (${r.big} in the big tenant; ${r.unread} own unread, ${r.wide} tenant-wide, ${r.expired} expired) ` +
        `and ${r.receipts} receipts in ${((performance.now() - started) / 1000).toFixed(1)} s, then ANALYZE`,
    );
  } finally {
    await client.end();
  }
}



// ---------------------------------------------------------------------------------------------------------------
// The services' SQL, captured from the services themselves (a store that records instead of sending), so the
// direct-SQL floor and the EXPLAINs run exactly what the Worker sends.

interface Query {
  text: string;
  values: unknown[];
}
type Call = Query[];

const dialect = new PgDialect();
const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quietLogger };
/** One row that satisfies every service's reading of its results. */
const fakeRow = {
  complete: true, updated: 1, missing: [], unread: 0, next_expiry: null, outbox_id: null,
  id: "00000000-0000-4000-8000-000000000000", tenant_id: "00000000-0000-4000-8000-000000000000", user_id: null,
  type: "x", title: "x", message: "x", data: {}, channel: "in_app", is_read: false, read_at: null,
  created_at: "2026-01-01 00:00:00+00", expires_at: null, cursor_at: "2026-01-01T00:00:00.000000Z",
};

const noRedis = () => Promise.reject(new Error("no Redis while capturing a call's SQL"));
/** A pipeline that queues anything and fails as a whole when sent. */
const downPipeline: object = new Proxy({}, { get: (_t, prop) => (prop === "then" ? undefined : prop === "exec" ? noRedis : () => downPipeline) });
/** A Redis that is down: every command and every pipeline's exec rejects. */
const downRedis = new Proxy({}, { get: (_t, prop) => (prop === "then" ? undefined : prop === "pipeline" ? () => downPipeline : noRedis) });

async function captureCall(run: (deps: NotificationDeps) => Promise<unknown>): Promise<Call> {
  let captured: SQL[] | undefined;
  const db = {
    execute: (query: SQL) => query,
    batch: async (items: SQL[]) => {
      captured = items;
      return items.map(() => ({ rows: [fakeRow] }));
    },
  };
  const store = { tier: "notifications", db, sql: undefined, connectionString: "" } as unknown as TierStore;
  // Any Redis call throws: the cache lookup falls back to Postgres, the limiters fail open, invalidations are dropped.
  const deps: NotificationDeps = {
    env: {} as Env,
    clock: systemClock,
    // Captured, never sent: only the service's SQL is measured here.
    jobs: { direct: (type: string, tenantId: string | null, payload: unknown) => ({ queue: "normal", message: { jobId: randomUUID(), type, tenantId, payload, enqueuedAt: "" } }), sendAfterResponse: () => undefined } as unknown as NotificationDeps["jobs"],
    store,
    redis: downRedis as NotificationDeps["redis"],
    logger: quietLogger,
    waitUntil: (promise) => void promise.catch(() => undefined),
    config: notificationsConfig,
  };
  await run(deps);
  if (!captured) throw new Error("the service sent no batch");
  return [...directPrelude, ...captured.map((item) => {
    const { sql, params } = dialect.sqlToQuery(item);
    return { text: sql, values: params };
  })];
}

// ---------------------------------------------------------------------------------------------------------------
// Load generation in a worker thread, so the stack's work in this thread (PGlite runs synchronously) does not delay
// the load generator's clocks. HTTP through autocannon; direct SQL through pg lanes. Latencies are kept as floats.

interface HttpRequestSpec {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface LoadResult {
  latencies: number[];
  completed: number;
  errors: number;
  non2xx: number;
  firstError?: string;
  elapsedS: number;
}

interface Stats {
  n: number;
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}

const modules = (() => {
  const require = createRequire(import.meta.url);
  return { autocannon: require.resolve("autocannon"), pg: require.resolve("pg"), neon: require.resolve("@neondatabase/serverless") };
})();

const loadWorkerSource = `
const { parentPort, workerData: job } = require("node:worker_threads");
const autocannon = require(job.modules.autocannon);
const pg = require(job.modules.pg);

function http() {
  return new Promise((resolve) => {
    let next = 0;
    const latencies = [];
    let non2xx = 0;
    const started = performance.now();
    const opts = {
      url: job.url,
      connections: job.connections,
      pipelining: 1,
      timeout: 30,
      requests: [{ setupRequest: (req) => {
        const spec = job.requests[next++ % job.requests.length];
        return { ...req, method: spec.method, path: spec.path, headers: spec.headers, body: spec.body };
      } }],
    };
    if (job.amount) opts.amount = job.amount; else opts.duration = job.duration;
    const instance = autocannon(opts, (error, result) => {
      clearTimeout(guard);
      resolve({
        latencies, completed: latencies.length, non2xx,
        errors: (result ? result.errors + result.timeouts : 0) + (error ? 1 : 0),
        firstError: error ? String(error) : undefined,
        elapsedS: (performance.now() - started) / 1000,
      });
    });
    instance.on("response", (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms); else non2xx++;
    });
    const guard = setTimeout(() => instance.stop(), job.timeoutMs);
  });
}

async function sql() {
  const deadline = performance.now() + (job.amount ? job.timeoutMs : job.duration * 1000);
  const latencies = [];
  let next = 0, errors = 0, firstError;
  const started = performance.now();
  async function lane() {
    const shared = job.perCallConnect ? null : new pg.Client({ connectionString: job.url });
    if (shared) await shared.connect();
    try {
      while (performance.now() < deadline && (!job.amount || next < job.amount)) {
        const call = job.calls[next++ % job.calls.length];
        const t0 = performance.now();
        const client = shared || new pg.Client({ connectionString: job.url });
        try {
          if (!shared) await client.connect();
          await client.query("begin");
          try {
            for (const q of call) await client.query(q.text, q.values);
            await client.query("commit");
          } catch (error) {
            await client.query("rollback").catch(() => {});
            throw error;
          }
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          firstError = firstError || String(error);
        } finally {
          if (!shared) await client.end().catch(() => {});
        }
      }
    } finally {
      if (shared) await shared.end().catch(() => {});
    }
  }
  await Promise.all(Array.from({ length: job.connections }, lane));
  return { latencies, completed: latencies.length, non2xx: 0, errors, firstError, elapsedS: (performance.now() - started) / 1000 };
}

// The same calls as the Worker sends them: the Neon driver's HTTP transaction through the local Neon endpoint.
async function neonHttp() {
  const { neon, neonConfig } = require(job.modules.neon);
  neonConfig.fetchEndpoint = job.fetchEndpoint;
  const run = neon(job.url);
  const deadline = performance.now() + (job.amount ? job.timeoutMs : job.duration * 1000);
  const latencies = [];
  let next = 0, errors = 0, firstError;
  const started = performance.now();
  async function lane() {
    while (performance.now() < deadline && (!job.amount || next < job.amount)) {
      const call = job.calls[next++ % job.calls.length];
      const t0 = performance.now();
      try {
        await run.transaction(call.map((q) => run.query(q.text, q.values)));
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError = firstError || String(error);
      }
    }
  }
  await Promise.all(Array.from({ length: job.connections }, lane));
  return { latencies, completed: latencies.length, non2xx: 0, errors, firstError, elapsedS: (performance.now() - started) / 1000 };
}

(job.kind === "http" ? http() : job.kind === "neon" ? neonHttp() : sql()).then((result) => parentPort.postMessage(result), (error) => parentPort.postMessage({ crashed: String(error && error.stack || error) }));
`;

type LoadJob =
  | { kind: "http"; url: string; requests: HttpRequestSpec[]; connections: number; amount?: number; duration?: number }
  | { kind: "sql"; url: string; calls: Call[]; connections: number; amount?: number; duration?: number; perCallConnect: boolean }
  | { kind: "neon"; url: string; fetchEndpoint: string; calls: Call[]; connections: number; amount?: number; duration?: number };

function runLoad(job: LoadJob): Promise<Stats & { raw: LoadResult }> {
  // Every run is bounded in time: a duration, or a request count with a hard stop.
  const timeoutMs = job.amount ? Math.max(20_000, job.amount * 40) : (job.duration ?? durationS) * 1000 + 10_000;
  return new Promise((resolve, reject) => {
    const worker = new Worker(loadWorkerSource, { eval: true, workerData: { ...job, modules, timeoutMs } });
    worker.once("message", (message: LoadResult | { crashed: string }) => {
      void worker.terminate();
      if ("crashed" in message) return reject(new Error(`load worker: ${message.crashed}`));
      if (message.errors > 0 || message.non2xx > 0) {
        log(`  ${message.errors} errors, ${message.non2xx} non-2xx${message.firstError ? ` (first: ${message.firstError})` : ""}`);
      }
      resolve({ ...summarize(message.latencies, message.elapsedS), errors: message.errors + message.non2xx, raw: message });
    });
    worker.once("error", reject);
  });
}

function summarize(latencies: number[], elapsedS: number): Stats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), rps: elapsedS > 0 ? sorted.length / elapsedS : NaN, errors: 0 };
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips: N sequential calls, counters reset before each and read once the work the Worker does after its
// response (cache refill or invalidation, via waitUntil) has settled. The counters cannot tell that work from the
// response path (it starts before the response leaves), so `offPathCheck` proves it separately: with Redis hung, a
// call whose Redis trip is after the response still answers at once.

interface RoundTrips {
  pg: number;
  redis: number;
  unloaded: Stats;
}

const pgCount = () => Object.values(stack.neon.roundTrips()).reduce((sum, n) => sum + n, 0);

async function send(base: string, spec: HttpRequestSpec): Promise<unknown> {
  const response = await fetch(`${base}${spec.path}`, {
    method: spec.method,
    headers: spec.headers,
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${spec.method} ${spec.path.slice(0, 60)} answered ${response.status}: ${text.slice(0, 300)}`);
  return text;
}

async function countRoundTrips(base: string, specs: HttpRequestSpec[]): Promise<RoundTrips> {
  const sums = { pg: 0, redis: 0 };
  const latencies: number[] = [];
  for (const spec of specs) {
    stack.neon.resetRoundTrips();
    stack.upstash.resetRoundTrips();
    const t0 = performance.now();
    await send(base, spec);
    latencies.push(performance.now() - t0);
    // Settled: the counters unchanged for 60 ms (at most 600 ms).
    let last = "";
    for (let waited = 0, stableFor = 0; waited < 600 && stableFor < 60; waited += 20) {
      await sleep(20);
      const now = `${pgCount()}/${stack.upstash.roundTrips()}`;
      stableFor = now === last ? stableFor + 20 : 0;
      last = now;
    }
    sums.pg += pgCount();
    sums.redis += stack.upstash.roundTrips();
  }
  const n = specs.length;
  const round = (x: number) => Math.round((x / n) * 100) / 100;
  return {
    pg: round(sums.pg),
    redis: round(sums.redis),
    unloaded: summarize(latencies, latencies.reduce((a, b) => a + b, 0) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

/** Calls with the Upstash endpoint hanging every request: p50 stays low only if no Redis trip is on the response path. */
async function offPathCheck(base: string, specs: HttpRequestSpec[]): Promise<Stats> {
  const latencies: number[] = [];
  stack.upstash.setFault("hang");
  try {
    for (const spec of specs) {
      const t0 = performance.now();
      await send(base, spec);
      latencies.push(performance.now() - t0);
    }
  } finally {
    stack.upstash.setFault("none");
  }
  await sleep(300);
  return summarize(latencies, 1);
}

const tokenFor = async (t: number, u: number, role: "member" | "admin") =>
  mintToken(jwtSecret, { sub: userId(t, u), tenant_id: tenantId(t), role });

const scopeOf = (t: number, u: number, role: "member" | "admin" = "member"): TenantScope => ({ tenantId: tenantId(t), userId: userId(t, u), role });

const members = new Map<string, string>();
for (let u = 1; u <= BIG.users; u++) members.set(`0.${u}`, await tokenFor(0, u, "member"));
for (let t = 1; t <= SMALL.tenants; t++) for (let u = 1; u <= SMALL.users; u++) members.set(`${t}.${u}`, await tokenFor(t, u, "member"));
const admins = new Map<number, string>();
for (let t = 0; t <= SMALL.tenants; t++) admins.set(t, await tokenFor(t, 1, "admin"));
const member = (t: number, u: number) => members.get(`${t}.${u}`)!;

const json = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });
const unreadRequest = (u: number): HttpRequestSpec => ({ method: "GET", path: "/v1/notifications/unread-count", headers: { authorization: `Bearer ${member(0, u)}` } });
const listInput = { limit: 20 };
const listRequest = (u: number): HttpRequestSpec => ({
  method: "GET",
  path: `/trpc/notifications.list?input=${encodeURIComponent(JSON.stringify(listInput))}`,
  headers: { authorization: `Bearer ${member(0, u)}` },
});
const markReadRequest = (target: ReadTarget): HttpRequestSpec => ({
  method: "POST",
  path: "/trpc/notifications.markRead",
  headers: json(member(target.t, target.u)),
  body: JSON.stringify({ ids: [target.id] }),
});
const markAllReadRequest = (t: number, u: number): HttpRequestSpec => ({ method: "POST", path: "/trpc/notifications.markAllRead", headers: json(member(t, u)), body: "{}" });

/** Creates go round the 21 tenants (the per-tenant limit is 600 a minute) to rotating recipients. */
interface CreateTarget {
  t: number;
  recipient: string;
  input: { userId: string; type: string; title: string; message: string; channel: "in_app" };
}
const createTarget = (i: number): CreateTarget => {
  const t = i % (SMALL.tenants + 1);
  const users = t === 0 ? BIG.users : SMALL.users;
  const recipient = userId(t, 1 + (Math.floor(i / (SMALL.tenants + 1)) % users));
  return { t, recipient, input: { userId: recipient, type: "bench.created", title: `Bench notification ${i}`, message: "Created by the notifications benchmark.", channel: "in_app" } };
};
const createRequest = (target: CreateTarget): HttpRequestSpec => ({
  method: "POST",
  path: "/trpc/notifications.create",
  headers: json(admins.get(target.t)!),
  body: JSON.stringify(target.input),
});

/** Unread, live own rows of the big tenant, interleaved across users so consecutive calls go to different users. */
interface ReadTarget {
  t: number;
  u: number;
  id: string;
}
const readTargets: ReadTarget[] = [];
for (let k = 1; k <= UNREAD_NEWEST; k++) {
  if (expiredK(k) || deletedK(k)) continue;
  for (let u = 1; u <= BIG.users; u++) readTargets.push({ t: 0, u, id: notificationId(0, u, k) });
}
let readCursor = 0;
const takeReadTargets = (n: number) => {
  const taken = readTargets.slice(readCursor, readCursor + n);
  readCursor += n;
  if (taken.length < n) throw new Error("ran out of unread notifications to mark read");
  return taken;
};
let createCursor = 0;
const takeCreateTargets = (n: number) => Array.from({ length: n }, () => createTarget(createCursor++));

const upstashCommand = async (command: unknown[]) => {
  const response = await fetch(stack.upstash.url, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.upstash.token}`, "content-type": "application/json" },
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`upstash ${String(command[0])} answered ${response.status}`);
};
/** What creating a tenant-wide notification does to the cache: every member's cached count of the tenant goes stale. */
const staleBigTenantCache = () => upstashCommand(["HSET", `notif:unread:${tenantId(0)}`, "tenant", randomUUID()]);
const hmgetRequest = (u: number): HttpRequestSpec => ({
  method: "POST",
  path: "/",
  headers: { authorization: `Bearer ${stack.upstash.token}`, "content-type": "application/json" },
  body: JSON.stringify(["HMGET", `notif:unread:${tenantId(0)}`, "tenant", `v:${userId(0, u)}`, `c:${userId(0, u)}`]),
});

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const usersFrom = (from: number, count: number) => range(from, count).map((i) => 1 + ((i - 1) % BIG.users));

// ---------------------------------------------------------------------------------------------------------------
// EXPLAIN of the list and unread-count statements as the app role under a tenant context.

async function explainPlans(): Promise<Array<{ name: string; plan: string[]; indexes: string[]; seqScan: boolean }>> {
  const scope = scopeOf(0, 7);
  const list = await captureCall((deps) => listNotifications(deps, scope, listInput));
  const count = await captureCall((deps) => unreadCount(deps, scope));
  // list = [prelude..., set_config, page, unread count]; count = [prelude..., set_config, unread count]
  const prelude = list.slice(0, directPrelude.length + 1);
  const statements = [
    { name: "list (page)", query: list.at(-2)! },
    { name: "unread count", query: count.at(-1)! },
  ];
  const out = [];
  for (const { name, query } of statements) {
    const client = new pg.Client({ connectionString: directUrl });
    await client.connect();
    try {
      await client.query("begin");
      for (const q of prelude) await client.query(q.text, q.values);
      const { rows } = await client.query<{ "QUERY PLAN": string }>(`explain (analyze, buffers) ${query.text}`, query.values);
      await client.query("commit");
      const plan = rows.map((r) => r["QUERY PLAN"]);
      const text = plan.join("\n");
      const indexes = ["idx_notifications_user_tenant_created", "idx_notifications_unread"].filter((index) => text.includes(index));
      out.push({ name, plan, indexes, seqScan: /Seq Scan on notifications\b/.test(text) });
    } finally {
      await client.end();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The run

interface Row {
  op: string;
  method: string;
  /** Round trips per call, all told; `redisAfter` of the Redis ones are after the response by design. */
  target: { pg: number; redis: number; redisAfter: number };
  rt: RoundTrips;
  /** p50 with Redis hung, for the calls whose only Redis trip should be after the response. */
  hung?: Stats;
  load: Stats;
  direct: Stats | null;
  directUnloaded: Stats | null;
  /** The same SQL from Node through the local Neon endpoint (the hop the Worker's queries take), loaded and unloaded. */
  endpoint: Stats | null;
  endpointUnloaded: Stats | null;
  /** Redis round trips on the response path, each costed at the direct HMGET p50. */
  redisOnPath: number;
}

const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

await seed();
log("EXPLAIN at seed state…");
const plans = await explainPlans();
log("starting the Worker (bundle under Miniflare)…");
const worker = await startBundledWorker(stack.workerVars, Number(args.port) || 0);
log(`Worker at ${worker.base} (${((performance.now() - startedAt) / 1000).toFixed(0)} s in)`);
const http = (requests: HttpRequestSpec[], load: { amount?: number; duration?: number; connections?: number }, url = worker.base) =>
  runLoad({ kind: "http", url, requests, connections: load.connections ?? connections, ...load });
const sqlLoad = (calls: Call[], load: { amount?: number; duration?: number; connections?: number }) =>
  runLoad({ kind: "sql", url: directUrl, calls, connections: load.connections ?? connections, perCallConnect: embedded, ...load });

/** The same calls through the local Neon endpoint with the Neon driver, as the Worker sends them (no pg-only prelude). */
const endpointLoad = (calls: Call[], load: { amount?: number; duration?: number; connections?: number }) =>
  runLoad({
    kind: "neon",
    url: stack.workerVars.NOTIFICATIONS_DATABASE_URL!,
    fetchEndpoint: stack.neon.fetchEndpoint,
    calls: calls.map((call) => call.slice(directPrelude.length)),
    connections: load.connections ?? connections,
    ...load,
  });

const rows: Row[] = [];
try {
  // Warm-up: the bundle, the JIT, connections, the limiter scripts; and every big-tenant user's cached count.
  log("warming up…");
  const ping: HttpRequestSpec = { method: "GET", path: "/ping", headers: {} };
  await http([ping], { amount: 2000 });
  await http(usersFrom(1, BIG.users).map(listRequest), { amount: 300 });
  await http(takeReadTargets(200).map(markReadRequest), { amount: 200 });
  await http(takeCreateTargets(100).map(createRequest), { amount: 100 });
  await http(range(0, 100).map((i) => markAllReadRequest(1 + (i % SMALL.tenants), 1 + Math.floor(i / SMALL.tenants))), { amount: 100 });
  await sleep(300);

  // Floors.
  log("floor: bare route and direct Redis…");
  const bare = await http([ping], { duration: durationS });
  const bareUnloaded = await http([ping], { amount: 500, connections: 1 });
  const hmgets = usersFrom(1, BIG.users).map(hmgetRequest);
  const redisDirect = await http(hmgets, { duration: durationS }, stack.upstash.url);
  const redisUnloaded = await http(hmgets, { amount: 500, connections: 1 }, stack.upstash.url);

  // Unread count, cache hit: every user's count was cached by the warm-up.
  log("unread count, cache hit…");
  {
    // Every big-tenant user's count cached (misses now, refills after), after every warm-up write.
    await http(usersFrom(1, BIG.users).map(unreadRequest), { amount: BIG.users });
    await sleep(500);
    const rt = await countRoundTrips(worker.base, usersFrom(1, rtCalls).map(unreadRequest));
    const load = await http(usersFrom(1, BIG.users).map(unreadRequest), { duration: durationS });
    rows.push({ op: "unread count (cache hit)", method: "GET /v1/notifications/unread-count", target: { pg: 0, redis: 1, redisAfter: 0 }, rt, load, direct: null, directUnloaded: null, endpoint: null, endpointUnloaded: null, redisOnPath: 1 });
  }

  // Unread count, cache miss: a tenant-wide change (as creating a tenant-wide notification makes) stales every
  // cached count of the tenant; then each user is asked once, so every call misses (its refill comes after the response).
  log("unread count, cache miss…");
  {
    await staleBigTenantCache();
    const rt = await countRoundTrips(worker.base, usersFrom(1, rtCalls).map(unreadRequest));
    await staleBigTenantCache();
    const load = await http(usersFrom(1, BIG.users).map(unreadRequest), { amount: BIG.users });
    const calls = await Promise.all(usersFrom(1, BIG.users).map((u) => captureCall((deps) => unreadCount(deps, scopeOf(0, u)))));
    const direct = await sqlLoad(calls, { duration: durationS });
    const directUnloaded = await sqlLoad(calls, { amount: 100, connections: 1 });
    const endpoint = await endpointLoad(calls, { duration: durationS });
    const endpointUnloaded = await endpointLoad(calls, { amount: 100, connections: 1 });
    rows.push({ endpoint, endpointUnloaded, op: "unread count (cache miss)", method: "GET /v1/notifications/unread-count", target: { pg: 1, redis: 2, redisAfter: 1 }, rt, load, direct, directUnloaded, redisOnPath: 1 });
  }

  log("list on login…");
  {
    const rt = await countRoundTrips(worker.base, usersFrom(1, rtCalls).map(listRequest));
    const load = await http(usersFrom(1, BIG.users).map(listRequest), { duration: durationS });
    const calls = await Promise.all(usersFrom(1, BIG.users).map((u) => captureCall((deps) => listNotifications(deps, scopeOf(0, u), listInput))));
    const direct = await sqlLoad(calls, { duration: durationS });
    const directUnloaded = await sqlLoad(calls, { amount: 100, connections: 1 });
    const endpoint = await endpointLoad(calls, { duration: durationS });
    const endpointUnloaded = await endpointLoad(calls, { amount: 100, connections: 1 });
    rows.push({ endpoint, endpointUnloaded, op: "list on login (page + unread)", method: "GET /trpc/notifications.list", target: { pg: 1, redis: 0, redisAfter: 0 }, rt, load, direct, directUnloaded, redisOnPath: 0 });
  }

  // Mark read: one unread notification per call, each a different one, users rotating.
  const mutationAmount = Math.max(200, Math.min(3000, Math.round(durationS * 300)));
  log("mark read…");
  {
    const rt = await countRoundTrips(worker.base, takeReadTargets(rtCalls).map(markReadRequest));
    const hung = await offPathCheck(worker.base, takeReadTargets(5).map(markReadRequest));
    const load = await http(takeReadTargets(mutationAmount).map(markReadRequest), { amount: mutationAmount });
    const calls = await Promise.all(takeReadTargets(2 * (mutationAmount + 100)).map((x) => captureCall((deps) => markRead(deps, scopeOf(x.t, x.u), [x.id]))));
    const direct = await sqlLoad(calls.slice(0, mutationAmount), { amount: mutationAmount });
    const directUnloaded = await sqlLoad(calls.slice(mutationAmount, mutationAmount + 100), { amount: 100, connections: 1 });
    const endpoint = await endpointLoad(calls.slice(mutationAmount + 100, 2 * mutationAmount + 100), { amount: mutationAmount });
    const endpointUnloaded = await endpointLoad(calls.slice(2 * mutationAmount + 100), { amount: 100, connections: 1 });
    rows.push({ endpoint, endpointUnloaded, op: "mark read (1 id)", method: "POST /trpc/notifications.markRead", target: { pg: 1, redis: 1, redisAfter: 1 }, rt, hung, load, direct, directUnloaded, redisOnPath: 0 });
  }

  log("create…");
  {
    const rt = await countRoundTrips(worker.base, takeCreateTargets(rtCalls).map(createRequest));
    const load = await http(takeCreateTargets(mutationAmount).map(createRequest), { amount: mutationAmount });
    const calls = await Promise.all(
      takeCreateTargets(2 * (mutationAmount + 100)).map((x) => captureCall((deps) => createNotification(deps, scopeOf(x.t, 1, "admin"), x.input))),
    );
    const direct = await sqlLoad(calls.slice(0, mutationAmount), { amount: mutationAmount });
    const directUnloaded = await sqlLoad(calls.slice(mutationAmount, mutationAmount + 100), { amount: 100, connections: 1 });
    const endpoint = await endpointLoad(calls.slice(mutationAmount + 100, 2 * mutationAmount + 100), { amount: mutationAmount });
    const endpointUnloaded = await endpointLoad(calls.slice(2 * mutationAmount + 100), { amount: 100, connections: 1 });
    rows.push({ endpoint, endpointUnloaded, op: "create (in_app, 1 user)", method: "POST /trpc/notifications.create", target: { pg: 1, redis: 2, redisAfter: 1 }, rt, load, direct, directUnloaded, redisOnPath: 1 });
  }

  // Mark all read: each call a different big-tenant user with ~37 unread own rows and ~55 unread tenant-wide ones.
  log("mark all read…");
  {
    const rtUsers = Math.min(rtCalls, 20);
    const loadUsers = 600;
    /** What is left is split between the two floors: direct pg, then the local Neon endpoint. */
    const directUsers = Math.floor((BIG.users - rtUsers - loadUsers - 40) / 2);
    const rt = await countRoundTrips(worker.base, range(1, rtUsers).map((u) => markAllReadRequest(0, u)));
    // Users of a small tenant the warm-up did not touch, each with unread rows, so each call invalidates.
    const hung = await offPathCheck(worker.base, range(10, 5).map((u) => markAllReadRequest(1, u)));
    const load = await http(range(1 + rtUsers, loadUsers).map((u) => markAllReadRequest(0, u)), { amount: loadUsers });
    const calls = await Promise.all(range(1 + rtUsers + loadUsers, 2 * (directUsers + 20)).map((u) => captureCall((deps) => markAllRead(deps, scopeOf(0, u)))));
    const direct = await sqlLoad(calls.slice(0, directUsers), { amount: directUsers });
    const directUnloaded = await sqlLoad(calls.slice(directUsers, directUsers + 20), { amount: 20, connections: 1 });
    const endpoint = await endpointLoad(calls.slice(directUsers + 20, 2 * directUsers + 20), { amount: directUsers });
    const endpointUnloaded = await endpointLoad(calls.slice(2 * directUsers + 20), { amount: 20, connections: 1 });
    rows.push({ endpoint, endpointUnloaded, op: "mark all read", method: "POST /trpc/notifications.markAllRead", target: { pg: 1, redis: 1, redisAfter: 1 }, rt, hung, load, direct, directUnloaded, redisOnPath: 0 });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Report
  const missed: string[] = [];
  const out: string[] = [];
  const figures: BenchFigure[] = [];
  out.push(
    `\nNotifications benchmark: tenant 0 has ${BIG.users} users × ${BIG.perUser} own notifications + ${BIG.wide} tenant-wide; ` +
      `${SMALL.tenants} more tenants have ${SMALL.users} users × ${SMALL.perUser} + ${SMALL.wide}.`,
    `${stack.describe()}. Worker: the bundle under Miniflare (workerd, no wrangler proxy or local tracing) on 127.0.0.1. Load: autocannon, ${connections} connections, ` +
      `${durationS} s per read path, a fixed count of distinct targets per write path, from a worker thread.`,
    `Direct SQL: the statements the services send (captured from the service code), as app_user in one transaction ` +
      `(set_config first), with pg${embedded ? ", one connection per call as the local Neon endpoint does against PGlite" : ", one pooled connection per lane"}.`,
    "",
    `Floors: bare GET /ping p50 ${fmt(bare.p50)} ms, p99 ${fmt(bare.p99)} ms, ${fmt(bare.rps, 0)} req/s; ` +
      `direct Redis HMGET (Upstash REST) p50 ${fmt(redisDirect.p50)} ms, p99 ${fmt(redisDirect.p99)} ms, ${fmt(redisDirect.rps, 0)} req/s ` +
      `(unloaded: ping p50 ${fmt(bareUnloaded.p50)} ms, HMGET p50 ${fmt(redisUnloaded.p50)} ms).`,
    "",
    `At ${connections} connections (latencies in ms). Overhead = call p50 − bare p50 − the call's store round trips, each costed at ` +
      `its p50 measured from Node with the same driver through the same local endpoint (Neon HTTP for Postgres, Upstash REST for Redis); ` +
      `"vs direct SQL" costs the Postgres trip at plain pg's p50 instead, so it also charges the API with the local endpoint's HTTP hop:`,
    "",
    "| operation | round trips (pg / redis) | p50 | p99 | req/s | bare p50 | via endpoint p50 | direct-SQL p50 | overhead p50 | vs direct SQL | verdict vs targets |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const unloadedLines: string[] = [];
  for (const row of rows) {
    const pgTrips = row.target.pg;
    const storeLoaded = pgTrips * (row.endpoint?.p50 ?? 0) + row.redisOnPath * redisDirect.p50;
    const storeUnloaded = pgTrips * (row.endpointUnloaded?.p50 ?? 0) + row.redisOnPath * redisUnloaded.p50;
    const overhead = row.load.p50 - bare.p50 - storeLoaded;
    const overheadUnloaded = row.rt.unloaded.p50 - bareUnloaded.p50 - storeUnloaded;
    const overheadDirect = row.load.p50 - bare.p50 - pgTrips * (row.direct?.p50 ?? 0) - row.redisOnPath * redisDirect.p50;
    const overheadDirectUnloaded = row.rt.unloaded.p50 - bareUnloaded.p50 - pgTrips * (row.directUnloaded?.p50 ?? 0) - row.redisOnPath * redisUnloaded.p50;
    const hungOk = row.hung ? row.hung.p50 < 1000 : true;
    const tripsOk = row.rt.pg === row.target.pg && row.rt.redis === row.target.redis && hungOk;
    const throughputOk = row.load.rps >= bare.rps / 2;
    const verdict = [
      tripsOk ? "round trips ok" : `round trips MISSED (want ${row.target.pg} / ${row.target.redis}${hungOk ? "" : ", Redis on the response path"})`,
      overhead <= 1 ? "overhead ok" : "overhead MISSED",
      throughputOk ? "throughput ok" : `throughput MISSED (${fmt((row.load.rps / bare.rps) * 100, 0)}% of bare)`,
    ];
    if (!tripsOk) missed.push(`${row.op}: round trips ${row.rt.pg} / ${row.rt.redis}${row.hung ? `, p50 with Redis hung ${fmt(row.hung.p50)} ms` : ""}`);
    if (overhead > 1) missed.push(`${row.op}: overhead p50 ${fmt(overhead)} ms at ${connections} connections (${fmt(overheadUnloaded)} ms unloaded)`);
    if (!throughputOk) missed.push(`${row.op}: ${fmt(row.load.rps, 0)} req/s vs bare ${fmt(bare.rps, 0)} req/s`);
    const after = row.target.redisAfter
      ? ` (${row.target.redisAfter} Redis after the response${row.hung ? `; ${fmt(row.hung.p50, 0)} ms p50 with Redis hung` : ""})`
      : "";
    const errors = row.load.errors ? ` [${row.load.errors} errors]` : "";
    out.push(
      `| ${row.op} | ${row.rt.pg} / ${row.rt.redis}${after} | ${fmt(row.load.p50)} | ${fmt(row.load.p99)} | ${fmt(row.load.rps, 0)}${errors} | ${fmt(bare.p50)} | ` +
        `${row.endpoint ? fmt(row.endpoint.p50) : "–"} | ` +
        `${row.direct ? `${fmt(row.direct.p50)} (p99 ${fmt(row.direct.p99)}, ${fmt(row.direct.rps, 0)}/s)` : "– (Redis only)"} | ${fmt(overhead)} | ${fmt(overheadDirect)} | ${verdict.join("; ")} |`,
    );
    unloadedLines.push(
      `| ${row.op} | ${fmt(row.rt.unloaded.p50)} | ${fmt(row.rt.unloaded.p99)} | ${fmt(bareUnloaded.p50)} | ${row.endpointUnloaded ? fmt(row.endpointUnloaded.p50) : "–"} | ` +
        `${row.directUnloaded ? fmt(row.directUnloaded.p50) : "–"} | ` +
        `${row.redisOnPath ? `${row.redisOnPath} × ${fmt(redisUnloaded.p50)}` : "–"} | ${fmt(overheadUnloaded)} | ${fmt(overheadDirectUnloaded)} | ${overheadUnloaded <= 1 ? "ok" : "MISSED"} |`,
    );
    figures.push(
      { metric: `${row.op}: round trips pg/redis`, value: `${row.rt.pg}/${row.rt.redis}`, unit: "trips", floor: "target", floorValue: `${row.target.pg}/${row.target.redis}` },
      { metric: `${row.op}: p50 at ${connections} connections`, value: row.load.p50, unit: "ms", floor: "bare route p50", floorValue: bare.p50 },
      { metric: `${row.op}: throughput`, value: row.load.rps, unit: "req/s", floor: "bare route", floorValue: bare.rps },
      { metric: `${row.op}: overhead p50 (store trips via local endpoint subtracted)`, value: overhead, unit: "ms", floor: "target", floorValue: 1 },
      { metric: `${row.op}: overhead p50 unloaded`, value: overheadUnloaded, unit: "ms", floor: "target", floorValue: 1 },
      ...(row.direct ? [{ metric: `${row.op}: same SQL direct (pg) p50`, value: row.direct.p50, unit: "ms" }] : []),
    );
  }
  out.push(
    "",
    `Unloaded (1 connection; the round-trip pass's ${rtCalls} sequential calls, the floors' own sequential runs):`,
    "",
    "| operation | call p50 | call p99 | bare p50 | via endpoint p50 | direct-SQL p50 | direct Redis | overhead p50 | vs direct SQL | ≤ 1 ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...unloadedLines,
    "",
    "Method: round trips are the local Neon and Upstash endpoints' counters over sequential calls (reset before each call, read " +
      "once the work the Worker does after responding has settled), all told. What runs after the response (cache refill on a miss, " +
      "invalidation after a write) starts before the response leaves, so the counters cannot separate it; for mark read and mark all " +
      "read, 5 calls with the Upstash endpoint hanging every request show it: they still answer at once. Cache hit: every user's count was " +
      "cached by the warm-up. Cache miss: a new tenant-wide version token (what creating a tenant-wide notification does) stales every " +
      "cached count in the tenant, then each of the 1,000 users is asked once. Mark read: a different unread notification per call. " +
      "Mark all read: a different user per call. Create: an admin of each of the 21 tenants in turn, to rotating recipients, under the rate limits " +
      "(its two limiter checks run in parallel and the Upstash client auto-pipelines them into one request; no target in shared/ARCHITECTURE.md, " +
      "so 1 Postgres, 1 Redis on the path and the invalidation after it are what the tier's design promises).",
    "",
  );
  for (const plan of plans) {
    const uses = plan.indexes.length > 0 && !plan.seqScan;
    out.push(
      `EXPLAIN (ANALYZE, BUFFERS) ${plan.name}, as app_user under tenant 0's context: ` +
        `${uses ? `uses ${plan.indexes.join(" and ")}, no Seq Scan on notifications` : `does NOT use the seed indexes as wanted (indexes: ${plan.indexes.join(", ") || "none"}; seq scan: ${plan.seqScan})`}`,
      ...plan.plan.map((line) => `  ${line}`),
      "",
    );
    if (!uses) missed.push(`EXPLAIN ${plan.name}: not an index plan`);
  }
  const loadAtEnd = loadavg()[0]!;
  const cores = availableParallelism();
  out.push(
    `Machine: ${cores} cores; 1-minute load average ${fmt(loadAtStart)} at the start, ${fmt(loadAtEnd)} at the end` +
      (Math.max(loadAtStart, loadAtEnd) > cores ? " — other processes were competing for the CPU, so latencies and rates are pessimistic." : "."),
    "",
  );
  out.push(missed.length ? `Targets missed (${missed.length}):\n${missed.map((m) => `  - ${m}`).join("\n")}` : "All targets met.");
  out.push(`\nTotal run ${((performance.now() - startedAt) / 1000).toFixed(0)} s.`);
  console.log(out.join("\n"));
  writeBenchResult("notifications", { figures, missed, markdown: out.join("\n") });
} finally {
  await worker.stop();
  await stack.close();
}
