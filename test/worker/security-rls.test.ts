// Database-level isolation: raw SQL as the app role under tenant A's context, no application filter, against every tenant-scoped OLTP table.
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/tiers/oltp/services/api-keys";
import { oltpSql } from "../support/factories";
import { asSystem, notificationsSql, notificationsTenant, type NotificationsTenant } from "../support/notifications";
import { buildEstate, type Estate } from "../support/oltp";

/**
 * Tables whose tenant_id may be NULL: the job ledger also holds platform jobs, which only the
 * internal 'system' role may see. Every other table must name its tenant on every row.
 */
const platformTables = new Set(["jobs"]);

/**
 * Tables no tenant context sees at all, not even its own rows: a closed tenant's receipt (tenant_closures) is the
 * internal 'lifecycle' role's alone, and its tenant_id is dropped once the closure completes. Checked below.
 */
const lifecycleTables = new Set(["tenant_closures"]);

/** The column a table's isolation policy keys on: tenant_id, or the tenant's own id. */
const tenantColumn = (table: string) => (table === "tenants" ? "id" : "tenant_id");

/** Raw statements in one transaction whose first statement sets the tenant context, exactly as the app does. */
async function asTenant(tenantId: string, statements: Array<[string, unknown[]]>) {
  const sql = oltpSql();
  const results = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true)`,
    ...statements.map(([text, params]) => sql.query(text, params)),
  ]);
  return results.slice(1) as Record<string, unknown>[][];
}

describe("row-level security on every tenant-scoped OLTP table", () => {
  let a: Estate;
  let b: Estate;
  let tables: string[];
  beforeAll(async () => {
    [a, b] = await Promise.all([buildEstate(), buildEstate()]);
    // No procedure writes subscriptions (billing is provisioned by the platform), so seed one per tenant here.
    for (const estate of [a, b]) {
      await asTenant(estate.tenant.id, [
        [
          "insert into subscriptions (tenant_id, plan, status, period_start, period_end) values ($1, 'pro', 'active', now(), now() + interval '30 days')",
          [estate.tenant.id],
        ],
      ]);
    }
    for (const estate of [a, b]) {
      await asTenant(estate.tenant.id, [
        ["insert into jobs (tenant_id, type, priority, max_attempts) values ($1, 'NOOP', 'normal', 1)", [estate.tenant.id]],
        ["insert into mailbox_daily_sends (tenant_id, mailbox_id, day, sent) values ($1, $2, current_date, 1)", [estate.tenant.id, estate.mailboxId]],
        ["insert into campaign_daily_sends (tenant_id, campaign_id, day, sent) values ($1, $2, current_date, 1)", [estate.tenant.id, estate.campaignId]],
        ["insert into mailbox_warmup (tenant_id, mailbox_id, advanced_on) values ($1, $2, current_date)", [estate.tenant.id, estate.mailboxId]],
        ["insert into campaign_mailboxes (tenant_id, campaign_id, mailbox_id) values ($1, $2, $3)", [estate.tenant.id, estate.campaignId, estate.mailboxId]],
        [
          "insert into sequencer_daily_plans (tenant_id, campaign_id, mailbox_id, day, planned) values ($1, $2, $3, current_date, 1)",
          [estate.tenant.id, estate.campaignId, estate.mailboxId],
        ],
        ["insert into erasure_requests (id, tenant_id, subject_email, requested_by) values (gen_random_uuid(), $1, $2, $3)", [estate.tenant.id, estate.leadEmail, estate.tenant.admin.id]],
        ["insert into content_tombstones (tenant_id, hash, storage_key) values ($1, $2, $3)", [estate.tenant.id, "0".repeat(64), `tenants/${estate.tenant.id}/objects/${"0".repeat(64)}`]],
      ]);
    }
    // A platform job that no tenant context may see.
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`insert into jobs (tenant_id, type, priority, max_attempts) values (null, 'NOOP', 'low', 1)`,
    ]);
    const rows = await oltpSql()`select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                 where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1`;
    tables = rows.map((r) => String(r.name)).filter((name) => !lifecycleTables.has(name));
  });

  it("a lifecycle-only table shows a tenant context nothing, and takes no row from it", async () => {
    for (const table of lifecycleTables) {
      const [, rows] = await oltpSql().transaction([
        oltpSql()`select set_config('app.current_tenant_id', ${a.tenant.id}, true), set_config('app.current_role', 'admin', true)`,
        oltpSql()`select count(*)::int as n from ${oltpSql().unsafe(`"${table}"`)}`,
      ]);
      expect(rows).toEqual([{ n: 0 }]);
    }
    await expect(
      oltpSql().transaction([
        oltpSql()`select set_config('app.current_tenant_id', ${a.tenant.id}, true), set_config('app.current_role', 'admin', true)`,
        oltpSql()`insert into tenant_closures (id, tenant_id, tenant_digest, closed_at) values (gen_random_uuid(), ${a.tenant.id}, ${crypto.randomUUID()}, now())`,
      ]),
    ).rejects.toThrow();
  });

  it("every public table is tenant-scoped: it has tenant_id (or is the tenants table)", async () => {
    const scoped = await oltpSql()`select table_name, is_nullable from information_schema.columns
                                   where table_schema = 'public' and column_name = 'tenant_id'`;
    const names = new Set([
      ...scoped.filter((r) => r.is_nullable === "NO" || platformTables.has(String(r.table_name))).map((r) => String(r.table_name)),
      "tenants",
    ]);
    expect(tables.filter((t) => !names.has(t))).toEqual([]);
    expect(tables.length).toBeGreaterThanOrEqual(13);
  });

  it("both tenants have rows in every table, so each check below has something to find", async () => {
    for (const estate of [a, b]) {
      const counts = await asTenant(estate.tenant.id, tables.map((t) => [`select count(*)::int as n from ${t}`, []]));
      const empty = tables.filter((_, i) => !counts[i]![0]!.n);
      expect(empty, `tables without rows for tenant ${estate.tenant.id}`).toEqual([]);
    }
  });

  it("under A's context, B's rows are invisible even when asked for by tenant id", async () => {
    for (const table of tables) {
      const column = tenantColumn(table);
      const [foreign, all] = await asTenant(a.tenant.id, [
        [`select count(*)::int as n from ${table} where ${column} = $1`, [b.tenant.id]],
        [`select distinct ${column}::text as tenant from ${table}`, []],
      ]);
      expect(foreign![0]!.n, table).toBe(0);
      expect(all!.map((r) => r.tenant), table).toEqual([a.tenant.id]);
    }
  });

  it("under A's context, B's rows can be neither updated nor deleted", async () => {
    for (const table of tables) {
      const column = tenantColumn(table);
      const [updated, deleted] = await asTenant(a.tenant.id, [
        [`update ${table} set ${column} = ${column} where ${column} = $1 returning 1`, [b.tenant.id]],
        [`delete from ${table} where ${column} = $1 returning 1`, [b.tenant.id]],
      ]);
      expect(updated!.length, table).toBe(0);
      expect(deleted!.length, table).toBe(0);
    }
    const survived = await asTenant(b.tenant.id, tables.map((t) => [`select count(*)::int as n from ${t}`, []]));
    expect(tables.filter((_, i) => !survived[i]![0]!.n)).toEqual([]);
  });

  it("under A's context, no row can be written into B: neither inserted nor moved there", async () => {
    for (const table of tables) {
      const column = tenantColumn(table);
      const copyIntoB = `insert into ${table}
                           select (jsonb_populate_record(null::${table}, to_jsonb(t) || jsonb_build_object('${column}', $2::text))).*
                           from ${table} t where ${column} = $1 limit 1`;
      await expect(asTenant(a.tenant.id, [[copyIntoB, [a.tenant.id, b.tenant.id]]]), table).rejects.toMatchObject({ code: "42501" });
      const moveToB = `update ${table} set ${column} = $2 where ${column} = $1`;
      await expect(asTenant(a.tenant.id, [[moveToB, [a.tenant.id, b.tenant.id]]]), table).rejects.toMatchObject({ code: "42501" });
    }
  });

  it("an API key's hash reveals only that key's row, and only for reading", async () => {
    const sql = oltpSql();
    const hash = await sha256Hex(b.apiKey);
    const [, , rows = [], revoked = []] = await sql.transaction([
      sql`select set_config('app.api_key_hash', ${hash}, true)`,
      sql`select set_config('app.current_tenant_id', ${a.tenant.id}, true)`,
      sql`select id, tenant_id from api_keys where tenant_id = ${b.tenant.id}`,
      sql`update api_keys set revoked_at = now() where tenant_id = ${b.tenant.id} returning 1`,
    ]);
    expect(rows.map((r) => r.id)).toEqual([b.apiKeyId]);
    expect(revoked).toEqual([]);
  });

  it("an invitation's token hash reveals only that invitation, and only for reading", async () => {
    const sql = oltpSql();
    const hash = await sha256Hex(b.invitationToken);
    const [, , rows = [], accepted = []] = await sql.transaction([
      sql`select set_config('app.invitation_hash', ${hash}, true)`,
      sql`select set_config('app.current_tenant_id', ${a.tenant.id}, true)`,
      sql`select id, tenant_id from invitations where tenant_id = ${b.tenant.id}`,
      sql`update invitations set accepted_at = now() where tenant_id = ${b.tenant.id} returning 1`,
    ]);
    expect(rows.map((r) => r.id)).toEqual([b.invitationId]);
    expect(accepted).toEqual([]);
  });

  it("an operator context reads every tenant row and writes none", async () => {
    const sql = oltpSql();
    const [, rows = [], renamed = []] = await sql.transaction([
      sql`select set_config('app.current_role', 'operator', true), set_config('app.current_tenant_id', ${a.tenant.id}, true)`,
      sql`select id from tenants where id in (${a.tenant.id}, ${b.tenant.id}) order by id`,
      sql`update tenants set name = 'taken' where id = ${b.tenant.id} returning 1`,
    ]);
    expect(rows.map((r) => r.id)).toEqual([a.tenant.id, b.tenant.id].sort());
    expect(renamed).toEqual([]);
  });
});

describe("row-level security on the notifications tier's delivery, webhook and preference tables", () => {
  /** Raw statements as the app role under a caller's context (tenant, user, role), as tenantBatch sets it. */
  async function as(ctx: { tenantId: string; userId: string; role: string }, statement: (sql: ReturnType<typeof notificationsSql>) => ReturnType<ReturnType<typeof notificationsSql>>) {
    const sql = notificationsSql();
    const [, rows] = await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${ctx.tenantId}, true), set_config('app.current_user_id', ${ctx.userId}, true),
                 set_config('app.current_role', ${ctx.role}, true)`,
      statement(sql),
    ]);
    return rows as Record<string, unknown>[];
  }

  let a: NotificationsTenant;
  let b: NotificationsTenant;
  beforeAll(async () => {
    [a, b] = await Promise.all([notificationsTenant(), notificationsTenant()]);
    for (const t of [a, b]) {
      await asSystem(
        (sql) => [
          sql`with n as (insert into notifications (tenant_id, user_id, type, title, message, channel) values (${t.id}, ${t.member.id}, 'x', 'x', 'x', 'email') returning id)
              insert into notification_deliveries (tenant_id, notification_id, outbox_id, channel, attempt, outcome, started_at)
              select ${t.id}, id, gen_random_uuid(), 'email', 1, 'sent', now() from n`,
          sql`insert into notification_webhook_endpoints (tenant_id, url, secret) values (${t.id}, 'https://example.test/hook', 'whsec_x')`,
          sql`insert into notification_preferences (tenant_id, user_id, type, channel, enabled)
              values (${t.id}, ${t.member.id}, 'x', 'email', false), (${t.id}, ${t.other.id}, 'x', 'email', false), (${t.id}, null, 'x', 'email', true)`,
        ],
        t.id,
      );
    }
  });
  const admin = (t: NotificationsTenant) => ({ tenantId: t.id, userId: t.admin.id, role: "admin" });
  const member = (t: NotificationsTenant) => ({ tenantId: t.id, userId: t.member.id, role: "member" });

  it("delivery history: the tenant's admins read it, members and other tenants do not, and no caller writes it", async () => {
    expect((await as(admin(a), (sql) => sql`select tenant_id from notification_deliveries`)).map((r) => r.tenant_id)).toEqual([a.id]);
    expect(await as(member(a), (sql) => sql`select id from notification_deliveries`)).toEqual([]);
    expect(await as(admin(a), (sql) => sql`update notification_deliveries set outcome = 'failed' returning id`)).toEqual([]);
    expect(await as(admin(a), (sql) => sql`delete from notification_deliveries returning id`)).toEqual([]);
    await expect(
      as(admin(a), (sql) => sql`insert into notification_deliveries (tenant_id, notification_id, outbox_id, channel, attempt, outcome, started_at)
                                select ${a.id}, notification_id, gen_random_uuid(), 'email', 2, 'sent', now() from notification_deliveries limit 1`),
    ).rejects.toMatchObject({ code: "42501" });
  });

  it("webhook endpoints (and their secrets): only the tenant's staff see or change them", async () => {
    expect((await as(admin(a), (sql) => sql`select tenant_id from notification_webhook_endpoints`)).map((r) => r.tenant_id)).toEqual([a.id]);
    expect(await as(member(a), (sql) => sql`select secret from notification_webhook_endpoints`)).toEqual([]);
    expect(await as(admin(a), (sql) => sql`update notification_webhook_endpoints set url = 'https://evil.test' where tenant_id = ${b.id} returning id`)).toEqual([]);
    await expect(
      as(admin(a), (sql) => sql`insert into notification_webhook_endpoints (tenant_id, url, secret) values (${b.id}, 'https://evil.test', 'whsec_y')`),
    ).rejects.toMatchObject({ code: "42501" });
  });

  it("preferences: a member reads their own and the tenant's defaults, and writes only their own", async () => {
    const seen = await as(member(a), (sql) => sql`select tenant_id, user_id from notification_preferences`);
    expect(seen.map((r) => `${r.tenant_id}:${r.user_id}`).sort()).toEqual([`${a.id}:${a.member.id}`, `${a.id}:null`].sort());
    expect(await as(member(a), (sql) => sql`update notification_preferences set enabled = true where user_id = ${a.other.id} returning id`)).toEqual([]);
    expect(await as(member(a), (sql) => sql`update notification_preferences set enabled = false where user_id is null returning id`)).toEqual([]);
    await expect(
      as(member(a), (sql) => sql`insert into notification_preferences (tenant_id, user_id, type, channel, enabled) values (${a.id}, null, 'y', 'email', false)`),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(
      as(member(a), (sql) => sql`insert into notification_preferences (tenant_id, user_id, type, channel, enabled) values (${b.id}, ${a.member.id}, 'y', 'email', false)`),
    ).rejects.toMatchObject({ code: "42501" });
    expect(await as(admin(a), (sql) => sql`select id from notification_preferences where tenant_id = ${b.id}`)).toEqual([]);
  });
});
