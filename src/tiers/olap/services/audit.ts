// Compliance audit entries of admin actions: built here, carried by the jobs tier (RECORD_AUDIT), written to OLAP's admin_audit_log.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { tryGetContext } from "hono/context-storage";
import type { Env } from "../../../core/env";
import type { Logger } from "../../../core/logger";
import { jobDefinitions, queueBinding, type JobPayload } from "../../jobs/messages";
import { enqueueJobs, prepareJobs, sendJobMessages, type JobRequest, type QueuedMessage } from "../../jobs/services/enqueue";
import type { TenantScope, TierStore } from "../../../core/db";

/** Where the request came from; read from the current request when a caller does not say. */
export interface AuditOrigin {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export interface AuditEntry {
  /** Who acted: a user (or API key) id, its role and its own tenant (an operator's differs from the target's). */
  actor: { userId: string; role: string; tenantId: string | null };
  /** `<area>.<verb>`, e.g. `apiKey.revoke`, `campaign.pause`, `job.redrive`. */
  action: string;
  target: { type: string; id?: string | null | undefined };
  /** The tenant whose object was acted on; the actor's own when omitted. */
  tenantId?: string | null | undefined;
  /** Small and free of secrets: what changed (new role, new status, names). */
  details?: Record<string, unknown> | undefined;
  origin?: Partial<AuditOrigin> | undefined;
}

export type AuditPayload = JobPayload<"RECORD_AUDIT">;

const clip = (value: string | null | undefined, max: number) => (value ? value.slice(0, max) : null);

/** Origin of the request being served (Hono's context storage), or nothing outside a request (cron, queue). */
export function requestOrigin(): AuditOrigin {
  const c = tryGetContext();
  if (!c) return { ip: null, userAgent: null, requestId: null };
  const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
  return {
    ip: clip(c.req.header("cf-connecting-ip") ?? c.req.header("x-real-ip") ?? forwarded, 64),
    userAgent: clip(c.req.header("user-agent"), 512),
    requestId: clip(c.get("requestId") as string | undefined, 128),
  };
}

/** The RECORD_AUDIT payload of an entry, stamped with the action's own time. */
export function auditPayload(entry: AuditEntry, occurredAt = new Date()): AuditPayload {
  const origin = { ...requestOrigin(), ...entry.origin };
  return {
    actorId: entry.actor.userId,
    actorRole: entry.actor.role,
    actorTenantId: entry.actor.tenantId,
    action: entry.action,
    tenantId: entry.tenantId === undefined ? entry.actor.tenantId : entry.tenantId,
    targetType: entry.target.type,
    targetId: entry.target.id ?? null,
    occurredAt: occurredAt.toISOString(),
    ip: origin.ip ?? null,
    userAgent: origin.userAgent ?? null,
    requestId: origin.requestId ?? null,
    details: entry.details ?? {},
  };
}

/** The job request for an entry: pass it to prepareJobs with the action's own batch (outbox), or to enqueueJobs. */
export function auditJob(entry: AuditEntry): JobRequest {
  return { type: "RECORD_AUDIT", payload: auditPayload(entry) };
}

/** The actor of a tenant-scoped caller. */
export const actorOf = (scope: TenantScope): AuditEntry["actor"] => ({ userId: scope.userId, role: scope.role, tenantId: scope.tenantId });

export interface PreparedAudit {
  /** The ledger row, for the action's own tenantBatch: it commits, or not, with the action. */
  insert(db: NeonHttpDatabase): BatchItem<"pg">;
  /** Sends the job after the commit, off the response path; outside a request the relay sends it. */
  sendAfterCommit(): void;
}

/**
 * An audit entry for a service's own batch. `when` (SQL, evaluated after the action's statements in
 * the same transaction) keeps an entry only if the action took effect, e.g. the row it acted on exists.
 * Nothing here touches OLAP: the action never waits on it, and an OLAP outage only delays the entry.
 */
export function prepareAudit(scope: TenantScope, entries: AuditEntry | AuditEntry[], when?: SQL): PreparedAudit {
  const list = Array.isArray(entries) ? entries : [entries];
  const prepared = prepareJobs(scope.tenantId, list.map(auditJob));
  const rows = prepared.messages.map((m) => ({
    id: m.message.jobId,
    tenant_id: m.message.tenantId,
    type: m.message.type,
    payload: m.message.payload,
    priority: jobDefinitions.RECORD_AUDIT.priority,
    max_attempts: jobDefinitions.RECORD_AUDIT.maxAttempts,
  }));
  return {
    insert: (db) =>
      when
        ? db.execute(sql`
            insert into jobs (id, tenant_id, type, payload, priority, max_attempts)
            select id, tenant_id, type, payload, priority, max_attempts
            from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
              as r(id uuid, tenant_id uuid, type text, payload jsonb, priority text, max_attempts int)
            where ${when}`)
        : prepared.insert(db),
    sendAfterCommit: () => sendInRequest(prepared.messages),
  };
}

/** A job message for a committed ledger row is a no-op if the row was not written, so sending is always safe. */
function sendInRequest(messages: QueuedMessage[]): void {
  const c = tryGetContext();
  if (!c || messages.length === 0) return;
  const env = c.get("env") as Env;
  const logger = c.get("logger") as Logger;
  c.executionCtx.waitUntil(sendJobMessages(env, logger, messages));
}

/** An entry on its own (no change to commit with it): one OLTP round trip, the send after it. */
export async function recordAudit(
  deps: { store: TierStore; env: Env; logger: Logger; waitUntil(promise: Promise<unknown>): void },
  scope: TenantScope,
  entry: AuditEntry,
): Promise<void> {
  await enqueueJobs(deps, scope, [auditJob(entry)]);
}

/**
 * For tiers that must keep working while OLTP (and so the ledger) is down, i.e. the notifications
 * tier's system-event resolutions: the entry goes straight to the queue as RECORD_AUDIT_DIRECT. Its
 * durability is the queue's: retries while OLAP is down, then the dead-letter log (README, OLAP tier).
 */
export async function recordAuditDirect(env: Env, logger: Logger, entry: AuditEntry): Promise<void> {
  const definition = jobDefinitions.RECORD_AUDIT_DIRECT;
  const body = {
    jobId: crypto.randomUUID(),
    type: "RECORD_AUDIT_DIRECT" as const,
    tenantId: entry.tenantId === undefined ? entry.actor.tenantId : entry.tenantId,
    payload: definition.payload.parse(auditPayload(entry)),
    enqueuedAt: new Date().toISOString(),
  };
  try {
    await env[queueBinding[definition.priority]].send(body, { contentType: "json" });
  } catch (error) {
    logger.error("audit entry not queued", { action: entry.action, error });
  }
}

/** The common case, a caller's admin action on an object of its own tenant, in one line for a service's batch. */
export const auditAction = (
  scope: TenantScope,
  action: string,
  target: AuditEntry["target"],
  details?: Record<string, unknown>,
  when?: SQL,
): PreparedAudit => prepareAudit(scope, { actor: actorOf(scope), action, target, details }, when);

/**
 * Redrives: which of the requested jobs were redriven, and their tenants, are known only inside the
 * redrive's transaction, so this insert (placed after the redrive's UPDATE in the same batch) takes
 * them from the rows that UPDATE changed: updated_at = now() is this transaction's own time
 * (rounded to the column's milliseconds).
 * Each message carries the base entry; the consumer runs the ledger row's payload.
 */
export function auditJobRedrives(scope: TenantScope, ids: string[]): PreparedAudit {
  const base = auditPayload({ actor: actorOf(scope), action: "job.redrive", target: { type: "job" } });
  const pairs = ids.map((targetId) => ({ audit_id: crypto.randomUUID(), job_id: targetId }));
  const definition = jobDefinitions.RECORD_AUDIT;
  const enqueuedAt = new Date().toISOString();
  const messages: QueuedMessage[] = pairs.map((p) => ({
    priority: definition.priority,
    message: { jobId: p.audit_id, type: "RECORD_AUDIT", tenantId: scope.tenantId, payload: base, enqueuedAt },
  }));
  return {
    insert: (db) =>
      db.execute(sql`
        insert into jobs (id, tenant_id, type, payload, priority, max_attempts)
        select a.audit_id, ${scope.tenantId}::uuid, 'RECORD_AUDIT',
               ${JSON.stringify(base)}::jsonb || jsonb_build_object('tenantId', j.tenant_id, 'targetId', j.id::text, 'details', jsonb_build_object('type', j.type)),
               ${definition.priority}, ${definition.maxAttempts}
        from jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) as a(audit_id uuid, job_id uuid)
        join jobs j on j.id = a.job_id
        -- updated_at is timestamptz(3): compare with now() rounded the same way, or microseconds never match.
        where j.updated_at = now()::timestamptz(3) and j.status = 'pending' and j.attempts = 0`),
    sendAfterCommit: () => sendInRequest(messages),
  };
}

/** A system event resolved or reopened, audited off the response path once the change is done. */
export async function auditedSystemEvent<E extends { id: string; tenantId: string | null }>(
  ctx: { env: Env; logger: Logger; scope: TenantScope; waitUntil(promise: Promise<unknown>): void },
  change: Promise<E>,
  verb: "resolve" | "reopen",
): Promise<E> {
  const event = await change;
  ctx.waitUntil(
    recordAuditDirect(ctx.env, ctx.logger, {
      actor: actorOf(ctx.scope),
      action: `systemEvent.${verb}`,
      tenantId: event.tenantId,
      target: { type: "system_event", id: event.id },
    }),
  );
  return event;
}
