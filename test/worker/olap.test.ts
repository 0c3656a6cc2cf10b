
import { sql } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { cronTasks, testServices } from "../support/runtime";
import { slotKey } from "../../src/tiers/olap/cron";
import { internalBatch } from "../../src/platform/db";
import { dropExpiredPartitions, ensureAheadPartitions, monthStart, partitionedTables } from "../../src/tiers/olap/services/partitions";
import { aggregate, campaignWithEmails, noonOf, olapStore, performance, report, runPendingJobs, utcDay, type CampaignFixture } from "../support/olap";
import { expectCode, rejection } from "../support/oltp";
import { createTenant, oltpSql } from "../support/factories";
import { waitFor } from "../support/jobs";
import { postgresRoundTrips, resetRoundTrips, setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

const zero = { queued: 0, sent: 0, delivered: 0, opened: 0, replied: 0, bounced: 0, failed: 0, unsubscribed: 0, clicked: 0, complained: 0 };

describe("incremental aggregation of email events into campaign analytics", () => {
  let fixture: CampaignFixture;
  beforeAll(async () => {
    fixture = await campaignWithEmails(3);
    const [a, b, c] = fixture.emailIds as [string, string, string];
    await report(fixture, a, "sent", noonOf(0));
    await report(fixture, b, "sent", noonOf(0));
    await report(fixture, c, "sent", noonOf(-1));
    await report(fixture, a, "delivered", noonOf(0));
    await report(fixture, b, "bounced", noonOf(0));
    await report(fixture, a, "opened", noonOf(0));
  });

  it("counts each campaign's facts by the UTC day they occurred, with rates, and a second run changes nothing", async () => {
    await aggregate();
    const first = await performance(fixture);
    expect(first.days).toEqual([
      { day: utcDay(-1), ...zero, sent: 1 },
      { day: utcDay(0), ...zero, queued: 3, sent: 2, delivered: 1, bounced: 1, opened: 1 },
    ]);
    expect(first.totals).toEqual({ ...zero, queued: 3, sent: 3, delivered: 1, bounced: 1, opened: 1 });
    expect(first.rates).toEqual({ delivery: 0.3333, bounce: 0.3333, open: 1, reply: 0, unsubscribe: 0 });

    const again = await aggregate();
    expect(again.recomputed).toBe(0);
    expect((await performance(fixture)).days).toEqual(first.days);
  });

  it("reading the same facts again (watermark moved back to zero) recomputes the same numbers, never double-counts", async () => {
    await aggregate();
    const before = await performance(fixture);
    await internalBatch(olapStore(), "analytics", null, (db) => [db.execute(sql`update etl_watermarks set position = 0 where source = 'email_events'`)]);
    const rerun = await aggregate();
    expect(rerun.recomputed).toBeGreaterThanOrEqual(2);
    expect((await performance(fixture)).days).toEqual(before.days);
  });

  it("a run after new facts recomputes only the days they touched", async () => {
    await aggregate();
    await report(fixture, fixture.emailIds[2]!, "delivered", noonOf(-1));
    const run = await aggregate();
    expect(run.recomputed).toBe(1);
    expect((await performance(fixture)).days[0]).toEqual({ day: utcDay(-1), ...zero, sent: 1, delivered: 1 });
  });

  it("a fact that arrives late lands in the day it occurred, even in a month with no partition yet", async () => {
    await aggregate();
    await report(fixture, fixture.emailIds[0]!, "replied", noonOf(-100));
    await aggregate();
    const days = (await performance(fixture, utcDay(-120), utcDay(1))).days;
    expect(days[0]).toEqual({ day: utcDay(-100), ...zero, replied: 1 });
    expect(days.find((d) => d.day === utcDay(0))?.replied).toBe(0);
  });

  it("a run with no new facts costs three queries in all: watermark, source read, watermark write", async () => {
    await aggregate();
    await resetRoundTrips();
    const run = await aggregate();
    expect(run).toMatchObject({ recomputed: 0, advanced: true });
    const counts = await postgresRoundTrips();
    expect({ oltp: counts.oltp ?? 0, olap: counts.olap ?? 0 }).toEqual({ oltp: 1, olap: 2 });
  });

  it("the aggregation cron enqueues one AGGREGATE_ANALYTICS job per slot, and its handler runs the ETL", async () => {
    const email = fixture.emailIds[1]!;
    await report(fixture, email, "failed", noonOf(0));
    const task = cronTasks.aggregation.find((t) => t.name === "olap.enqueueAggregation")!;
    // Another file of this run may have triggered the aggregation cron in this same slot already; its job
    // would make ours a no-op, so this slot's ledger rows are cleared first (test setup, as the system role).
    const sql = oltpSql();
    const slots = [slotKey(new Date()), slotKey(new Date(Date.now() + 300_000))];
    await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`delete from jobs where type = 'AGGREGATE_ANALYTICS' and idempotency_key = any(${slots})`,
    ]);
    const since = new Date().toISOString();
    await task.run(testServices());
    await task.run(testServices());
    // Two triggers of one 5-minute slot: one ledger row (the queue may already be running it).
    const [, rows = []] = await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`select count(*)::int as n from jobs where type = 'AGGREGATE_ANALYTICS' and tenant_id is null and created_at >= ${since}::timestamptz`,
    ]);
    expect(rows[0]?.n).toBe(1);
    await runPendingJobs("AGGREGATE_ANALYTICS");
    await waitFor(async () => ((await performance(fixture)).totals.failed === 1 ? true : undefined));
  });
});

describe("analytics procedures", () => {
  it("every answer carries the source time it reflects, which moves forward with each run", async () => {
    const fixture = await campaignWithEmails(1);
    const startedAt = Date.now();
    await aggregate();
    const first = await performance(fixture);
    const reflected = Date.parse(first.reflectsAt ?? "");
    expect(reflected).toBeGreaterThanOrEqual(startedAt - 5_000);
    await aggregate();
    expect(Date.parse((await performance(fixture)).reflectsAt ?? "")).toBeGreaterThan(reflected);
  });

  it("a dashboard read is one OLAP round trip and touches no other database", async () => {
    const fixture = await campaignWithEmails(1);
    // The first read also authorizes the caller from OLTP (a cold access cache); the measured one is warm.
    await performance(fixture);
    await resetRoundTrips();
    await performance(fixture);
    const counts = await postgresRoundTrips();
    expect({ oltp: counts.oltp ?? 0, notifications: counts.notifications ?? 0, olap: counts.olap ?? 0 }).toEqual({ oltp: 0, notifications: 0, olap: 1 });
  });

  it("another tenant asking for a campaign's numbers sees none of them", async () => {
    const fixture = await campaignWithEmails(1);
    await aggregate();
    expect((await performance(fixture)).totals.queued).toBe(1);
    const intruder = await createTenant();
    const seen = await performance(fixture, undefined, undefined, intruder.admin.token);
    expect(seen.days).toEqual([]);
    expect(seen.totals).toEqual(zero);
  });

  it("a range that is reversed or longer than a year is refused with VALIDATION_FAILED", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const campaignId = crypto.randomUUID();
    await expectCode(client.analytics.campaignPerformance.query({ campaignId, from: "2026-02-01", to: "2026-01-01" }), "VALIDATION_FAILED");
    await expectCode(client.analytics.campaignPerformance.query({ campaignId, from: "2024-01-01", to: "2026-01-01" }), "VALIDATION_FAILED");
    await expectCode(client.analytics.campaignPerformance.query({ campaignId, from: "yesterday", to: "2026-01-01" }), "VALIDATION_FAILED");
  });
});

describe("with the OLAP database down", () => {
  afterEach(() => setDatabaseFault("olap", "none"));

  it("analytics answer SERVICE_UNAVAILABLE naming olap while OLTP procedures and facts keep working", async () => {
    const fixture = await campaignWithEmails(1);
    await setDatabaseFault("olap", "down");
    const error = await rejection(performance(fixture));
    expect(error).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503, tier: "olap" });

    const admin = trpcClient(fixture.tenant.admin.token, { batch: false });
    expect((await admin.campaigns.get.query({ id: fixture.campaignId })).id).toBe(fixture.campaignId);
    await report(fixture, fixture.emailIds[0]!, "sent", noonOf(0));
    await expect(aggregate()).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE", tier: "olap" });

    await setDatabaseFault("olap", "none");
    await aggregate();
    expect((await performance(fixture)).totals).toMatchObject({ queued: 1, sent: 1 });
  });
});

describe("OLAP storage", () => {
  it("partitions are created ahead once, and months past retention are dropped while current ones stay", async () => {
    const longAgo = new Date("2001-01-15T00:00:00Z");
    expect(await ensureAheadPartitions(olapStore(), longAgo)).toBe(4 * partitionedTables.length);
    expect(await ensureAheadPartitions(olapStore(), longAgo)).toBe(0);
    expect(await ensureAheadPartitions(olapStore(), new Date())).toBe(0);
    expect(await dropExpiredPartitions(olapStore(), new Date())).toBeGreaterThanOrEqual(4);

    const [partitions] = await internalBatch(olapStore(), "analytics", null, (db) => [
      db.execute<{ name: string }>(sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
                                        where i.inhparent = 'campaign_analytics'::regclass order by 1`),
    ]);
    const names = partitions.rows.map((r) => r.name);
    expect(names).not.toContain("campaign_analytics_p200101");
    expect(names).toContain(`campaign_analytics_p${monthStart(new Date()).slice(0, 7).replace("-", "")}`);
    expect(names).toContain(`campaign_analytics_p${monthStart(new Date(), 3).slice(0, 7).replace("-", "")}`);
  });

  it("every OLAP table forces row-level security, and partitions are reachable only through their parent", async () => {
    const store = olapStore();
    const tables = await store.sql`select c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
                                          has_table_privilege('app_user', c.oid, 'select') as readable
                                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                   where n.nspname = 'public' and c.relkind in ('r', 'p')`;
    expect(tables.filter((t) => !t.relispartition).map((t) => t.relname).sort()).toEqual([
      "admin_audit_log",
      "billing_analytics",
      "campaign_analytics",
      "content_analytics",
      "etl_watermarks",
      "job_analytics",
      "lead_analytics",
      "mailbox_analytics",
      "notification_analytics",
      "sequence_step_analytics",
      "warmup_analytics",
    ]);
    for (const table of tables) {
      if (table.relispartition) expect(table, String(table.relname)).toMatchObject({ readable: false });
      else expect(table, String(table.relname)).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
    }
    const partition = tables.find((t) => t.relispartition)!.relname as string;
    await expect(store.sql.query(`select * from ${partition}`)).rejects.toMatchObject({ code: "42501" });
  });

  it("without a tenant context no aggregate is visible, and a tenant cannot write aggregates", async () => {
    const fixture = await campaignWithEmails(1);
    await aggregate();
    const store = olapStore();
    expect(await store.sql`select * from campaign_analytics`).toEqual([]);
    const attempt = store.sql.transaction([
      store.sql`select set_config('app.current_tenant_id', ${fixture.tenant.id}, true), set_config('app.current_role', 'admin', true)`,
      store.sql`insert into campaign_analytics (tenant_id, campaign_id, day, sent) values (${fixture.tenant.id}, ${fixture.campaignId}, ${utcDay(0)}, 1000)`,
    ]);
    await expect(attempt).rejects.toMatchObject({ code: "42501" });
  });
});
