import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { schedules } from "../support/runtime";
import { asSystem, notificationsSql, notificationsTenant, sleep, unreadInDatabase } from "../support/notifications";
import { request } from "../support/worker";
import { expectForcedRlsForApp } from "../support/rls";

const unreadOverHttp = async (token: string) =>
  ((await (await request("/v1/notifications/unread-count", { headers: { authorization: `Bearer ${token}` } })).json()) as { unread: number })
    .unread;

describe("notifications retention (pruning cron)", () => {
  it("hard-deletes expired and old notifications, old system events and old sent deliveries; the cache stays right", async () => {
    const t = await notificationsTenant();
    const [[old] = [], [expired] = [], [recent] = [], [oldWide] = []] = await asSystem(
      (sql) => [
        sql`insert into notifications (tenant_id, user_id, type, title, message, created_at)
            values (${t.id}, ${t.member.id}, 'x', 'old', 'm', now() - interval '91 days') returning id`,
        sql`insert into notifications (tenant_id, user_id, type, title, message, expires_at)
            values (${t.id}, ${t.member.id}, 'x', 'expired', 'm', now() - interval '1 minute') returning id`,
        sql`insert into notifications (tenant_id, user_id, type, title, message, created_at, channel)
            values (${t.id}, ${t.member.id}, 'x', 'recent', 'm', now() - interval '89 days', 'email') returning id`,
        sql`insert into notifications (tenant_id, user_id, type, title, message, created_at)
            values (${t.id}, null, 'x', 'old wide', 'm', now() - interval '100 days') returning id`,
      ],
      t.id,
    );
    await asSystem(
      (sql) => [
        sql`insert into notification_receipts (notification_id, tenant_id, user_id, read_at) values (${oldWide!.id}, ${t.id}, ${t.other.id}, now())`,
        sql`insert into notification_outbox (notification_id, tenant_id, channel, status, sent_at)
            values (${recent!.id}, ${t.id}, 'email', 'sent', now() - interval '8 days'),
                   (${recent!.id}, ${t.id}, 'email', 'sent', now() - interval '1 day')`,
        sql`insert into admin_system_events (event_type, severity, tenant_id, description, created_at)
            values ('old', 'low', ${t.id}, 'old', now() - interval '181 days'),
                   ('kept', 'low', ${t.id}, 'kept', now() - interval '179 days')`,
      ],
      t.id,
    );
    // The cached counts include the old unread rows that retention is about to remove.
    expect(await unreadOverHttp(t.member.token)).toBe(3);
    expect(await unreadOverHttp(t.other.token)).toBe(0);
    await sleep(150);

    await worker.scheduled(createScheduledController({ cron: schedules.pruning, scheduledTime: new Date() }), env, createExecutionContext());

    const [left = [], receipts = [], outbox = [], events = []] = await asSystem(
      (sql) => [
        sql`select id from notifications where tenant_id = ${t.id}`,
        sql`select notification_id from notification_receipts where tenant_id = ${t.id}`,
        sql`select sent_at from notification_outbox where tenant_id = ${t.id}`,
        sql`select event_type from admin_system_events where tenant_id = ${t.id}`,
      ],
      t.id,
    );
    expect(left.map((r) => r.id)).toEqual([recent!.id]);
    expect(receipts).toEqual([]);
    expect(outbox).toHaveLength(1);
    expect(events.map((e) => e.event_type)).toEqual(["kept"]);
    expect([old, expired].every(Boolean)).toBe(true);
    expect(await unreadOverHttp(t.member.token)).toBe(await unreadInDatabase(t.id, t.member.id));
    expect(await unreadOverHttp(t.member.token)).toBe(1);
  });
});

describe("row-level security in the notifications database", () => {
  it("the app connects as a role that owns nothing, and every table forces RLS", async () => {
    const tables = await expectForcedRlsForApp(notificationsSql());
    expect(tables.map((t) => t.relname).sort()).toEqual([
      "admin_system_events",
      "notification_deliveries",
      "notification_digest_items",
      "notification_digest_settings",
      "notification_outbox",
      "notification_preferences",
      "notification_push_subscriptions",
      "notification_receipts",
      "notification_tenant_settings",
      "notification_webhook_endpoints",
      "notifications",
    ]);
  });

  it("without any context, nothing is visible and nothing can be written", async () => {
    const t = await notificationsTenant();
    await asSystem((sql) => [sql`insert into notifications (tenant_id, user_id, type, title, message) values (${t.id}, ${t.member.id}, 'x', 'x', 'x')`], t.id);
    const sql = notificationsSql();
    expect(await sql`select id from notifications where tenant_id = ${t.id}`).toEqual([]);
    expect(await sql`delete from notifications where tenant_id = ${t.id} returning id`).toEqual([]);
    await expect(sql`insert into notifications (tenant_id, type, title, message) values (${t.id}, 'x', 'x', 'x')`).rejects.toMatchObject({
      code: "42501",
    });
  });

  it("a tenant admin's context cannot read or resolve another tenant's system events", async () => {
    const [a, b] = await Promise.all([notificationsTenant(), notificationsTenant()]);
    await asSystem((sql) => [sql`insert into admin_system_events (event_type, severity, tenant_id, description) values ('x', 'low', ${b.id}, 'x')`]);
    const sql = notificationsSql();
    const [, seen = [], updated = []] = await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${a.id}, true), set_config('app.current_user_id', ${a.admin.id}, true),
                 set_config('app.current_role', 'admin', true)`,
      sql`select id from admin_system_events where tenant_id = ${b.id}`,
      sql`update admin_system_events set is_resolved = true where tenant_id = ${b.id} returning id`,
    ]);
    expect(seen).toEqual([]);
    expect(updated).toEqual([]);
  });
});
