// Closing a tenant: after its grace period a cron erases the whole tenant from every tier, step by step and
// resumably, and leaves a receipt (counts, no personal data) that outlives it.
import type { Redis } from "@upstash/redis/cloudflare";
import { sql } from "drizzle-orm";
import { internalBatch, type InternalRole, type TierStore, tierStore } from "../platform/db";
import { AppError } from "../platform/errors";
import type { Logger } from "../platform/logger";
import { createRedis } from "../platform/redis";
import { rowsOf } from "../platform/rows";
import type { Services } from "../platform/services";
import { sha256 } from "../tiers/content";

export interface ClosureDeps {
  oltp: TierStore;
  notifications: TierStore;
  olap: TierStore;
  bucket: Pick<R2Bucket, "list" | "delete">;
  redis: Redis;
  logger: Logger;
}

/**
 * A closure is a cron's background work over all of a tenant's rows, not a request: its round trips get a longer
 * bound than STORE_TIMEOUT_MS (which bounds request paths), so a large tenant's deletes are not cut off midway.
 */
const closureTimeoutMs = (env: Services["env"]) => Math.max(env.STORE_TIMEOUT_MS, 120_000);

export const closureDeps = (services: Services): ClosureDeps => ({
  oltp: tierStore(services.env, "oltp", closureTimeoutMs(services.env)),
  notifications: tierStore(services.env, "notifications", closureTimeoutMs(services.env)),
  olap: tierStore(services.env, "olap", closureTimeoutMs(services.env)),
  bucket: services.env.CONTENT_BUCKET,
  redis: createRedis(services.env, services.env.STORE_TIMEOUT_MS),
  logger: services.logger,
});

/** The receipt's handle: an operator finds it by the tenant's id, which the receipt itself no longer holds. */
export const tenantDigest = (tenantId: string) => sha256(new TextEncoder().encode(`tenant:${tenantId.toLowerCase()}`));

/** Tenants whose closure one cron run starts; the rest wait for the next run. */
const closuresPerRun = 5;

/** Every R2 prefix that holds one tenant's objects (content blobs, lead-import CSVs, export files). */
const r2Prefixes = (t: string) => [`tenants/${t}/`, `imports/${t}/`, `exports/${t}/`];

type StepName = "content" | "notifications" | "olap" | "redis" | "oltp";
/** OLTP last: until its step the tenant row (status `closed`) keeps refusing its credentials. */
const stepOrder: StepName[] = ["content", "notifications", "olap", "redis", "oltp"];

interface ClosureRow {
  id: string;
  tenantId: string | null;
  steps: Record<string, unknown>;
  status: string;
  closedAt: string;
}

const toRow = (r: Record<string, unknown>): ClosureRow => ({
  id: String(r.id),
  tenantId: (r.tenant_id as string | null) ?? null,
  steps: (r.steps as Record<string, unknown>) ?? {},
  status: String(r.status),
  closedAt: new Date(String(r.closed_at).replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")).toISOString(),
});

const count = (result: unknown) => Number(rowsOf(result)[0]?.n ?? 0);

/** Tables of one database with a tenant_id column (partitions excluded: they are reached through their parent). */
async function tenantTables(store: TierStore, role: InternalRole, except: string[]): Promise<string[]> {
  const [result] = await internalBatch(store, role, null, (db) => [
    db.execute(sql`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
                   where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition order by 1`),
  ]);
  return rowsOf(result).map((r) => String(r.relname)).filter((name) => !except.includes(name));
}

/**
 * Deletes the tenant's rows from each table, one transaction per table (each is idempotent, so a retry redoes at
 * most the rest). Found from the catalog, so a table another change adds is covered without being listed here.
 * A table still referenced by one not yet emptied (a foreign key without cascade) is retried after the others.
 */
async function deleteTenantRows(store: TierStore, role: InternalRole, tenantId: string, tables: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let pending = tables;
  for (let pass = 0; pending.length > 0; pass++) {
    const blocked: string[] = [];
    for (const table of pending) {
      try {
        const [result] = await internalBatch(store, role, tenantId, (db) => [
          db.execute(sql`with d as (delete from ${sql.identifier(table)} where tenant_id = ${tenantId} returning 1) select count(*)::int as n from d`),
        ]);
        counts[table] = (counts[table] ?? 0) + count(result);
      } catch (error) {
        if (!(error instanceof AppError && error.code === "CONFLICT") || pass >= tables.length) throw error;
        blocked.push(table);
      }
    }
    pending = blocked;
  }
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

async function eraseR2(deps: ClosureDeps, t: string): Promise<Record<string, number>> {
  let objects = 0;
  for (const prefix of r2Prefixes(t)) {
    let cursor: string | undefined;
    do {
      const listed = await deps.bucket.list({ prefix, ...(cursor ? { cursor } : {}), limit: 1000 });
      const keys = listed.objects.map((o) => o.key);
      if (keys.length > 0) await deps.bucket.delete(keys);
      objects += keys.length;
      cursor = listed.truncated ? listed.cursor : undefined;
    } while (cursor);
  }
  return { objects };
}

/** Every Redis key naming the tenant (access cache, unread counts, limiter windows): a SCAN for its id, then DEL. */
async function eraseRedis(deps: ClosureDeps, t: string): Promise<Record<string, number>> {
  let cursor = "0";
  let keys = 0;
  do {
    const [next, batch] = await deps.redis.scan(cursor, { match: `*${t}*`, count: 1000 });
    cursor = String(next);
    if (batch.length > 0) keys += await deps.redis.del(...batch);
  } while (cursor !== "0");
  return { keys };
}

/**
 * OLAP: the tenant's analytics rows are deleted; its compliance audit entries are kept for their retention but
 * pseudonymised: the tenant's id becomes the closure's id (linkable only through the operator-only receipt), the
 * tenant's own people (any actor but platform operators) become 'erased', and the details, target ids, addresses
 * and user agents (which may name people) are dropped. What was done, by which role, and when stays.
 */
async function eraseOlap(deps: ClosureDeps, row: ClosureRow, t: string): Promise<Record<string, number>> {
  const tables = await tenantTables(deps.olap, "analytics", ["admin_audit_log"]);
  const counts = await deleteTenantRows(deps.olap, "analytics", t, tables);
  const [audit] = await internalBatch(deps.olap, "analytics", null, (db) => [
    db.execute(sql`with u as (
                     update admin_audit_log set
                       tenant_id = case when tenant_id = ${t}::uuid then ${row.id}::uuid else tenant_id end,
                       actor_tenant_id = case when actor_tenant_id = ${t}::uuid then ${row.id}::uuid else actor_tenant_id end,
                       actor_id = case when actor_role = 'operator' then actor_id else 'erased' end,
                       target_id = case when target_id = ${t} then ${row.id} else null end,
                       ip = null, user_agent = null, details = '{}'::jsonb
                     where tenant_id = ${t}::uuid or actor_tenant_id = ${t}::uuid
                     returning 1)
                   select count(*)::int as n from u`),
  ]);
  return { ...counts, auditEntriesPseudonymised: count(audit) };
}

async function runStep(deps: ClosureDeps, row: ClosureRow, t: string, name: StepName): Promise<Record<string, number>> {
  switch (name) {
    case "content":
      return eraseR2(deps, t);
    case "notifications":
      // 'system' is admitted by every notifications table's policy within the tenant's context.
      return deleteTenantRows(deps.notifications, "system", t, await tenantTables(deps.notifications, "system", []));
    case "olap":
      return eraseOlap(deps, row, t);
    case "redis":
      return eraseRedis(deps, t);
    case "oltp": {
      // The ledger (jobs and their queued work: a message whose ledger row is gone is dropped by the consumer),
      // the content catalog, erasure requests, then the tenant row, whose delete cascades to what references it.
      const tables = await tenantTables(deps.oltp, "lifecycle", ["tenant_closures"]);
      const counts = await deleteTenantRows(deps.oltp, "lifecycle", t, tables);
      const [tenant] = await internalBatch(deps.oltp, "lifecycle", t, (db) => [
        db.execute(sql`with d as (delete from tenants where id = ${t} returning 1) select count(*)::int as n from d`),
      ]);
      return { ...counts, tenants: count(tenant) };
    }
  }
}

/** Runs (or resumes) one closure to its receipt. Each step is recorded when done; a failure leaves the rest for the next run. */
async function runClosure(deps: ClosureDeps, row: ClosureRow, now: Date): Promise<void> {
  const t = row.tenantId;
  if (!t) return;
  for (const name of stepOrder) {
    if (row.steps[name]) continue;
    const counts = await runStep(deps, row, t, name);
    await internalBatch(deps.oltp, "lifecycle", null, (db) => [
      db.execute(sql`update tenant_closures set steps = steps || jsonb_build_object(${name}::text,
                       jsonb_build_object('doneAt', now(), 'counts', ${JSON.stringify(counts)}::jsonb))
                     where id = ${row.id}`),
    ]);
  }
  const receipt = { closedAt: row.closedAt, completedAt: now.toISOString() };
  await internalBatch(deps.oltp, "lifecycle", null, (db) => [
    db.execute(sql`update tenant_closures set status = 'completed', tenant_id = null, completed_at = ${now.toISOString()}::timestamptz,
                     receipt = ${JSON.stringify(receipt)}::jsonb || jsonb_build_object('tiers', steps)
                   where id = ${row.id} and status = 'running'`),
  ]);
}

/**
 * The closure cron: tenants whose grace has ended (by the services clock) turn `closed` and get their closure row
 * in one transaction per tenant, then every running closure (these, and any a failed run left) is carried on.
 */
export async function closeDueTenants(services: Services, deps: ClosureDeps = closureDeps(services)): Promise<{ started: number; completed: number; failed: number }> {
  const now = services.clock.now();
  const [due] = await internalBatch(deps.oltp, "lifecycle", null, (db) => [
    db.execute(sql`select id from tenants where status = 'closing' and close_after <= ${now.toISOString()}::timestamptz
                   order by close_after limit ${closuresPerRun}`),
  ]);
  let started = 0;
  for (const { id } of rowsOf(due)) {
    const t = String(id);
    const digest = await tenantDigest(t);
    const [claimed] = await internalBatch(deps.oltp, "lifecycle", t, (db) => [
      db.execute(sql`with c as (update tenants set status = 'closed', status_changed_at = now()
                                where id = ${t} and status = 'closing' and close_after <= ${now.toISOString()}::timestamptz returning id)
                     insert into tenant_closures (id, tenant_id, tenant_digest, closed_at)
                     select ${crypto.randomUUID()}, id, ${digest}, ${now.toISOString()}::timestamptz from c
                     on conflict (tenant_digest) do nothing returning id`),
    ]);
    started += rowsOf(claimed).length;
  }
  const [running] = await internalBatch(deps.oltp, "lifecycle", null, (db) => [
    db.execute(sql`select id, tenant_id, steps, status, closed_at from tenant_closures where status = 'running' order by created_at limit ${closuresPerRun}`),
  ]);
  let completed = 0;
  let failed = 0;
  for (const row of rowsOf(running).map(toRow)) {
    try {
      await runClosure(deps, row, now);
      completed++;
    } catch (error) {
      failed++;
      deps.logger.error("tenant closure failed; the next run resumes it", { closureId: row.id, error });
    }
  }
  if (failed > 0) throw new AppError("SERVICE_UNAVAILABLE", `${failed} tenant closure(s) failed; the next run resumes them`);
  return { started, completed, failed };
}

export interface TenantClosureReceipt {
  closureId: string;
  status: string;
  closedAt: string;
  completedAt: string | null;
  /** Per tier: what was removed (rows per table, objects, keys, audit entries pseudonymised), with the time each step finished. */
  steps: Record<string, unknown>;
}

/** The operator's view of a closure, found by the tenant's id (hashed, as the receipt keeps it). */
export async function tenantClosureReceipt(store: TierStore, tenantId: string): Promise<TenantClosureReceipt> {
  const digest = await tenantDigest(tenantId);
  const [result] = await internalBatch(store, "lifecycle", null, (db) => [
    db.execute(sql`select id, status, steps, closed_at, completed_at from tenant_closures where tenant_digest = ${digest}`),
  ]);
  const row = rowsOf(result)[0];
  if (!row) throw new AppError("NOT_FOUND", "No closure of this tenant has started");
  const iso = (v: unknown) => (v ? new Date(String(v).replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00")).toISOString() : null);
  return { closureId: String(row.id), status: String(row.status), closedAt: iso(row.closed_at)!, completedAt: iso(row.completed_at), steps: (row.steps as Record<string, unknown>) ?? {} };
}
