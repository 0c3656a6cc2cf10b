// Notifications-tier test helpers: provisioned tenants, raw SQL as the app role, recorded deliveries.
import { env } from "cloudflare:workers";
import { parseEnv } from "../../src/platform/env";
import { tierStore } from "../../src/platform/db";
import { recordedDeliveriesPrefix } from "../../src/tiers/notifications/services/provider";
import { provisionTenant } from "./factories";
import { mintToken } from "./tokens";
import { trpcClient } from "./worker";

export interface Caller {
  id: string;
  token: string;
}

export interface NotificationsTenant {
  id: string;
  admin: Caller;
  member: Caller;
  /** A second member, to tell per-user state of tenant-wide notifications apart. */
  other: Caller;
}

/**
 * A tenant provisioned by an operator, with two members its admin added: every request is authorized
 * against its memberships. Tests that take OLTP down after this keep working: a JWT whose membership
 * cannot be read while OLTP is down keeps its own claims (README, "Authorization").
 */
export async function notificationsTenant(): Promise<NotificationsTenant> {
  const { id, admin } = await provisionTenant();
  const adminClient = trpcClient(admin.token, { batch: false });
  const member = async (): Promise<Caller> => {
    const user = await adminClient.users.add.mutate({ email: `member-${crypto.randomUUID().slice(0, 8)}@example.test` });
    return { id: user.id, token: await mintToken({ sub: user.id, tenant_id: id, role: "member" }) };
  };
  return { id, admin, member: await member(), other: await member() };
}

export async function operator(): Promise<Caller> {
  const sub = crypto.randomUUID();
  return { id: sub, token: await mintToken({ sub, tenant_id: crypto.randomUUID(), role: "operator" }) };
}

/** The notifications database as the app role, through the Worker's own store wiring. */
export const notificationsSql = () => tierStore(parseEnv(env), "notifications").sql;

/**
 * Raw statements under the internal 'system' role, for arranging and inspecting rows across
 * users; inserts and receipts need the tenant set, as they do for the service.
 */
export async function asSystem(
  statements: (sql: ReturnType<typeof notificationsSql>) => ReturnType<ReturnType<typeof notificationsSql>>[],
  tenantId = "",
) {
  const sql = notificationsSql();
  const [, ...results] = await sql.transaction([
    sql`select set_config('app.current_tenant_id', ${tenantId}, true), set_config('app.current_role', 'system', true)`,
    ...statements(sql),
  ]);
  return results;
}

/**
 * The unread count written independently of the service: own unread rows plus tenant-wide rows
 * without a read or delete receipt, all live.
 */
export async function unreadInDatabase(tenantId: string, userId: string): Promise<number> {
  const [rows = []] = await asSystem((sql) => [
    sql`select count(*)::int as n from notifications n
        where n.tenant_id = ${tenantId} and n.deleted_at is null and (n.expires_at is null or n.expires_at > now())
          and ((n.user_id = ${userId} and not n.is_read)
            or (n.user_id is null and not exists (select 1 from notification_receipts r
                 where r.notification_id = n.id and r.user_id = ${userId} and (r.read_at is not null or r.deleted_at is not null))))`,
  ], tenantId);
  return Number(rows[0]?.n);
}

/** How many times the provider was called for one delivery (each call is its own object). */
export async function recordedSends(outboxId: string): Promise<number> {
  const listing = await env.CONTENT_BUCKET.list({ prefix: `${recordedDeliveriesPrefix}${outboxId}/` });
  return listing.objects.length;
}

export const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
