import { beforeAll, describe, expect, it } from "vitest";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { expectForcedRlsForApp } from "../support/rls";

/** Raw SQL as the app role under one tenant's context, with no application-side filter at all. */
function asTenant(tenantId: string) {
  const sql = oltpSql();
  const context = sql`select set_config('app.current_tenant_id', ${tenantId}, true)`;
  return { sql, context };
}

describe("row-level security in the OLTP database", () => {
  let a: TestTenant;
  let b: TestTenant;
  beforeAll(async () => {
    [a, b] = await Promise.all([createTenant("Tenant A"), createTenant("Tenant B")]);
  });

  it("a query with no WHERE under tenant A's context sees only A's rows", async () => {
    const { sql, context } = asTenant(a.id);
    const [, users = [], tenants = []] = await sql.transaction([context, sql`select tenant_id from users`, sql`select id from tenants`]);
    expect(users.length).toBe(2);
    expect(new Set(users.map((u) => u.tenant_id))).toEqual(new Set([a.id]));
    expect(tenants.map((t) => t.id)).toEqual([a.id]);
  });

  it("without any tenant context nothing is visible", async () => {
    const sql = oltpSql();
    expect(await sql`select * from users`).toEqual([]);
    expect(await sql`select * from tenants`).toEqual([]);
  });

  it("tenant A cannot update or delete tenant B's rows, even unfiltered", async () => {
    const { sql, context } = asTenant(a.id);
    const [, updated, deleted] = await sql.transaction([
      context,
      sql`update users set name = 'hijacked' where tenant_id = ${b.id} returning id`,
      sql`delete from tenants where id = ${b.id} returning id`,
    ]);
    expect(updated).toEqual([]);
    expect(deleted).toEqual([]);
    const asB = asTenant(b.id);
    const [, bUsers = []] = await asB.sql.transaction([asB.context, asB.sql`select name from users`]);
    expect(bUsers.map((u) => u.name)).not.toContain("hijacked");
    expect(bUsers.length).toBe(2);
  });

  it("tenant A cannot insert a row into tenant B", async () => {
    const { sql, context } = asTenant(a.id);
    const attempt = sql.transaction([
      context,
      sql`insert into users (tenant_id, email) values (${b.id}, 'intruder@example.test')`,
    ]);
    await expect(attempt).rejects.toMatchObject({ code: "42501" });
  });

  it("the app connects as a role that owns nothing and is not a superuser, and every table forces RLS", async () => {
    await expectForcedRlsForApp(oltpSql());
  });
});
