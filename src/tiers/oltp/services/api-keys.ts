// API keys: created (secret shown once, SHA-256 stored), listed by prefix, revoked, and resolved to a caller.
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { Principal } from "../../../platform/auth";
import type { Services } from "../../../platform/services";
import { batchUnder, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { apiKeys } from "../schema";
import { afterCursor, found, toPage, type Page } from "../../../platform/paging";

/** Every key starts with this, so a bearer credential is told apart from a JWT without parsing it. */
export const apiKeyMarker = "edp_";

export type ApiKey = Omit<typeof apiKeys.$inferSelect, "hash">;
const publicColumns = {
  id: apiKeys.id,
  tenantId: apiKeys.tenantId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  role: apiKeys.role,
  createdBy: apiKeys.createdBy,
  createdAt: apiKeys.createdAt,
  lastUsedAt: apiKeys.lastUsedAt,
  revokedAt: apiKeys.revokedAt,
};

export async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function randomToken(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** The full key is returned here and nowhere else; only its hash and its public prefix are stored. */
export async function createApiKey(
  services: Services,
  scope: TenantScope,
  input: { name: string; role: "member" | "admin" },
): Promise<ApiKey & { key: string }> {
  const prefix = `${apiKeyMarker}${randomToken(6)}`;
  const key = `${prefix}_${randomToken(32)}`;
  const hash = await sha256Hex(key);
  const id = crypto.randomUUID();
  const audit = services.audit.action(scope, "apiKey.create", { type: "api_key", id }, { name: input.name, prefix, role: input.role });
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .insert(apiKeys)
      .values({ id, tenantId: scope.tenantId, name: input.name, prefix, hash, role: input.role, createdBy: scope.userId })
      .returning(publicColumns),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return { ...found(rows[0], "API key"), key };
}

export async function listApiKeys(
  store: TierStore,
  scope: TenantScope,
  filter: { includeRevoked: boolean; cursor?: string; limit: number },
): Promise<Page<ApiKey>> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select(publicColumns)
      .from(apiKeys)
      .where(
        and(
          eq(apiKeys.tenantId, scope.tenantId),
          filter.includeRevoked ? undefined : isNull(apiKeys.revokedAt),
          afterCursor(apiKeys.createdAt, apiKeys.id, filter.cursor),
        ),
      )
      .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
      .limit(filter.limit + 1),
  ]);
  return toPage(rows, filter.limit);
}

/** Revoking twice is harmless: the first revocation time is kept. */
export async function revokeApiKey(services: Services, scope: TenantScope, id: string): Promise<ApiKey> {
  const exists = sql`exists (select 1 from ${apiKeys} where ${apiKeys.tenantId} = ${scope.tenantId} and ${apiKeys.id} = ${id})`;
  const audit = services.audit.action(scope, "apiKey.revoke", { type: "api_key", id }, {}, exists);
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
      .where(and(eq(apiKeys.tenantId, scope.tenantId), eq(apiKeys.id, id)))
      .returning(publicColumns),
    audit.insert(db),
  ]);
  audit.sendAfterCommit();
  return found(rows[0], "API key");
}

/**
 * Resolves a presented key to its caller in one round trip. The key's tenant is unknown until the
 * row is found, so the transaction first exposes the one row whose hash matches (the lookup policy),
 * then takes that row's tenant as its context and stamps last_used_at under the normal policy.
 */
export async function resolveApiKey(store: TierStore, key: string): Promise<Principal> {
  const hash = await sha256Hex(key);
  const [, updated] = await batchUnder(store, sql`select set_config('app.api_key_hash', ${hash}, true)`, [
    store.db.execute(
      sql`select set_config('app.current_tenant_id', coalesce((select tenant_id::text from api_keys where hash = ${hash} and revoked_at is null), ''), true)`,
    ),
    store.db.execute<{ id: string; tenant_id: string; role: string }>(
      sql`update api_keys set last_used_at = now() where hash = ${hash} and revoked_at is null returning id, tenant_id, role`,
    ),
  ]);
  const row = updated.rows[0];
  if (!row) throw new AppError("AUTH_TOKEN_INVALID", "API key is invalid or revoked");
  return { userId: String(row.id), tenantId: String(row.tenant_id), role: row.role as Principal["role"] };
}
