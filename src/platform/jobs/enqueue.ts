// The one enqueue API: validate job requests, write ledger rows inside the caller's own transaction (outbox), send after commit.
import { currentTraceparent, withSpan } from "../spans";
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { z } from "zod";
import type { Clock } from "../clock";
import { tenantBatch, type TenantScope, type TierStore } from "../db";
import { timeOrderedId } from "../ids";
import type { Env } from "../env";
import { AppError } from "../errors";
import type { Logger } from "../logger";
import { queues, type AnyJob, type JobMessage, type JobQueue, type JobRegistry } from "./define";
import { rowsOfJobs, type Job } from "./rows";

export interface JobRequest {
  type: string;
  payload: unknown;
  /** The same key for the same type in the same tenant enqueues the job once. */
  idempotencyKey?: string | undefined;
  /** A job whose id is another record's (SEND_EMAIL runs under its email's id). Time-ordered when omitted (platform/ids.ts). */
  id?: string | undefined;
}

export interface QueuedMessage {
  queue: JobQueue;
  message: JobMessage;
  delaySeconds?: number;
}

export interface PreparedJobs {
  ids: string[];
  /** Ledger inserts for the caller's own batch: they commit, or not, with the change that caused them. */
  insert(db: NeonHttpDatabase): BatchItem<"pg">;
  /**
   * The same insert as SQL for the caller's own statement (a data-modifying CTE), kept to the rows `where` admits
   * (over the ledger rows `r`): one statement fewer in the batch, and the condition can name the statement's CTEs.
   */
  insertSql(where: SQL): SQL;
  /** The messages to send once the transaction has committed. */
  messages: QueuedMessage[];
}

const idempotencyKey = z.string().min(1).max(200).optional();
const jobId = z.uuid().optional();

/** The ledger's columns, written in one place: every ledger row, whoever enqueues it, comes through here. */
export const ledgerInsert = (source: SQL): SQL => sql`
  insert into jobs (id, tenant_id, type, payload, priority, max_attempts, idempotency_key)
  select id, tenant_id, type, payload, priority, max_attempts, idempotency_key from (${source}) as source
  on conflict do nothing`;

/** The ledger row's shape for one definition: ids as uuid text, the queue as the ledger's priority. */
const ledgerColumns = sql`r(id uuid, tenant_id uuid, type text, payload jsonb, priority text, max_attempts int, idempotency_key text)`;

function fail(problems: Array<{ path: string; message: string }>): never {
  throw new AppError("VALIDATION_FAILED", `Invalid job: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`, {
    tier: "jobs",
    details: problems,
  });
}

/**
 * Validates every request against its type's definition and prepares the ledger rows. A bad payload
 * is refused here, before anything is written, naming each offending field. `when` (SQL, evaluated in
 * the caller's transaction after its own statements) keeps the rows only if the change took effect.
 */
export function prepareJobs(
  registry: JobRegistry,
  clock: Clock,
  tenantId: string | null,
  requests: JobRequest[],
  when?: SQL,
): PreparedJobs {
  const problems: Array<{ path: string; message: string }> = [];
  const rows = requests.map((request, index) => {
    const definition = registry.get(request.type);
    if (!definition) {
      problems.push({ path: `${index}.type`, message: `unknown job type '${String(request.type)}'` });
      return null;
    }
    if (!definition.ledger) {
      problems.push({ path: `${index}.type`, message: `${request.type} jobs have no ledger row; send them with sendDirect` });
      return null;
    }
    const payload = definition.payload.safeParse(request.payload);
    const key = idempotencyKey.safeParse(request.idempotencyKey);
    const id = jobId.safeParse(request.id);
    if (!payload.success) {
      for (const issue of payload.error.issues) problems.push({ path: [index, "payload", ...issue.path].join("."), message: issue.message });
    }
    if (!key.success) problems.push({ path: `${index}.idempotencyKey`, message: "must be 1 to 200 characters" });
    if (!id.success) problems.push({ path: `${index}.id`, message: "must be a uuid" });
    if (!payload.success || !key.success || !id.success) return null;
    return {
      id: id.data ?? timeOrderedId(),
      tenant_id: tenantId,
      type: request.type,
      payload: payload.data as Record<string, unknown>,
      priority: definition.queue,
      max_attempts: definition.maxAttempts,
      idempotency_key: key.data ?? null,
    };
  });
  if (problems.length > 0) fail(problems);
  const valid = rows.filter((row) => row !== null);
  const enqueuedAt = clock.now().toISOString();
  const source = sql`select * from jsonb_to_recordset(${JSON.stringify(valid)}::jsonb) as ${ledgerColumns}`;
  return {
    ids: valid.map((row) => row.id),
    // A repeated idempotency key inserts nothing; its message then finds no row to claim and is a no-op.
    insert: (db) => db.execute(ledgerInsert(when ? sql`${source} where ${when}` : source)),
    insertSql: (where) => ledgerInsert(sql`${source} where ${where}`),
    messages: valid.map((row) => ({
      queue: row.priority,
      message: { jobId: row.id, type: row.type, tenantId: row.tenant_id, payload: row.payload, enqueuedAt },
    })),
  };
}

/** The message of a job with no ledger row: its durable record lives in its own tier, which sends it again if lost. */
export function directMessage(definition: AnyJob, clock: Clock, tenantId: string | null, payload: unknown, id = timeOrderedId()): QueuedMessage {
  if (definition.ledger) throw new AppError("INTERNAL", `${definition.type} jobs are enqueued with a ledger row`, { tier: "jobs" });
  const parsed = definition.payload.safeParse(payload);
  if (!parsed.success) fail(parsed.error.issues.map((i) => ({ path: ["payload", ...i.path].join("."), message: i.message })));
  return {
    queue: definition.queue,
    message: { jobId: id, type: definition.type, tenantId, payload: parsed.data as Record<string, unknown>, enqueuedAt: clock.now().toISOString() },
  };
}

/** The message that runs an existing ledger row (relay, redrive). */
export const messageForJob = (job: Job, clock: Clock): QueuedMessage => ({
  queue: job.priority,
  message: { jobId: job.id, type: job.type, tenantId: job.tenantId, payload: job.payload, enqueuedAt: clock.now().toISOString() },
});

/**
 * Sends committed jobs to their queues. A lost send loses nothing: a ledger row stays pending and the
 * relay sends it again after the grace period; a direct job's own tier does the same from its record.
 * So failures are only logged, never thrown.
 */
/**
 * Sends messages grouped by queue. A failed send is logged and left to the messages' durable record (its
 * ledger or outbox row, whose relay sends it again); `strict` callers have no such record and get the error.
 */
export async function sendJobMessages(env: Env, logger: Logger, messages: QueuedMessage[], options: { strict?: boolean } = {}): Promise<void> {
  const byQueue = [...new Set(messages.map((m) => m.queue))];
  await Promise.all(
    byQueue.map(async (queue) => {
      const group = messages.filter((m) => m.queue === queue);
      // sendBatch takes at most 100 messages per call.
      for (let start = 0; start < group.length; start += 100) {
        const chunk = group.slice(start, start + 100);
        try {
          await withSpan("queue send", { "edp.tier": "jobs", "messaging.destination.name": queues[queue].name, "messaging.batch.message_count": chunk.length }, () => {
            const traceparent = currentTraceparent();
            return env[queues[queue].binding].sendBatch(
              chunk.map((m) => ({
                body: traceparent && !m.message.traceparent ? { ...m.message, traceparent } : m.message,
                contentType: "json" as const,
                ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}),
              })),
            );
          });
        } catch (error) {
          if (options.strict) throw error;
          logger.warn("job messages not sent; they will be sent again from their durable record", { queue, count: chunk.length, error });
        }
      }
    }),
  );
}

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
 * Enqueues jobs on their own (no other change to commit with them): one OLTP round trip. Returns the
 * ledger rows (earlier ones for repeated keys) and the messages of the rows it inserted, to send.
 */
export async function enqueueJobs(
  store: TierStore,
  scope: TenantScope,
  prepared: PreparedJobs,
  requests: JobRequest[],
): Promise<{ jobs: Job[]; messages: QueuedMessage[] }> {
  const [, rows] = await tenantBatch(store, scope, (db) => [prepared.insert(db), db.execute(selectPrepared(scope.tenantId, prepared, requests))]);
  const jobs = rowsOfJobs(rows);
  const inserted = new Set(jobs.map((job) => job.id));
  return { jobs, messages: prepared.messages.filter((m) => inserted.has(m.message.jobId)) };
}
