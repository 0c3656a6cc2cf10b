// Producers: validate job requests, write ledger rows inside the caller's own transaction (outbox), send after commit.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { z } from "zod";
import { tenantBatch, type TenantScope, type TierStore } from "../../../core/db";
import type { Env } from "../../../core/env";
import { AppError } from "../../../core/errors";
import type { Logger } from "../../../core/logger";
import { jobDefinitions, jobTypes, queueBinding, type JobMessage, type JobPriority, type JobType } from "../messages";
import { rowsOfJobs, type Job } from "./rows";

export interface JobRequest {
  type: JobType;
  payload: unknown;
  /** The same key for the same type in the same tenant enqueues the job once. */
  idempotencyKey?: string | undefined;
}

export interface QueuedMessage {
  priority: JobPriority;
  message: JobMessage;
  delaySeconds?: number;
}

export interface PreparedJobs {
  ids: string[];
  /** Ledger inserts for the caller's tenantBatch: they commit, or not, with the change that caused them. */
  insert(db: NeonHttpDatabase): BatchItem<"pg">;
  /** The messages to send once the transaction has committed. */
  messages: QueuedMessage[];
}

const idempotencyKey = z.string().min(1).max(200).optional();

/**
 * Validates every request against its type's definition and prepares the ledger rows. A bad
 * payload is refused here, before anything is written, naming each offending field.
 */
export function prepareJobs(tenantId: string | null, requests: JobRequest[]): PreparedJobs {
  const problems: Array<{ path: string; message: string }> = [];
  const rows = requests.map((request, index) => {
    const definition = jobDefinitions[request.type];
    if (!definition || !jobTypes.includes(request.type)) {
      problems.push({ path: `${index}.type`, message: `unknown job type '${String(request.type)}'` });
      return null;
    }
    if (!definition.ledger) {
      problems.push({ path: `${index}.type`, message: `${request.type} jobs are enqueued by their own tier's outbox` });
      return null;
    }
    const payload = definition.payload.safeParse(request.payload);
    const key = idempotencyKey.safeParse(request.idempotencyKey);
    if (!payload.success) {
      for (const issue of payload.error.issues) {
        problems.push({ path: [index, "payload", ...issue.path].join("."), message: issue.message });
      }
    }
    if (!key.success) problems.push({ path: `${index}.idempotencyKey`, message: "must be 1 to 200 characters" });
    if (!payload.success || !key.success) return null;
    return {
      id: crypto.randomUUID(),
      tenant_id: tenantId,
      type: request.type,
      payload: payload.data as Record<string, unknown>,
      priority: definition.priority,
      max_attempts: definition.maxAttempts,
      idempotency_key: key.data ?? null,
    };
  });
  if (problems.length > 0) {
    throw new AppError("VALIDATION_FAILED", `Invalid job: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`, {
      tier: "jobs",
      details: problems,
    });
  }
  const valid = rows.filter((row) => row !== null);
  const enqueuedAt = new Date().toISOString();
  return {
    ids: valid.map((row) => row.id),
    // A repeated idempotency key inserts nothing; its message then finds no row to claim and is a no-op.
    insert: (db) =>
      db.execute(sql`
        insert into jobs (id, tenant_id, type, payload, priority, max_attempts, idempotency_key)
        select id, tenant_id, type, payload, priority, max_attempts, idempotency_key
        from jsonb_to_recordset(${JSON.stringify(valid)}::jsonb)
          as r(id uuid, tenant_id uuid, type text, payload jsonb, priority text, max_attempts int, idempotency_key text)
        on conflict do nothing`),
    messages: valid.map((row) => ({
      priority: row.priority,
      message: { jobId: row.id, type: row.type, tenantId: row.tenant_id, payload: row.payload, enqueuedAt },
    })),
  };
}

/**
 * Sends committed jobs to their priority's queue. A lost send loses nothing: the row stays
 * pending and the relay sends it again after the grace period, so failures are only logged.
 */
export async function sendJobMessages(env: Env, logger: Logger, messages: QueuedMessage[]): Promise<void> {
  const priorities = [...new Set(messages.map((m) => m.priority))];
  await Promise.all(
    priorities.map(async (priority) => {
      const group = messages.filter((m) => m.priority === priority);
      // sendBatch takes at most 100 messages per call.
      for (let start = 0; start < group.length; start += 100) {
        const chunk = group.slice(start, start + 100);
        try {
          await env[queueBinding[priority]].sendBatch(
            chunk.map((m) => ({ body: m.message, contentType: "json" as const, ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}) })),
          );
        } catch (error) {
          logger.warn("job messages not sent; the relay will send them again", { priority, count: chunk.length, error });
        }
      }
    }),
  );
}

/** The message that runs an existing ledger row (relay, redrive). Rows are only written from the definitions, so the type is known. */
export const messageForJob = (job: Job, enqueuedAt = new Date().toISOString()): QueuedMessage => ({
  priority: job.priority,
  message: { jobId: job.id, type: job.type as JobType, tenantId: job.tenantId, payload: job.payload, enqueuedAt },
});

/** Selects the ledger rows of prepared jobs, or the earlier jobs that hold the same idempotency keys. */
const selectPrepared = (tenantId: string, prepared: PreparedJobs, requests: JobRequest[]): SQL => {
  const keys = requests.flatMap((r) => (r.idempotencyKey ? [{ type: r.type, key: r.idempotencyKey }] : []));
  return sql`
    select * from jobs
    where tenant_id = ${tenantId}
      and (id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(prepared.ids)}::jsonb))
           or (type, idempotency_key) in (select type, key from jsonb_to_recordset(${JSON.stringify(keys)}::jsonb) as k(type text, key text)))
    order by created_at, id`;
};

/**
 * Enqueues jobs on their own (no other change to commit with them): one OLTP round trip, then
 * the sends off the response path. Returns the ledger rows, earlier ones for repeated keys.
 */
export async function enqueueJobs(
  deps: { store: TierStore; env: Env; logger: Logger; waitUntil(promise: Promise<unknown>): void },
  scope: TenantScope,
  requests: JobRequest[],
): Promise<Job[]> {
  const prepared = prepareJobs(scope.tenantId, requests);
  const [, rows] = await tenantBatch(deps.store, scope, (db) => [
    prepared.insert(db),
    db.execute(selectPrepared(scope.tenantId, prepared, requests)),
  ]);
  const jobs = rowsOfJobs(rows);
  const inserted = new Set(jobs.map((job) => job.id));
  deps.waitUntil(sendJobMessages(deps.env, deps.logger, prepared.messages.filter((m) => inserted.has(m.message.jobId))));
  return jobs;
}
