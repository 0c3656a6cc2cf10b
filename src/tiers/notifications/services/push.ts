// Web Push subscriptions of a user (one per browser or device): subscribe, unsubscribe, and the VAPID public key the
// browser needs to subscribe (pushManager.subscribe({ applicationServerKey })).
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { outboundUrlProblem } from "../../../platform/outbound-url";
import { isoTimestamp, rowsOf } from "../../../platform/rows";
import type { NotificationsConfig } from "../config";

export interface PushSubscriptionInput {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface PushSubscriptionRecord {
  id: string;
  endpoint: string;
  createdAt: string;
}

const base64UrlBytes = (value: string): Uint8Array => {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
};

/** The browser's key must be a point on P-256, or every push to it would fail at encryption. */
async function checkBrowserKey(p256dh: string): Promise<void> {
  try {
    await crypto.subtle.importKey("raw", base64UrlBytes(p256dh), { name: "ECDH", namedCurve: "P-256" }, false, []);
  } catch {
    throw new AppError("VALIDATION_FAILED", "keys.p256dh is not a P-256 public key", { details: [{ path: "keys.p256dh", message: "not a P-256 public key" }] });
  }
}

/** Whether this deployment can push: the VAPID key pair and subject are all set. */
export const pushConfigured = (env: Env): boolean => Boolean(env.VAPID_PUBLIC_KEY && env.VAPID_PRIVATE_KEY && env.VAPID_SUBJECT);

export function pushPublicKey(env: Env): { publicKey: string | null } {
  return { publicKey: pushConfigured(env) ? env.VAPID_PUBLIC_KEY! : null };
}

/**
 * Stores (or refreshes the keys of) the caller's subscription for `endpoint`. The endpoint is a URL the Worker will
 * POST to, so it passes the same SSRF guard as webhook URLs. At most `push.maxSubscriptionsPerUser` per user.
 */
export async function subscribePush(
  store: TierStore,
  env: Env,
  config: NotificationsConfig,
  scope: TenantScope,
  input: PushSubscriptionInput,
): Promise<PushSubscriptionRecord> {
  if (!pushConfigured(env)) throw new AppError("SERVICE_UNAVAILABLE", "Web Push is not configured in this deployment", { tier: "notifications" });
  const problem = outboundUrlProblem(env, input.endpoint);
  if (problem) throw new AppError("VALIDATION_FAILED", `The push endpoint ${problem}`, { details: [{ path: "endpoint", message: problem }] });
  await checkBrowserKey(input.keys.p256dh);
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      with existing as (
        select count(*)::int as n from notification_push_subscriptions
        where tenant_id = ${scope.tenantId} and user_id = ${scope.userId} and endpoint <> ${input.endpoint})
      insert into notification_push_subscriptions (tenant_id, user_id, endpoint, p256dh, auth)
      select ${scope.tenantId}, ${scope.userId}, ${input.endpoint}, ${input.keys.p256dh}, ${input.keys.auth}
      where (select n from existing) < ${config.push.maxSubscriptionsPerUser}
      on conflict (tenant_id, user_id, endpoint) do update set p256dh = excluded.p256dh, auth = excluded.auth, last_seen_at = now()
      returning id, endpoint, created_at`),
  ]);
  const row = rowsOf(rows)[0];
  if (!row) {
    throw new AppError("CONFLICT", `At most ${config.push.maxSubscriptionsPerUser} push subscriptions per user; unsubscribe one first`);
  }
  return { id: String(row.id), endpoint: String(row.endpoint), createdAt: isoTimestamp(row.created_at) };
}

/** Removes the caller's subscription for `endpoint` (idempotent: `removed` says whether there was one). */
export async function unsubscribePush(store: TierStore, scope: TenantScope, endpoint: string): Promise<{ removed: boolean }> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      delete from notification_push_subscriptions
      where tenant_id = ${scope.tenantId} and user_id = ${scope.userId} and endpoint = ${endpoint}
      returning id`),
  ]);
  return { removed: rowsOf(rows).length > 0 };
}
