// Current authorization: a caller's membership, its tenant's status and its API key, read through a Redis cache
// that every change invalidates before it commits, so a removal, demotion, suspension or revocation holds on the
// very next request at no Postgres round trip while the cache answers.
import { and, eq, sql } from "drizzle-orm";
import type { Principal } from "../../../platform/auth";
import { batchUnder, tenantBatch } from "../../../platform/db";
import { AppError, tierUnavailable } from "../../../platform/errors";
import { redisBatch, type RedisBatch } from "../../../platform/redis";
import type { Services } from "../../../platform/services";
import { tenants, users } from "../schema";

/**
 * Layout, per tenant:
 *   auth:{tenant}:ctl  epoch    the current epoch (a random token, changed by every change that narrows access)
 *                      pending  changes in flight; while > 0 and `hold` (ms) has not passed, nothing read
 *                      hold     from OLTP may be cached
 *   auth:{tenant}      tenant   { status, pe, e, at }              the tenant's status and its product-events opt-out
 *                      u:{id}   { role | null, e, at }             a membership (null: not a member)
 *                      k:{sha}  { id, role, scope, exp, ok, e, at } an API key by the SHA-256 of its secret
 * An entry answers only while its `e` equals the current epoch, no change is in flight and it is younger
 * than maxAgeMs. A change (beginAccessChange) first sets a new epoch, counts itself pending and extends the
 * hold, then commits in OLTP, then writes the entries it changed under a further epoch and counts itself
 * done. So an entry filled from a read that raced the change carries an older epoch, or was never written
 * because the hold was seen: the next request reads OLTP. If the last step fails, the hold expires after the
 * commit. Every read is an HMGET, sent in one batch with the request's other reads (see `authenticate`).
 */
export const accessCache = {
  /** Longer than any OLTP transaction can take (STORE_TIMEOUT_MS bounds each round trip). */
  holdMs: (storeTimeoutMs: number) => 2 * storeTimeoutMs + 5_000,
  /** A backstop only: revocation never waits for it. */
  maxAgeMs: 10 * 60_000,
  keyTtlSeconds: 24 * 3600,
};

const ctlKey = (tenantId: string) => `auth:${tenantId}:ctl`;
const entriesKey = (tenantId: string) => `auth:${tenantId}`;

type MemberRole = "member" | "admin";
export type KeyScope = "read" | "read_write";

interface Stamp {
  e: string | null;
  at: number;
}
interface TenantEntry extends Stamp {
  status: string | null;
  /**
   * The tenant's product-events opt-out, so a request's telemetry flush knows it without a lookup of its own
   * (product-events.ts). Absent from entries written before it existed: the flush then looks it up.
   */
  pe?: boolean;
}
interface MemberEntry extends Stamp {
  role: MemberRole | null;
}
interface KeyEntry extends Stamp {
  id: string | null;
  role: MemberRole;
  scope: KeyScope;
  exp: number | null;
  ok: boolean;
}

/** A credential verified locally (signature or key format) that names its tenant. */
export type Credential = { kind: "token"; claims: Principal } | { kind: "apiKey"; tenantId: string; hash: string };

const parse = <T>(value: unknown): T | null => {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as T;
    } catch {
      return null;
    }
  }
  return value as T;
};

const fieldOf = (credential: Credential) => (credential.kind === "token" ? `u:${credential.claims.userId}` : `k:${credential.hash}`);

interface Lookup {
  epoch: string | null;
  held: boolean;
  tenant: TenantEntry | null;
  subject: MemberEntry | KeyEntry | null;
}

/**
 * One Redis round trip: two reads queued on `batch` (with whatever the request reads beside them; its owner sends it),
 * or on a batch of their own sent at once.
 */
function lookup(services: Services, tenantId: string, field: string, now: number, batch?: RedisBatch): Promise<Lookup> {
  const reads = batch ?? redisBatch(services.redis());
  const found = Promise.all([
    reads.hmget<Record<string, unknown>>(ctlKey(tenantId), "epoch", "pending", "hold"),
    reads.hmget<Record<string, unknown>>(entriesKey(tenantId), "tenant", field),
  ]);
  if (!batch) reads.send();
  return found.then(
    ([ctl, entries]) => {
      const epoch = ctl?.epoch === undefined || ctl.epoch === null ? null : String(ctl.epoch);
      const held = Number(ctl?.pending ?? 0) > 0 && Number(ctl?.hold ?? 0) > now;
      return { epoch, held, tenant: parse<TenantEntry>(entries?.tenant), subject: parse<MemberEntry | KeyEntry>(entries?.[field]) };
    },
  );
}

const current = (entry: Stamp | null, found: Lookup, now: number): boolean =>
  entry !== null && !found.held && entry.e === found.epoch && now - entry.at < accessCache.maxAgeMs;

interface Facts {
  tenant: TenantEntry;
  subject: MemberEntry | KeyEntry;
}

/** The OLTP read a cache miss costs: one round trip. */
async function readFacts(services: Services, credential: Credential, now: number, epoch: string | null): Promise<Facts> {
  const store = services.store("oltp");
  const stamp = { e: epoch, at: now };
  if (credential.kind === "token") {
    const { tenantId, userId, role } = credential.claims;
    const [tenantRows, memberRows] = await tenantBatch(store, { tenantId, userId, role }, (db) => [
      db.select({ status: tenants.status, pe: tenants.productEventsOptOut }).from(tenants).where(eq(tenants.id, tenantId)).limit(1),
      db.select({ role: users.role }).from(users).where(and(eq(users.tenantId, tenantId), eq(users.id, userId))).limit(1),
    ]);
    const tenant = tenantRows[0];
    return {
      tenant: { status: tenant?.status ?? null, ...(tenant ? { pe: tenant.pe } : {}), ...stamp },
      subject: { role: (memberRows[0]?.role as MemberRole | undefined) ?? null, ...stamp },
    };
  }
  // The key's tenant comes from the key itself, and is checked against the row's: a key copied into another
  // tenant's format finds nothing.
  const [, keyResult, tenantResult] = await batchUnder(store, sql`select set_config('app.api_key_hash', ${credential.hash}, true)`, [
    store.db.execute(
      sql`select set_config('app.current_tenant_id', coalesce((select tenant_id::text from api_keys where hash = ${credential.hash} and tenant_id = ${credential.tenantId}), ''), true)`,
    ),
    store.db.execute(sql`update api_keys set last_used_at = now() where hash = ${credential.hash} and tenant_id = ${credential.tenantId}
                         returning id, role, scope, expires_at, revoked_at`),
    store.db.execute(sql`select status, product_events_opt_out as pe from tenants where id = ${credential.tenantId}`),
  ]);
  const key = keyResult.rows[0] as { id: string; role: MemberRole; scope: KeyScope; expires_at: string | Date | null; revoked_at: unknown } | undefined;
  const tenantRow = tenantResult.rows[0] as { status: string; pe: boolean } | undefined;
  return {
    tenant: { status: tenantRow?.status ?? null, ...(tenantRow ? { pe: tenantRow.pe } : {}), ...stamp },
    subject: key
      ? { id: String(key.id), role: key.role, scope: key.scope, exp: key.expires_at ? new Date(key.expires_at).getTime() : null, ok: key.revoked_at === null, ...stamp }
      : { id: null, role: "member", scope: "read", exp: null, ok: false, ...stamp },
  };
}

const order: Record<string, number> = { member: 0, admin: 1 };

/** What the facts allow this credential; throws the refusal the caller sees. */
function decide(credential: Credential, facts: Facts, now: number): Principal {
  const tenantStatus = facts.tenant.status;
  if (credential.kind === "token") {
    const member = facts.subject as MemberEntry;
    if (tenantStatus === null || member.role === null) throw new AppError("NOT_A_MEMBER", "The token's user is not a member of its tenant");
    if (tenantStatus === "suspended") throw new AppError("TENANT_SUSPENDED", "The tenant is suspended; ask the platform operator");
    if (tenantStatus !== "active") throw new AppError("TENANT_CLOSED", `The tenant is ${tenantStatus}`);
    // Never more than the token claims, never more than the membership holds.
    const claimed = credential.claims.role;
    const role = order[claimed]! <= order[member.role]! ? claimed : member.role;
    return { ...credential.claims, role };
  }
  const key = facts.subject as KeyEntry;
  if (!key.ok || key.id === null) throw new AppError("AUTH_TOKEN_INVALID", "API key is invalid or revoked");
  if (key.exp !== null && key.exp <= now) throw new AppError("AUTH_TOKEN_EXPIRED", "API key has expired");
  if (tenantStatus === "suspended") throw new AppError("TENANT_SUSPENDED", "The tenant is suspended; ask the platform operator");
  if (tenantStatus !== "active") throw new AppError("TENANT_CLOSED", `The tenant is ${tenantStatus}`);
  return { userId: key.id, tenantId: credential.tenantId, role: key.role, readOnly: key.scope === "read", apiKey: true };
}

/**
 * The caller a credential stands for right now. Cache hit: one Redis round trip, no Postgres. Otherwise one
 * OLTP read, then cached (one more Redis round trip) unless a change is in flight. Redis down: that OLTP read on every
 * request. OLTP down too, or down with nothing current cached: an entry of an older epoch still answers, and
 * a JWT with no entry at all keeps its own claims (the notifications tier must keep working while OLTP is
 * down); an API key with no entry is refused with 503 naming OLTP.
 */
export async function authorize(services: Services, credential: Credential, batch?: RedisBatch): Promise<Principal> {
  if (credential.kind === "token" && credential.claims.role === "operator") return credential.claims;
  const tenantId = credential.kind === "token" ? credential.claims.tenantId : credential.tenantId;
  const field = fieldOf(credential);
  const now = services.clock.now().getTime();
  let found: Lookup | null = null;
  try {
    found = await lookup(services, tenantId, field, now, batch);
  } catch (error) {
    services.logger.warn("access cache unavailable, reading OLTP", { error });
  }
  if (found && current(found.tenant, found, now) && current(found.subject, found, now)) {
    if (found.tenant!.pe !== undefined) services.telemetry.optOutKnown(tenantId, found.tenant!.pe);
    return decide(credential, { tenant: found.tenant!, subject: found.subject! }, now);
  }
  let facts: Facts;
  try {
    facts = await readFacts(services, credential, now, found?.epoch ?? null);
  } catch (error) {
    if (!(error instanceof AppError && error.code === "SERVICE_UNAVAILABLE")) throw error;
    // The request carries on without OLTP: its own OLTP statements fail at once rather than wait out a second timeout.
    services.store("oltp").unavailable = error;
    if (found?.tenant && found.subject) {
      services.logger.warn("OLTP unavailable: authorizing from an older cache entry", { tenantId });
      return decide(credential, { tenant: found.tenant, subject: found.subject }, now);
    }
    if (credential.kind === "token") {
      services.logger.warn("OLTP unavailable: authorizing on the token's claims", { tenantId });
      return credential.claims;
    }
    throw error;
  }
  // Awaited (only a miss pays it): the caller's next request then finds the entry, whichever isolate serves it.
  if (found && !found.held) {
    await services
      .redis()
      .pipeline()
      .hset(entriesKey(tenantId), { tenant: JSON.stringify(facts.tenant), [field]: JSON.stringify(facts.subject) })
      .expire(entriesKey(tenantId), accessCache.keyTtlSeconds)
      .exec()
      .catch((error: unknown) => services.logger.warn("access cache fill failed", { error }));
  }
  if (facts.tenant.pe !== undefined) services.telemetry.optOutKnown(tenantId, facts.tenant.pe);
  return decide(credential, facts, now);
}

/** What a change leaves behind, written under the change's final epoch. */
export interface AccessChanges {
  tenantStatus?: string | null;
  /** With tenantStatus: the tenant's product-events opt-out, kept in the same entry. */
  productEventsOptOut?: boolean;
  members?: Record<string, MemberRole | null>;
  keys?: Record<string, { id: string; role: MemberRole; scope: KeyScope; expiresAt: Date | null; revoked: boolean }>;
}

export interface AccessChange {
  /** After the OLTP commit (or its failure: `changes` empty). Never throws: a failure leaves the hold to expire. */
  settle(changes?: AccessChanges): Promise<void>;
}

/**
 * Before a change that narrows access commits: a new epoch and a hold, or SERVICE_UNAVAILABLE naming redis.
 * Refusing the change while Redis cannot acknowledge it is the price of "takes effect on the next request":
 * an entry cached before the outage could otherwise outlive it.
 */
export async function beginAccessChange(services: Services, tenantId: string): Promise<AccessChange> {
  const redis = services.redis();
  // Later changes hold later: the hold covers every change in flight (a failed settle leaves `pending` high,
  // so later changes hold for the whole period: slower, never wrong).
  const until = services.clock.now().getTime() + accessCache.holdMs(services.env.STORE_TIMEOUT_MS);
  try {
    await redis
      .pipeline()
      .hincrby(ctlKey(tenantId), "pending", 1)
      .hset(ctlKey(tenantId), { epoch: crypto.randomUUID(), hold: until })
      .expire(ctlKey(tenantId), accessCache.keyTtlSeconds)
      .exec();
  } catch (error) {
    throw tierUnavailable("redis", error);
  }
  return {
    async settle(changes = {}) {
      const epoch = crypto.randomUUID();
      const at = services.clock.now().getTime();
      const entries: Record<string, string> = {};
      if (changes.tenantStatus !== undefined) {
        const pe = changes.productEventsOptOut === undefined ? {} : { pe: changes.productEventsOptOut };
        entries.tenant = JSON.stringify({ status: changes.tenantStatus, ...pe, e: epoch, at } satisfies TenantEntry);
      }
      for (const [userId, role] of Object.entries(changes.members ?? {})) entries[`u:${userId}`] = JSON.stringify({ role, e: epoch, at } satisfies MemberEntry);
      for (const [hash, key] of Object.entries(changes.keys ?? {})) {
        const entry: KeyEntry = { id: key.id, role: key.role, scope: key.scope, exp: key.expiresAt ? key.expiresAt.getTime() : null, ok: !key.revoked, e: epoch, at };
        entries[`k:${hash}`] = JSON.stringify(entry);
      }
      const pipeline = redis.pipeline();
      if (Object.keys(entries).length > 0) pipeline.hset(entriesKey(tenantId), entries).expire(entriesKey(tenantId), accessCache.keyTtlSeconds);
      pipeline.hset(ctlKey(tenantId), { epoch }).hincrby(ctlKey(tenantId), "pending", -1);
      await pipeline.exec().catch((error: unknown) => services.logger.error("access cache not updated after a change; its hold expires", { tenantId, error }));
    },
  };
}

/** Runs an OLTP change between beginAccessChange and settle, whatever its outcome. */
export async function withAccessChange<T>(
  services: Services,
  tenantId: string,
  change: () => Promise<{ result: T; changes: AccessChanges }>,
): Promise<T> {
  const pending = await beginAccessChange(services, tenantId);
  let outcome: { result: T; changes: AccessChanges };
  try {
    outcome = await change();
  } catch (error) {
    await pending.settle();
    throw error;
  }
  await pending.settle(outcome.changes);
  return outcome.result;
}
