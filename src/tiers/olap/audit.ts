// The audit emitter the OLAP tier implements for every tier: entries built here, carried by the job runtime (RECORD_AUDIT), written to admin_audit_log.
import { sql, type SQL } from "drizzle-orm";
import type { TenantScope } from "../../platform/db";
import { actorOf, type AuditEmitter, type AuditEntry, type PreparedAudit } from "../../platform/emitters";
import { ledgerInsert, type QueuedMessage } from "../../platform/jobs/enqueue";
import type { Services } from "../../platform/services";
import { type AuditPayload, recordAuditDirectJob, recordAuditJob } from "./jobs";

/** The RECORD_AUDIT payload of an entry, stamped with the action's own time and its request's origin. */
export function auditPayload(services: Pick<Services, "clock" | "origin" | "requestId">, entry: AuditEntry): AuditPayload {
  return {
    actorId: entry.actor.userId,
    actorRole: entry.actor.role,
    actorTenantId: entry.actor.tenantId,
    action: entry.action,
    tenantId: entry.tenantId === undefined ? entry.actor.tenantId : entry.tenantId,
    targetType: entry.target.type,
    targetId: entry.target.id ?? null,
    occurredAt: services.clock.now().toISOString(),
    ip: services.origin.ip,
    userAgent: services.origin.userAgent,
    requestId: services.requestId.slice(0, 128),
    details: entry.details ?? {},
  };
}

/**
 * Nothing here touches OLAP: the action never waits on it, and an OLAP outage only delays the entry.
 * Outside a request the messages are sent with the run's own waitUntil; a lost send is relayed.
 */
export function auditEmitter(services: Services): AuditEmitter {
  const prepare = (scope: TenantScope, entries: AuditEntry | AuditEntry[], when?: SQL): PreparedAudit => {
    const list = Array.isArray(entries) ? entries : [entries];
    const prepared = services.jobs.prepare(
      scope.tenantId,
      list.map((entry) => ({ type: recordAuditJob.type, payload: auditPayload(services, entry) })),
      when,
    );
    return { insert: prepared.insert, sendAfterCommit: () => services.jobs.sendAfterResponse(prepared.messages) };
  };
  return {
    prepare,
    action: (scope, action, target, details, when) => prepare(scope, { actor: actorOf(scope), action, target, details }, when),
    redrives(scope, ids) {
      const base = auditPayload(services, { actor: actorOf(scope), action: "job.redrive", target: { type: "job" } });
      const pairs = ids.map((jobId) => ({ audit_id: crypto.randomUUID(), job_id: jobId }));
      // Each message carries the base entry; the consumer runs the ledger row's payload, completed below from the redriven row.
      const enqueuedAt = services.clock.now().toISOString();
      const messages: QueuedMessage[] = pairs.map((p) => ({
        queue: recordAuditJob.queue,
        message: { jobId: p.audit_id, type: recordAuditJob.type, tenantId: scope.tenantId, payload: base, enqueuedAt },
      }));
      return {
        insert: (db) =>
          db.execute(
            ledgerInsert(sql`
              select a.audit_id as id, ${scope.tenantId}::uuid as tenant_id, ${recordAuditJob.type} as type,
                     ${JSON.stringify(base)}::jsonb || jsonb_build_object('tenantId', j.tenant_id, 'targetId', j.id::text, 'details', jsonb_build_object('type', j.type)) as payload,
                     ${recordAuditJob.queue} as priority, ${recordAuditJob.maxAttempts}::int as max_attempts, null::text as idempotency_key
              from jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) as a(audit_id uuid, job_id uuid)
              join jobs j on j.id = a.job_id
              -- updated_at is timestamptz(3): compare with now() rounded the same way, or microseconds never match.
              where j.updated_at = now()::timestamptz(3) and j.status = 'pending' and j.attempts = 0`),
          ),
        sendAfterCommit: () => services.jobs.sendAfterResponse(messages),
      };
    },
    async direct(entry) {
      const tenantId = entry.tenantId === undefined ? entry.actor.tenantId : entry.tenantId;
      await services.jobs.send([services.jobs.direct(recordAuditDirectJob.type, tenantId, auditPayload(services, entry))]);
    },
  };
}
