// Issue 20, point 7: OLAP from every tier. Random workloads across notifications, the jobs ledger and the content catalog
// of two tenants; the aggregates read through the analytics procedures equal counts computed directly from each source,
// re-runs (and re-reading an already-read window) change nothing, late facts in aggregated days add exactly themselves,
// a tenant sees only its own aggregates, and a source tier that is down fails alone and catches up.
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { tierStore } from "../../src/platform/db";
import { parseEnv } from "../../src/platform/env";
import { olapConfig } from "../../src/tiers/olap/config";
import { aggregateTiers, tierSources, type TierOutcome } from "../../src/tiers/olap/etl/tiers";
import { pruneTierAggregates } from "../../src/tiers/olap/services/partitions";
import { createBareTenant, oltpSql, type TestTenant } from "../support/factories";
import { asSystem } from "../support/notifications";
import { noonOf, olapStore, utcDay } from "../support/olap";
import { setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

const stores = (tier: "oltp" | "notifications" | "olap") => tierStore(parseEnv(env), tier);
const runTiers = () => aggregateTiers(stores);
const range = { from: utcDay(-10), to: utcDay(1) };
const jobTypes = ["OLAP_TIER_TEST_A", "OLAP_TIER_TEST_B"] as const;
const jobStatuses = ["pending", "running", "succeeded", "failed", "dead"] as const;

function expectAllAdvanced(outcomes: TierOutcome[]) {
  for (const o of outcomes) expect("error" in o ? String(o.error) : "ok", o.source).toBe("ok");
}

// ---- arranging facts in the sources ----

async function notify(tenant: TestTenant, channel: string, daysAgo: number, addressed: boolean): Promise<string> {
  const id = crypto.randomUUID();
  await asSystem(
    (sql) => [
      sql`insert into notifications (id, tenant_id, user_id, type, title, message, channel, created_at)
          values (${id}, ${tenant.id}, ${addressed ? tenant.member.id : null}, 'test', 'T', 'M', ${channel}, ${noonOf(-daysAgo).toISOString()})`,
    ],
    tenant.id,
  );
  return id;
}

async function deliver(tenant: TestTenant, notificationId: string, channel: string, outcome: string, outboxId: string) {
  await asSystem(
    (sql) => [
      sql`insert into notification_deliveries (tenant_id, notification_id, outbox_id, channel, attempt, outcome, started_at)
          values (${tenant.id}, ${notificationId}, ${outboxId}, ${channel}, 1, ${outcome}, now())`,
    ],
    tenant.id,
  );
}

async function asTenantOltp(tenantId: string, statement: (sql: ReturnType<typeof oltpSql>) => ReturnType<ReturnType<typeof oltpSql>>) {
  const sql = oltpSql();
  const [, rows] = await sql.transaction([sql`select set_config('app.current_tenant_id', ${tenantId}, true)`, statement(sql)]);
  return rows as Record<string, unknown>[];
}

async function enqueueJob(tenant: TestTenant, type: string, daysAgo: number, status: (typeof jobStatuses)[number], waitMs: number, runMs: number) {
  const created = noonOf(-daysAgo);
  const started = status === "pending" ? null : new Date(created.getTime() + waitMs);
  const completed = started && status !== "running" ? new Date(started.getTime() + runMs) : null;
  const [row] = await asTenantOltp(tenant.id, (sql) =>
    sql`insert into jobs (tenant_id, type, priority, status, max_attempts, created_at, scheduled_at, started_at, completed_at)
        values (${tenant.id}, ${type}, 'normal', ${status}, 3, ${created.toISOString()}, ${created.toISOString()},
                ${started?.toISOString() ?? null}, ${completed?.toISOString() ?? null}) returning id`,
  );
  return String(row!.id);
}

/** A job's outcome arriving later: it ran and ended `status` (a late fact for the day it was enqueued). */
async function finishJob(tenant: TestTenant, jobId: string, status: "succeeded" | "failed" | "dead") {
  await asTenantOltp(tenant.id, (sql) =>
    sql`update jobs set status = ${status}, started_at = coalesce(started_at, created_at + interval '1.5 seconds'),
        completed_at = coalesce(started_at, created_at + interval '1.5 seconds') + interval '250 milliseconds' where id = ${jobId}`,
  );
}

async function storeObject(tenant: TestTenant, rawSize: number, storedSize: number) {
  const hash = crypto.randomUUID().replaceAll("-", "").padEnd(64, "0");
  await asTenantOltp(tenant.id, (sql) =>
    sql`insert into content_objects (tenant_id, hash, kind, storage_key, raw_size, stored_size, algorithm, mime_type, ref_count, expires_at)
        values (${tenant.id}, ${hash}, 'attachment', ${`tenants/${tenant.id}/objects/${hash}`}, ${rawSize}, ${storedSize}, 'gzip', 'text/plain', 1, now() + interval '30 days')`,
  );
  return hash;
}

/** Deletes an object the way content retention does: the catalog row goes and its tombstone is written in the same statement. */
async function dropObject(tenant: TestTenant, hash: string) {
  await asTenantOltp(tenant.id, (sql) =>
    sql`with pruned as (delete from content_objects where tenant_id = ${tenant.id} and hash = ${hash} returning tenant_id, hash, storage_key)
        insert into content_tombstones (tenant_id, hash, storage_key) select tenant_id, hash, storage_key from pruned
        on conflict (tenant_id, hash) do update set tombstoned_at = now(), purged_at = null`,
  );
}

// ---- counts computed directly from each source (independently of the ETL's SQL) ----

type NotificationCounts = { created: number; delivered: number; failed: number; read: number };

async function notificationSource(tenant: TestTenant): Promise<Record<string, NotificationCounts>> {
  const [notes = [], receipts = [], deliveries = []] = await asSystem(
    (sql) => [
      sql`select id, channel, read_at from notifications where tenant_id = ${tenant.id}`,
      sql`select notification_id from notification_receipts where tenant_id = ${tenant.id} and read_at is not null`,
      sql`select channel, outbox_id, outcome from notification_deliveries where tenant_id = ${tenant.id}`,
    ],
    tenant.id,
  );
  const out: Record<string, NotificationCounts> = {};
  const of = (channel: string) => {
    out[channel] ??= { created: 0, delivered: 0, failed: 0, read: 0 };
    return out[channel];
  };
  const channelOf = new Map(notes.map((n) => [String(n.id), String(n.channel)]));
  for (const n of notes) {
    of(String(n.channel)).created += 1;
    if (n.read_at !== null) of(String(n.channel)).read += 1;
  }
  for (const r of receipts) of(channelOf.get(String(r.notification_id))!).read += 1;
  const outboxes = new Map<string, { channel: string; outcomes: Set<string> }>();
  for (const d of deliveries) {
    const entry = outboxes.get(String(d.outbox_id)) ?? { channel: String(d.channel), outcomes: new Set<string>() };
    entry.outcomes.add(String(d.outcome));
    outboxes.set(String(d.outbox_id), entry);
  }
  for (const { channel, outcomes } of outboxes.values()) {
    if (outcomes.has("sent")) of(channel).delivered += 1;
    else if (outcomes.has("failed") || outcomes.has("rejected")) of(channel).failed += 1;
  }
  return out;
}

type JobCounts = { created: number; started: number; succeeded: number; failed: number; dead: number; waitMs: number; runMs: number };

async function jobSource(tenant: TestTenant): Promise<Record<string, JobCounts>> {
  const rows = await asTenantOltp(tenant.id, (sql) =>
    sql`select type, status, created_at, started_at, completed_at from jobs where tenant_id = ${tenant.id} and type like 'OLAP_TIER_TEST_%'`,
  );
  const out: Record<string, JobCounts> = {};
  const ms = (v: unknown) => new Date(String(v)).getTime();
  for (const r of rows) {
    out[String(r.type)] ??= { created: 0, started: 0, succeeded: 0, failed: 0, dead: 0, waitMs: 0, runMs: 0 };
    const c = out[String(r.type)]!;
    c.created += 1;
    if (r.started_at !== null) {
      c.started += 1;
      c.waitMs += ms(r.started_at) - ms(r.created_at);
    }
    if (r.status === "succeeded" || r.status === "failed" || r.status === "dead") c[r.status] += 1;
    if (r.started_at !== null && r.completed_at !== null) c.runMs += ms(r.completed_at) - ms(r.started_at);
  }
  return out;
}

async function contentSource(tenant: TestTenant) {
  const [row] = await asTenantOltp(tenant.id, (sql) =>
    sql`select count(*)::int as objects, coalesce(sum(raw_size), 0)::float8 as raw_bytes, coalesce(sum(stored_size), 0)::float8 as stored_bytes
        from content_objects where tenant_id = ${tenant.id}`,
  );
  return { objects: Number(row!.objects), rawBytes: Number(row!.raw_bytes), storedBytes: Number(row!.stored_bytes) };
}

// ---- what OLAP shows, through the analytics procedures ----

async function olapView(tenant: TestTenant) {
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const [notifications, jobs, storage, billing] = await Promise.all([
    admin.analytics.notifications.query(range),
    admin.analytics.jobs.query(range),
    admin.analytics.storage.query(range),
    admin.analytics.billingUsage.query(range),
  ]);
  const jobCounts = Object.fromEntries(
    jobs.types.filter((t) => t.type.startsWith("OLAP_TIER_TEST_")).map(({ type, created, started, succeeded, failed, dead, waitMs, runMs }) => [
      type,
      { created, started, succeeded, failed, dead, waitMs, runMs },
    ]),
  );
  return { notifications: notifications.channels, jobs: jobCounts, storage, billing };
}

async function expectOlapEqualsSources(tenant: TestTenant) {
  const view = await olapView(tenant);
  expect(view.notifications).toEqual(await notificationSource(tenant));
  expect(view.jobs).toEqual(await jobSource(tenant));
  const content = await contentSource(tenant);
  if (content.objects === 0 && view.storage.latest === null) return view;
  expect(view.storage.latest).toMatchObject({ day: utcDay(0), ...content });
  // The billing storage figure is the content aggregate's sample of the same day.
  const billedToday = view.billing.periods.find((p) => p.period === utcDay(0));
  expect(billedToday?.storageMb).toBe(view.storage.latest!.storageMb);
  return view;
}

/** Every OLAP row of the new tables for these tenants, as the ETL role sees them (updated_at included). */
async function olapRows(tenants: TestTenant[]) {
  const ids = tenants.map((t) => t.id);
  const sql = olapStore().sql;
  const [, ...tables] = await sql.transaction([
    sql`select set_config('app.current_role', 'analytics', true)`,
    sql`select * from notification_analytics where tenant_id = any(${ids}::uuid[]) order by 1, 2, 3`,
    sql`select * from job_analytics where tenant_id = any(${ids}::uuid[]) order by 1, 2, 3`,
    sql`select * from content_analytics where tenant_id = any(${ids}::uuid[]) order by 1, 2`,
  ]);
  return tables;
}

async function watermarks(): Promise<Record<string, string>> {
  const rows = await olapStore().sql`select source, position::text as position from etl_watermarks where source = any(${Object.values(tierSources)}::text[])`;
  return Object.fromEntries(rows.map((r) => [String(r.source), String(r.position)]));
}

/** Moves the watermarks back (as the ETL role), so the next run reads an already-read window again. */
async function rewindWatermarks(to: Record<string, string>) {
  const sql = olapStore().sql;
  await sql.transaction([
    sql`select set_config('app.current_role', 'analytics', true)`,
    ...Object.entries(to).map(([source, position]) => sql`update etl_watermarks set position = ${position}::bigint where source = ${source}`),
  ]);
}

const withoutUpdatedAt = (tables: Record<string, unknown>[][]) => tables.map((rows) => rows.map(({ updated_at: _, ...rest }) => rest));

// ---- the workload ----

const op = fc.oneof(
  fc.record({ op: fc.constant("notify" as const), t: fc.nat({ max: 1 }), channel: fc.constantFrom("in_app", "email", "push"), daysAgo: fc.nat({ max: 3 }), addressed: fc.boolean() }),
  fc.record({ op: fc.constant("read" as const), t: fc.nat({ max: 1 }), pick: fc.nat() }),
  fc.record({ op: fc.constant("unread" as const), t: fc.nat({ max: 1 }), pick: fc.nat() }),
  fc.record({
    op: fc.constant("deliver" as const), t: fc.nat({ max: 1 }), pick: fc.nat(), channel: fc.constantFrom("email", "push", "webhook"),
    outcome: fc.constantFrom("sent", "failed", "rejected", "deferred"), retry: fc.boolean(),
  }),
  fc.record({
    op: fc.constant("job" as const), t: fc.nat({ max: 1 }), type: fc.constantFrom(...jobTypes), daysAgo: fc.nat({ max: 3 }),
    status: fc.constantFrom(...jobStatuses), waitMs: fc.nat({ max: 60_000 }), runMs: fc.nat({ max: 60_000 }),
  }),
  fc.record({ op: fc.constant("finishJob" as const), t: fc.nat({ max: 1 }), pick: fc.nat(), status: fc.constantFrom("succeeded" as const, "failed" as const, "dead" as const) }),
  fc.record({ op: fc.constant("store" as const), t: fc.nat({ max: 1 }), raw: fc.integer({ min: 1, max: 5_000_000 }), ratio: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ op: fc.constant("drop" as const), t: fc.nat({ max: 1 }), pick: fc.nat() }),
  fc.record({ op: fc.constant("aggregate" as const) }),
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

interface World {
  tenants: [TestTenant, TestTenant];
  notifications: Array<Array<{ id: string; addressed: boolean; channel: string }>>;
  outboxes: Array<Map<string, string>>;
  jobs: string[][];
  objects: string[][];
}

async function newWorld(): Promise<World> {
  const tenants = [await createBareTenant(), await createBareTenant()] as [TestTenant, TestTenant];
  return { tenants, notifications: [[], []], outboxes: [new Map(), new Map()], jobs: [[], []], objects: [[], []] };
}

async function apply(world: World, o: Op) {
  if (o.op === "aggregate") {
    expectAllAdvanced(await runTiers());
    return;
  }
  const tenant = world.tenants[o.t]!;
  const pick = <T>(list: T[], n: number) => (list.length === 0 ? undefined : list[n % list.length]);
  switch (o.op) {
    case "notify": {
      const id = await notify(tenant, o.channel, o.daysAgo, o.addressed);
      world.notifications[o.t]!.push({ id, addressed: o.addressed, channel: o.channel });
      return;
    }
    case "read":
    case "unread": {
      const n = pick(world.notifications[o.t]!, o.pick);
      if (!n) return;
      // The real path: the addressee (or, for a tenant-wide notification, a member through a receipt) marks it.
      const member = trpcClient(tenant.member.token, { batch: false });
      if (o.op === "read") await member.notifications.markRead.mutate({ ids: [n.id] });
      else await member.notifications.markUnread.mutate({ ids: [n.id] });
      return;
    }
    case "deliver": {
      const n = pick(world.notifications[o.t]!, o.pick);
      if (!n) return;
      // A retry is another attempt of the same outbox row; otherwise a new outbox row (one per channel and endpoint).
      const key = `${n.id}:${o.channel}`;
      const outbox = (o.retry && world.outboxes[o.t]!.get(key)) || crypto.randomUUID();
      world.outboxes[o.t]!.set(key, outbox);
      await deliver(tenant, n.id, o.channel, o.outcome, outbox);
      return;
    }
    case "job":
      world.jobs[o.t]!.push(await enqueueJob(tenant, o.type, o.daysAgo, o.status, o.waitMs, o.runMs));
      return;
    case "finishJob": {
      const id = pick(world.jobs[o.t]!, o.pick);
      if (id) await finishJob(tenant, id, o.status);
      return;
    }
    case "store":
      world.objects[o.t]!.push(await storeObject(tenant, o.raw, Math.max(1, Math.floor((o.raw * o.ratio) / 100))));
      return;
    case "drop": {
      const list = world.objects[o.t]!;
      if (list.length === 0) return;
      const [hash] = list.splice(o.pick % list.length, 1);
      await dropObject(tenant, hash!);
      return;
    }
  }
}

describe("OLAP aggregates of notifications, jobs and content", () => {
  it("property: after random workloads each aggregate equals its source; a re-run and a re-read window change nothing", { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 4, maxLength: 18 }), async (ops) => {
        expectAllAdvanced(await runTiers());
        const before = await watermarks();
        const world = await newWorld();
        for (const o of ops) await apply(world, o);
        expectAllAdvanced(await runTiers());
        for (const tenant of world.tenants) await expectOlapEqualsSources(tenant);

        // A re-run with nothing new writes nothing: every row identical, updated_at included.
        const rows = await olapRows(world.tenants);
        expectAllAdvanced(await runTiers());
        expect(await olapRows(world.tenants)).toEqual(rows);

        // Re-reading the whole window (the watermarks moved back to before the workload) doubles nothing.
        await rewindWatermarks(before);
        expectAllAdvanced(await runTiers());
        expect(withoutUpdatedAt(await olapRows(world.tenants))).toEqual(withoutUpdatedAt(rows));
        for (const tenant of world.tenants) await expectOlapEqualsSources(tenant);
      }),
      { numRuns: 6 },
    );
  });

  it("late facts inside already-aggregated days add exactly themselves, on their own day", async () => {
    const world = await newWorld();
    const [a] = world.tenants;
    const old = await notify(a, "email", 2, true);
    await deliver(a, old, "email", "failed", crypto.randomUUID());
    const job = await enqueueJob(a, jobTypes[0], 2, "running", 1000, 0);
    await storeObject(a, 1000, 400);
    expectAllAdvanced(await runTiers());
    const first = await olapView(a);
    expect(first.notifications).toEqual({ email: { created: 1, delivered: 0, failed: 1, read: 0 } });

    // Late: a notification created two days ago arrives now, the old one is read and delivered on retry, the
    // old job finishes, and another object is stored.
    await notify(a, "email", 2, false);
    await trpcClient(a.member.token, { batch: false }).notifications.markRead.mutate({ ids: [old] });
    const outbox = crypto.randomUUID();
    await deliver(a, old, "email", "failed", outbox);
    await deliver(a, old, "email", "sent", outbox);
    await finishJob(a, job, "succeeded");
    await storeObject(a, 500, 100);
    expectAllAdvanced(await runTiers());
    const second = await expectOlapEqualsSources(a);
    expect(second.notifications).toEqual({ email: { created: 2, delivered: 1, failed: 1, read: 1 } });
    expect(second.jobs[jobTypes[0]]).toMatchObject({ created: 1, started: 1, succeeded: 1 });
    expect(second.storage.latest).toMatchObject({ objects: 2, rawBytes: 1500, storedBytes: 500 });
    // Everything landed on the day the notification and job were created, not today.
    const admin = trpcClient(a.admin.token, { batch: false });
    const days = (await admin.analytics.notifications.query(range)).periods.map((p) => [p.period, p.channel, p.created, p.read]);
    expect(days).toEqual([[utcDay(-2), "email", 2, 1]]);
    const jobDays = (await admin.analytics.jobs.query({ ...range, type: jobTypes[0] })).periods.map((p) => [p.period, p.succeeded]);
    expect(jobDays).toEqual([[utcDay(-2), 1]]);
  });

  it("a tenant sees only its own aggregates: through the procedures and under row-level security in raw SQL", async () => {
    const world = await newWorld();
    const [a, b] = world.tenants;
    await notify(a, "in_app", 0, true);
    await notify(b, "push", 0, true);
    await notify(b, "push", 1, false);
    await enqueueJob(b, jobTypes[1], 0, "dead", 10, 10);
    await storeObject(b, 10, 5);
    expectAllAdvanced(await runTiers());
    const viewA = await olapView(a);
    expect(viewA.notifications).toEqual({ in_app: { created: 1, delivered: 0, failed: 0, read: 0 } });
    expect(viewA.jobs).toEqual({});
    expect(viewA.storage.latest).toBeNull();
    expect((await olapView(b)).notifications).toEqual({ push: { created: 2, delivered: 0, failed: 0, read: 0 } });
    const sql = olapStore().sql;
    for (const table of ["notification_analytics", "job_analytics", "content_analytics"]) {
      const [, rows] = await sql.transaction([
        sql`select set_config('app.current_tenant_id', ${a.id}, true), set_config('app.current_role', 'admin', true)`,
        sql`select distinct tenant_id::text as tenant from ${sql.unsafe(table)} where tenant_id = any(${[a.id, b.id]}::uuid[])`,
      ]);
      expect((rows as Record<string, unknown>[]).map((r) => r.tenant), table).not.toContain(b.id);
    }
    // Without a tenant context nothing is visible, and a tenant's admin cannot write its own aggregates.
    for (const table of ["notification_analytics", "job_analytics", "content_analytics"]) {
      expect(await sql.query(`select count(*)::int as n from ${table} where tenant_id = any($1::uuid[])`, [[a.id, b.id]]), table).toEqual([{ n: 0 }]);
    }
    await expect(
      sql.transaction([
        sql`select set_config('app.current_tenant_id', ${a.id}, true), set_config('app.current_role', 'admin', true)`,
        sql`insert into content_analytics (tenant_id, day, objects) values (${a.id}, ${utcDay(-5)}, 1000)`,
      ]),
    ).rejects.toMatchObject({ code: "42501" });
    // Members are refused: these dashboards are admin-only, like billing.
    await expect(trpcClient(a.member.token, { batch: false }).analytics.notifications.query(range)).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
  });
});

describe("a source tier that is down fails alone", () => {
  afterEach(() => setDatabaseFault("notifications", "none"));

  it("notifications down: jobs and content still progress, notifications catch up once it is back", async () => {
    const world = await newWorld();
    const [a] = world.tenants;
    await notify(a, "in_app", 0, true);
    await enqueueJob(a, jobTypes[0], 0, "succeeded", 5, 5);
    await storeObject(a, 100, 50);
    const before = await watermarks();
    await setDatabaseFault("notifications", "down");
    const outcomes = await runTiers();
    expect(outcomes.map((o) => [o.source, "error" in o])).toEqual([["notifications", true], ["jobs", false], ["content", false]]);
    const after = await watermarks();
    expect(after[tierSources.notifications]).toBe(before[tierSources.notifications]);
    expect((await olapView(a)).jobs[jobTypes[0]]).toMatchObject({ created: 1, succeeded: 1 });
    await setDatabaseFault("notifications", "none");
    expectAllAdvanced(await runTiers());
    await expectOlapEqualsSources(a);
  });
});

describe("retention of the tier aggregates", () => {
  it("olap.pruneTierAggregates deletes the days older than the retention months and keeps the rest", async () => {
    const tenantId = crypto.randomUUID();
    const now = new Date();
    const old = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - olapConfig.retentionMonths - 1, 15)).toISOString().slice(0, 10);
    const sql = olapStore().sql;
    const asEtl = (statement: ReturnType<typeof sql>) => sql.transaction([sql`select set_config('app.current_role', 'analytics', true)`, statement]);
    for (const day of [old, utcDay(-1)]) {
      await asEtl(sql`insert into notification_analytics (tenant_id, channel, day, created) values (${tenantId}, 'in_app', ${day}, 1)`);
      await asEtl(sql`insert into job_analytics (tenant_id, type, day, created) values (${tenantId}, 'X', ${day}, 1)`);
      await asEtl(sql`insert into content_analytics (tenant_id, day, objects) values (${tenantId}, ${day}, 1)`);
    }
    expect(await pruneTierAggregates(olapStore(), now)).toBeGreaterThanOrEqual(3);
    for (const table of ["notification_analytics", "job_analytics", "content_analytics"]) {
      const [, rows] = await asEtl(sql.query(`select to_char(day, 'YYYY-MM-DD') as day from ${table} where tenant_id = $1`, [tenantId]));
      expect((rows as Record<string, unknown>[]).map((r) => r.day), table).toEqual([utcDay(-1)]);
    }
  });
});
