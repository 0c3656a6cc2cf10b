// A tenant's webhook endpoints (admin-managed): create (the secret is returned once), list, enable again, delete.
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { outboundUrlProblem } from "../../../platform/outbound-url";
import { isoOrNull, isoTimestamp, rowsOf } from "../../../platform/rows";
import type { NotificationsConfig } from "../config";

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  /** NULL: every notification type. */
  types: string[] | null;
  enabled: boolean;
  consecutiveFailures: number;
  disabledAt: string | null;
  disabledReason: string | null;
  createdAt: string;
}

const toEndpoint = (r: Record<string, unknown>): WebhookEndpoint => ({
  id: String(r.id),
  url: String(r.url),
  description: r.description === null ? null : String(r.description),
  types: Array.isArray(r.types) ? r.types.map(String) : null,
  enabled: Boolean(r.enabled),
  consecutiveFailures: Number(r.consecutive_failures),
  disabledAt: isoOrNull(r.disabled_at),
  disabledReason: r.disabled_reason === null ? null : String(r.disabled_reason),
  createdAt: isoTimestamp(r.created_at),
});

const columns = sql`id, url, description, types, enabled, consecutive_failures, disabled_at, disabled_reason, created_at`;

/** A Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/** https to a public host in production (the SSRF guard); http and loopback elsewhere, so local receivers work. */
function checkUrl(env: Env, url: string): void {
  const problem = outboundUrlProblem(env, url);
  if (problem) throw new AppError("VALIDATION_FAILED", `The webhook URL ${problem}`, { details: [{ path: "url", message: problem }] });
}

export async function createWebhookEndpoint(
  store: TierStore,
  env: Env,
  config: NotificationsConfig,
  scope: TenantScope,
  input: { url: string; description?: string | undefined; types?: string[] | undefined },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  checkUrl(env, input.url);
  const secret = newWebhookSecret();
  const types = input.types && input.types.length > 0 ? [...new Set(input.types)] : null;
  const typesSql = types ? sql`array[${sql.join(types.map((t) => sql`${t}`), sql`, `)}]::text[]` : sql`null::text[]`;
  // Insert only while the tenant is under its limit: the count and the insert are one statement.
  const [inserted] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      insert into notification_webhook_endpoints (tenant_id, url, description, secret, types, created_by)
      select ${scope.tenantId}, ${input.url}, ${input.description ?? null}, ${secret}, ${typesSql}, ${scope.userId}
      where (select count(*) from notification_webhook_endpoints where tenant_id = ${scope.tenantId}) < ${config.webhooks.maxEndpointsPerTenant}
      returning ${columns}`),
  ]);
  const row = rowsOf(inserted)[0];
  if (!row) {
    throw new AppError("CONFLICT", `A tenant has at most ${config.webhooks.maxEndpointsPerTenant} webhook endpoints`, {
      details: { limit: config.webhooks.maxEndpointsPerTenant },
    });
  }
  return { endpoint: toEndpoint(row), secret };
}

export async function listWebhookEndpoints(store: TierStore, scope: TenantScope): Promise<WebhookEndpoint[]> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`select ${columns} from notification_webhook_endpoints where tenant_id = ${scope.tenantId} order by created_at, id`),
  ]);
  return rowsOf(rows).map(toEndpoint);
}

/** Enables a disabled endpoint again, its failure count reset (deliveries it missed meanwhile are not replayed). */
export async function enableWebhookEndpoint(store: TierStore, scope: TenantScope, id: string): Promise<WebhookEndpoint> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`
      update notification_webhook_endpoints set enabled = true, consecutive_failures = 0, disabled_at = null, disabled_reason = null
      where id = ${id} and tenant_id = ${scope.tenantId} returning ${columns}`),
  ]);
  const row = rowsOf(rows)[0];
  if (!row) throw new AppError("NOT_FOUND", "Webhook endpoint not found");
  return toEndpoint(row);
}

/** Deliveries still owed to it are skipped (recorded as such) when their turn comes. */
export async function deleteWebhookEndpoint(store: TierStore, scope: TenantScope, id: string): Promise<{ deleted: true }> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`delete from notification_webhook_endpoints where id = ${id} and tenant_id = ${scope.tenantId} returning id`),
  ]);
  if (!rowsOf(rows)[0]) throw new AppError("NOT_FOUND", "Webhook endpoint not found");
  return { deleted: true };
}
