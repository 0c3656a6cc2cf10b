// Test factories: fresh tenants and users under new ids, written through the production Neon driver as the app role.
import { env } from "cloudflare:workers";
import { parseEnv } from "../../src/platform/env";
import { tierStore } from "../../src/platform/db";
import { mintToken } from "./tokens";
import { trpcClient } from "./worker";

export interface TestUser {
  id: string;
  email: string;
  role: "member" | "admin";
  token: string;
}

export interface TestTenant {
  id: string;
  name: string;
  admin: TestUser;
  member: TestUser;
}

/** The app's own store wiring (local endpoint, timeouts), so factories exercise the production path. */
export const oltpSql = () => tierStore(parseEnv(env), "oltp").sql;

/**
 * A tenant as a customer gets one, with an admin and a member: an operator provisions it through
 * `tenants.create` (plan `pro`: 50 seats for the tests that add and invite many users), and its admin adds the
 * member with `users.add`. Both are audited and provisioning records a subscription, so a suite that counts a
 * tenant's audit entries, ledger jobs or round trips from zero uses `createBareTenant()` instead.
 */
export async function createTenant(
  name = `Tenant ${crypto.randomUUID().slice(0, 8)}`,
  options: { plan?: "free" | "starter" | "pro" } = {},
): Promise<TestTenant> {
  const provisioned = await provisionTenant({ name, plan: options.plan ?? "pro" });
  const email = `member-${provisioned.id.slice(0, 8)}@example.test`;
  const added = await trpcClient(provisioned.admin.token, { batch: false }).users.add.mutate({ email, role: "member" });
  return {
    id: provisioned.id,
    name,
    admin: provisioned.admin,
    member: { id: added.id, email, role: "member", token: await mintToken({ sub: added.id, tenant_id: provisioned.id, role: "member" }) },
  };
}

/**
 * A tenant with no history, arranged in SQL: what no procedure can set up, since provisioning records its own
 * audit entries, ledger rows and subscription. For the suites that count a tenant's audit entries, jobs and
 * round trips from zero; everything else uses `createTenant()`.
 */
export async function createBareTenant(name = `Tenant ${crypto.randomUUID().slice(0, 8)}`): Promise<TestTenant> {
  const sql = oltpSql();
  const id = crypto.randomUUID();
  const admin = { id: crypto.randomUUID(), email: `admin-${id.slice(0, 8)}@example.test` };
  const member = { id: crypto.randomUUID(), email: `member-${id.slice(0, 8)}@example.test` };
  await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${id}, true), set_config('app.current_user_id', ${admin.id}, true)`,
    // Seats enough for the tests that add and invite many users; the other limits keep their defaults.
    sql`insert into tenants (id, name, max_seats) values (${id}, ${name}, 50)`,
    sql`insert into users (id, tenant_id, email, role) values (${admin.id}, ${id}, ${admin.email}, 'admin'),
                                                           (${member.id}, ${id}, ${member.email}, 'member')`,
  ]);
  return {
    id,
    name,
    admin: { ...admin, role: "admin", token: await mintToken({ sub: admin.id, tenant_id: id, role: "admin" }) },
    member: { ...member, role: "member", token: await mintToken({ sub: member.id, tenant_id: id, role: "member" }) },
  };
}

export interface ProvisionedTenant {
  id: string;
  name: string;
  admin: TestUser;
}

/** A tenant as a customer gets one: an operator provisions it through tenants.create; its first admin signs in. */
export async function provisionTenant(
  options: { name?: string; plan?: "free" | "starter" | "pro" } = {},
): Promise<ProvisionedTenant> {
  const operator = trpcClient(await mintToken({ sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "operator" }), { batch: false });
  const name = options.name ?? `Tenant ${crypto.randomUUID().slice(0, 8)}`;
  const email = `admin-${crypto.randomUUID().slice(0, 8)}@example.test`;
  const { tenant, admin } = await operator.tenants.create.mutate({ name, plan: options.plan ?? "pro", admin: { email } });
  return {
    id: tenant.id,
    name,
    admin: { id: admin.id, email, role: "admin", token: await mintToken({ sub: admin.id, tenant_id: tenant.id, role: "admin" }) },
  };
}
