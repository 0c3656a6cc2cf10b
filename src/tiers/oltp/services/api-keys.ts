// API keys: created (secret shown once, SHA-256 stored), listed by prefix, revoked, and resolved to a caller.
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { Principal } from "../../../core/auth";
import { auditAction } from "../../olap/services/audit";
import { mapDbError, tenantBatch, type TenantScope, type TierStore } from "../../../core/db";
import { AppError } from "../../../core/errors";
import { apiKeys } from "../schema";
import { afterCursor, found, toPage, type Page } from "./common";

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
  store: TierStore,
  scope: TenantScope,
  input: { name: string; role: "member" | "admin" },
): Promise<ApiKey & { key: string }> {
  const prefix = `${apiKeyMarker}${randomToken(6)}`;
  const key = `${prefix}_${randomToken(32)}`;
  const hash = await sha256Hex(key);
  const id = crypto.randomUUID();
  const audit = auditAction(scope, "apiKey.create", { type: "api_key", id }, { name: input.name, prefix, role: input.role });
  const [rows] = await tenantBatch(store, scope, (db) => [
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
export async function revokeApiKey(store: TierStore, scope: TenantScope, id: string): Promise<ApiKey> {
  const exists = sql`exists (select 1 from ${apiKeys} where ${apiKeys.tenantId} = ${scope.tenantId} and ${apiKeys.id} = ${id})`;
  const audit = auditAction(scope, "apiKey.revoke", { type: "api_key", id }, {}, exists);
  const [rows] = await tenantBatch(store, scope, (db) => [
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
  let rows: Record<string, unknown>[] = [];
  try {
    const results = await store.sql.transaction([
      store.sql`select set_config('app.api_key_hash', ${hash}, true)`,
      store.sql`select set_config('app.current_tenant_id', coalesce((select tenant_id::text from api_keys where hash = ${hash} and revoked_at is null), ''), true)`,
      store.sql`update api_keys set last_used_at = now() where hash = ${hash} and revoked_at is null returning id, tenant_id, role`,
    ]);
    rows = results[2] ?? [];
  } catch (error) {
    throw mapDbError(store.tier, error);
  }
  const row = rows[0];
  if (!row) throw new AppError("AUTH_TOKEN_INVALID", "API key is invalid or revoked");
  return { userId: String(row.id), tenantId: String(row.tenant_id), role: row.role as Principal["role"] };
}
