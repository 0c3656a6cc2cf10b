// The database-level check every tier database must pass: the app role owns nothing and every table forces RLS.
import type { NeonQueryFunction } from "@neondatabase/serverless";
import { expect } from "vitest";

/** Asserts it for the database behind `sql` (connected as the app) and returns the public tables it saw. */
export async function expectForcedRlsForApp(sql: NeonQueryFunction<false, false>): Promise<Record<string, unknown>[]> {
  const [me] = await sql`select current_user as name, r.rolsuper as super, r.rolbypassrls as bypass
                         from pg_roles r where r.rolname = current_user`;
  expect(me).toEqual({ name: "app_user", super: false, bypass: false });
  const tables = await sql`select c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) as owner
                           from pg_class c join pg_namespace n on n.oid = c.relnamespace
                           where n.nspname = 'public' and c.relkind in ('r', 'p')`;
  expect(tables.length).toBeGreaterThan(0);
  for (const table of tables) {
    expect(table, String(table.relname)).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
    expect(table.owner, String(table.relname)).not.toBe("app_user");
  }
  return tables;
}
