// API keys: created (secret shown once, SHA-256 stored), listed by prefix, revoked, and resolved to a caller.
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import type { Credential, Principal } from "../../../platform/auth";
import type { Services } from "../../../platform/services";
import { batchUnder, tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { apiKeys } from "../schema";
import { planNames, plans } from "../plans";
import { withAccessChange, type KeyScope } from "./access";
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
  scope: apiKeys.scope,
  owner: apiKeys.owner,
  createdBy: apiKeys.createdBy,
  createdAt: apiKeys.createdAt,
  expiresAt: apiKeys.expiresAt,
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

/**
 * A key names its tenant (`edp_<prefix>_<tenant as 32 hex><secret>`), so the Worker finds its cache entry
 * without a lookup by hash across tenants; the tenant id is not a secret, the 256-bit secret is.
 */
const keyFormat = /^edp_[A-Za-z0-9_-]{8}_([0-9a-f]{32})[A-Za-z0-9_-]{43}$/;
const hexOfTenant = (tenantId: string) => tenantId.replaceAll("-", "");
const tenantOfHex = (hex: string) => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

/** What a presented key claims, with no I/O beyond hashing: its hash, and its tenant when it names one. */
export async function apiKeyCredential(key: string): Promise<Credential> {
  const match = keyFormat.exec(key);
  return { kind: "apiKey", tenantId: match ? tenantOfHex(match[1]!) : null, hash: await sha256Hex(key) };
}

/** `case t.plan when 'free' then 30 … end`: a plan's API-key days in SQL, unknown plans as the smallest. */
const planDaysSql = (which: "default" | "max") =>
  sql`(case t.plan ${sql.join(planNames.map((name) => sql`when ${name} then ${plans[name].apiKeyDays[which]}::int`), sql` `)} else ${plans.free.apiKeyDays[which]}::int end)`;

export interface NewApiKey {
  name: string;
  role: "member" | "admin";
  scope: KeyScope;
  /** user: revoked when its creator stops being a member; tenant: outlives its creator. */
  owner: "user" | "tenant";
  /** Days until it expires; the plan's default when omitted, refused above the plan's maximum. */
  expiresInDays?: number | undefined;
}

/** The full key is returned here and nowhere else; only its hash and its public prefix are stored. */
export async function createApiKey(services: Services, scope: TenantScope, input: NewApiKey): Promise<ApiKey & { key: string }> {
  const prefix = `${apiKeyMarker}${randomToken(6)}`;
  const key = `${prefix}_${hexOfTenant(scope.tenantId)}${randomToken(32)}`;
  const hash = await sha256Hex(key);
  const id = crypto.randomUUID();
  const audit = services.audit.action(
    scope,
    "apiKey.create",
    { type: "api_key", id },
    { name: input.name, prefix, role: input.role, scope: input.scope, owner: input.owner },
    sql`exists (select 1 from ${apiKeys} where ${apiKeys.id} = ${id})`,
  );
  // The plan's expiry limits (plans.ts) as SQL over the tenant's plan: one round trip, as every procedure.
  const [inserted, limits] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.execute(sql`insert into api_keys (id, tenant_id, name, prefix, hash, role, scope, owner, created_by, expires_at)
                   select ${id}, t.id, ${input.name}, ${prefix}, ${hash}, ${input.role}, ${input.scope}, ${input.owner}, ${scope.userId},
                          now() + make_interval(days => coalesce(${input.expiresInDays ?? null}::int, ${planDaysSql("default")}))
                   from tenants t
                   where t.id = ${scope.tenantId} and coalesce(${input.expiresInDays ?? null}::int, 0) <= ${planDaysSql("max")}
                   returning id, tenant_id, name, prefix, role, scope, owner, created_by, created_at, expires_at, last_used_at, revoked_at`),
    db.execute(sql`select ${planDaysSql("max")} as max from tenants t where t.id = ${scope.tenantId}`),
    audit.insert(db),
  ]);
  const row = inserted.rows[0] as Record<string, unknown> | undefined;
  if (!row) {
    const max = Number((limits.rows[0] as { max?: unknown } | undefined)?.max);
    throw new AppError("VALIDATION_FAILED", `API keys on this plan expire within ${max} days`, {
      details: [{ path: "expiresInDays", message: `at most ${max}`, code: "too_big" }],
    });
  }
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  const rows = [
    {
      id: String(row.id),
      tenantId: String(row.tenant_id),
      name: String(row.name),
      prefix: String(row.prefix),
      role: String(row.role),
      scope: String(row.scope),
      owner: String(row.owner),
      createdBy: String(row.created_by),
      createdAt: date(row.created_at)!,
      expiresAt: date(row.expires_at),
      lastUsedAt: date(row.last_used_at),
      revokedAt: date(row.revoked_at),
    } satisfies ApiKey,
  ];
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

/** Revoking twice is harmless: the first revocation time is kept. Refused on the next request (access cache). */
export async function revokeApiKey(services: Services, scope: TenantScope, id: string): Promise<ApiKey> {
  const exists = sql`exists (select 1 from ${apiKeys} where ${apiKeys.tenantId} = ${scope.tenantId} and ${apiKeys.id} = ${id})`;
  const audit = services.audit.action(scope, "apiKey.revoke", { type: "api_key", id }, {}, exists);
  const row = await withAccessChange(services, scope.tenantId, async () => {
    const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db
        .update(apiKeys)
        .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
        .where(and(eq(apiKeys.tenantId, scope.tenantId), eq(apiKeys.id, id)))
        .returning({ ...publicColumns, hash: apiKeys.hash }),
      audit.insert(db),
    ]);
    const revoked = rows[0];
    return { result: revoked, changes: { keys: revoked ? revokedKeys([revoked]) : {} } };
  });
  audit.sendAfterCommit();
  const { hash: _hash, ...key } = found(row, "API key");
  return key;
}

/** Access-cache entries of keys a change revoked or narrowed. */
export function revokedKeys(rows: { id: string; hash: string; role: string; scope: string; expiresAt: Date | null; revokedAt: Date | null }[]) {
  return Object.fromEntries(
    rows.map((r) => [
      r.hash,
      { id: r.id, role: r.role as "member" | "admin", scope: r.scope as KeyScope, expiresAt: r.expiresAt, revoked: r.revokedAt !== null },
    ]),
  );
}

/**
 * Keys issued before keys named their tenant: resolved in one OLTP round trip per request, as they always were.
 * Resolves a presented key to its caller in one round trip. The key's tenant is unknown until the
 * row is found, so the transaction first exposes the one row whose hash matches (the lookup policy),
 * then takes that row's tenant as its context and stamps last_used_at under the normal policy.
 */
export async function resolveLegacyApiKey(store: TierStore, hash: string): Promise<Principal> {
  const [, updated] = await batchUnder(store, sql`select set_config('app.api_key_hash', ${hash}, true)`, [
    store.db.execute(
      sql`select set_config('app.current_tenant_id', coalesce((select tenant_id::text from api_keys where hash = ${hash} and revoked_at is null), ''), true)`,
    ),
    store.db.execute<{ id: string; tenant_id: string; role: string; scope: string; expired: boolean; tenant_status: string }>(
      sql`update api_keys set last_used_at = now() where hash = ${hash} and revoked_at is null
          returning id, tenant_id, role, scope, coalesce(expires_at <= now(), false) as expired,
                    (select status from tenants t where t.id = api_keys.tenant_id) as tenant_status`,
    ),
  ]);
  const row = updated.rows[0];
  if (!row) throw new AppError("AUTH_TOKEN_INVALID", "API key is invalid or revoked");
  if (row.expired) throw new AppError("AUTH_TOKEN_EXPIRED", "API key has expired");
  if (row.tenant_status === "suspended") throw new AppError("TENANT_SUSPENDED", "The tenant is suspended; ask the platform operator");
  if (row.tenant_status !== "active") throw new AppError("TENANT_CLOSED", "The tenant is closed");
  return { userId: String(row.id), tenantId: String(row.tenant_id), role: row.role as Principal["role"], readOnly: row.scope === "read" };
}
