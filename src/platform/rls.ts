// Row-level security building blocks shared by every tier's drizzle schema.
import { sql, type SQL } from "drizzle-orm";
import { pgPolicy, type AnyPgColumn } from "drizzle-orm/pg-core";

/** The role the Worker connects as: not the owner of any table, so policies always apply. */
export const appRole = "app_user";

/**
 * The tenant set by the transaction's first statement. Wrapped in a scalar subquery so the
 * planner evaluates it once per statement (an InitPlan), not once per row.
 */
export const currentTenant: SQL = sql`(select nullif(current_setting('app.current_tenant_id', true), '')::uuid)`;
export const currentUser: SQL = sql`(select nullif(current_setting('app.current_user_id', true), '')::uuid)`;
export const currentRole: SQL = sql`(select current_setting('app.current_role', true))`;

/** The standard policy: a row is visible and writable only inside its own tenant's context. */
export const tenantIsolation = (table: string, tenantColumn: AnyPgColumn) =>
  pgPolicy(`${table}_tenant_isolation`, {
    as: "permissive",
    for: "all",
    using: sql`${tenantColumn} = ${currentTenant}`,
    withCheck: sql`${tenantColumn} = ${currentTenant}`,
  });
