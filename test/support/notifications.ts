// Notifications-tier test helpers: provisioned tenants, raw SQL as the app role, recorded deliveries.
import { env } from "cloudflare:workers";
import { parseEnv } from "../../src/platform/env";
import { tierStore } from "../../src/platform/db";
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
 * The badge count written independently of the service: own unread, unarchived rows plus tenant-wide rows without a
 * read, delete or archive receipt, all live; where the tenant's badge counts unseen rows, seen ones are left out.
 */
export async function unreadInDatabase(tenantId: string, userId: string): Promise<number> {
  const [rows = []] = await asSystem((sql) => [
    sql`with mode as (select coalesce((select badge_counts from notification_tenant_settings where tenant_id = ${tenantId}), 'unread') as m)
        select count(*)::int as n from notifications n, mode
        where n.tenant_id = ${tenantId} and n.deleted_at is null and (n.expires_at is null or n.expires_at > now())
          and ((n.user_id = ${userId} and not n.is_read and n.archived_at is null and (mode.m = 'unread' or n.seen_at is null))
            or (n.user_id is null and not exists (select 1 from notification_receipts r
                 where r.notification_id = n.id and r.user_id = ${userId}
                   and (r.read_at is not null or r.deleted_at is not null or r.archived_at is not null
                        or (mode.m = 'unseen' and r.seen_at is not null)))))`,
  ], tenantId);
  return Number(rows[0]?.n);
}

export interface PushMessage {
  id: string;
  type: string;
  title: string;
  body: string;
  createdAt: string;
}

/**
 * A browser's subscription at the local push service (web-push-testing), as `pushManager.subscribe` hands it over,
 * bound to this deployment's VAPID key. `received()` is what the push service decrypted for it, in order;
 * `expire()` makes the service answer 410 from then on.
 */
export async function pushSubscription() {
  const post = async <T>(path: string, body: unknown): Promise<T> => {
    const response = await fetch(`${env.TEST_PUSH_SERVICE_URL}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new Error(`push service ${path} answered ${response.status}: ${text}`);
    return (text.startsWith("{") ? JSON.parse(text) : text) as T;
  };
  const { data } = await post<{ data: { endpoint: string; keys: { p256dh: string; auth: string }; clientHash: string } }>("/subscribe", {
    applicationServerKey: env.VAPID_PUBLIC_KEY,
  });
  return {
    endpoint: data.endpoint,
    keys: data.keys,
    received: async () =>
      (await post<{ data: { messages: string[] } }>("/get-notifications", { clientHash: data.clientHash })).data.messages.map((m) => JSON.parse(m) as PushMessage),
    expire: () => post<string>(`/expire-subscription/${data.clientHash}`, {}),
  };
}

export const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function providersControl(path: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(`${env.TEST_PROVIDERS_CONTROL_URL}${path}`, init);
  if (!response.ok) throw new Error(`provider stand-in ${path} answered ${response.status}`);
  return response.json();
}

export interface StandinEmail {
  idempotencyKey: string | null;
  from: string;
  to: string[];
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; contentType: string; disposition: string; content: string }>;
}

/** Emails the HTTP email provider stand-in accepted for one address. */
export const emailsTo = async (address: string) =>
  (await providersControl(`/_local/email/sent?to=${encodeURIComponent(address)}`)) as StandinEmail[];

/** Every email the HTTP email provider stand-in accepted in this run; SEND_EMAIL's idempotency key is the email's id. */
export const emailsSent = async () => (await providersControl("/_local/email/sent")) as StandinEmail[];

/** Makes the stand-in answer 503 (`fail`), 422 (`reject`), 400 (`refuse`) or accept (`ok`) emails to one address. */
export const setEmailMode = (address: string, mode: "ok" | "fail" | "reject" | "refuse") =>
  providersControl("/_local/email/mode", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ to: address, mode }) });

export interface ReceivedWebhook {
  id: string | null;
  timestamp: string | null;
  signature: string | null;
  verified: boolean;
  error?: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
}

/** A fresh webhook receiver on the stand-in: its URL, and what it verified and received. */
export function webhookReceiver(name = crypto.randomUUID()) {
  const path = `/_local/webhooks/${name}`;
  return {
    url: `${env.TEST_PROVIDERS_CONTROL_URL}/webhooks/${name}`,
    configure: (change: { secret?: string; mode?: "ok" | "fail" }) =>
      providersControl(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(change) }),
    received: async () => (await providersControl(path)) as ReceivedWebhook[],
  };
}
