// The job runtime's vocabulary: defineJob (payload, queue, ledger, attempts, backoff, run), the queues, and the message every queue carries.
import { z } from "zod";
import type { Services } from "../services";
import type { ClaimedJob } from "./rows";

/** Which queue carries a job: high for sends, normal for short work, low for bulk work. */
export const jobQueues = ["high", "normal", "low"] as const;
export type JobQueue = (typeof jobQueues)[number];

/**
 * Queue names and the consumer settings the runtime relies on, as declared in wrangler.toml (the one
 * source: test/stack/wrangler-config.test.ts fails when these drift from it).
 */
export const queues = {
  high: { name: "edp-jobs-high", binding: "JOBS_HIGH", maxRetries: 5 },
  normal: { name: "edp-jobs-normal", binding: "JOBS_NORMAL", maxRetries: 5 },
  low: { name: "edp-jobs-low", binding: "JOBS_LOW", maxRetries: 8 },
} as const satisfies Record<JobQueue, { name: string; binding: string; maxRetries: number }>;
export const deadLetterQueue = "edp-jobs-dead";

export const jobMessageSchema = z.object({
  jobId: z.uuid(),
  type: z.string().min(1).max(64),
  tenantId: z.uuid().nullable(),
  payload: z.record(z.string(), z.unknown()).default({}),
  enqueuedAt: z.iso.datetime(),
  /** Times the job was put back because a tier it needs was down; grows the wait without burning attempts. */
  deferrals: z.number().int().min(0).max(1000).optional(),
  /** The W3C traceparent of the span that sent it, so the job's attempts join the enqueuing request's trace. */
  traceparent: z.string().max(64).optional(),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;

/**
 * A handler may report progress, ask to continue in a fresh delivery (long jobs run in chunks), or
 * defer itself (not allowed to run yet, e.g. outside a send window): its attempt is given back.
 */
export type JobResult = {
  progress?: Record<string, unknown>;
  continueWith?: Record<string, unknown>;
  defer?: { seconds: number; reason: string };
};

/** What a job's run receives: its checked payload, its tenant, the services of this delivery and, with a ledger, its row. */
export interface JobRun<P> {
  jobId: string;
  tenantId: string | null;
  payload: P;
  services: Services;
  /** The claimed ledger row (jobs with a ledger only): attempts, progress so far. */
  ledger?: ClaimedJob;
}

export interface JobDefinition<P = unknown> {
  type: string;
  /** Validated at enqueue (a bad payload is refused with VALIDATION_FAILED) and again by the consumer. */
  payload: z.ZodType<P>;
  queue: JobQueue;
  /**
   * Whether the job has a row in the OLTP ledger. Without one, its durable record lives in its own
   * tier (SEND_NOTIFICATION's outbox, an unindexed email) and the queue's own retries count.
   */
  ledger: boolean;
  /**
   * Who may read the job's payload in the ledger (jobs.get, jobs.list): everyone of the tenant by
   * default; "admin" keeps it from members (an audit entry's actor, address and details are no more
   * theirs to read through the ledger than through the audit log).
   */
  payloadReadableBy?: "member" | "admin";
  /** Failed attempts before the job is dead; at most its queue's max_retries + 1 (checked against wrangler.toml). */
  maxAttempts: number;
  /** Exponential backoff with full jitter: a retry waits up to min(maxSeconds, baseSeconds * 2^attempt). */
  backoff: { baseSeconds: number; maxSeconds: number };
  run(job: JobRun<P>): Promise<void | JobResult>;
  /**
   * Runs the claimed jobs of this type in one delivery together, in one store round trip instead of one each (an
   * audit entry per redriven job would otherwise cost a batch of 100 OLAP round trips). They share its outcome: all
   * succeed, or all take the error as `run`'s would be taken. Used when a delivery carries two or more of them; for
   * jobs that only write idempotently and report nothing (no progress, continuation or deferral).
   */
  runBatch?(jobs: Array<{ jobId: string; tenantId: string | null; payload: P }>, services: Services): Promise<void>;
  /**
   * The product fact a finished run stands for (email sent, import finished), from its final progress; sent to the
   * product-event sink by the runtime. No addresses: ids and counts only.
   */
  productEvent?(progress: Record<string, unknown> | undefined): { event: string; properties?: Record<string, string | number | boolean | null> } | null;
  /**
   * Runs once when the job dies (its attempts used up, or dead-lettered by the queue), so the record it acts on
   * does not wait forever: SEND_EMAIL marks its email `failed`. A job refused as permanently invalid (`failed`)
   * is not given up this way: its record may be handled elsewhere (an email whose content a caller keeps).
   */
  onGiveUp?(job: { jobId: string; tenantId: string | null; payload: P; error: string }, services: Services): Promise<void>;
}

/** Declares a job beside the code that runs it; the owning tier lists it in its index.ts `jobs`. */
export const defineJob = <P>(definition: JobDefinition<P>): JobDefinition<P> => definition;

// biome-ignore lint/suspicious/noExplicitAny: a registry holds jobs of every payload type.
export type AnyJob = JobDefinition<any>;

/** Every job type of the Worker by name: composed once at the root from the tiers' `jobs`. */
export class JobRegistry {
  readonly #byType = new Map<string, AnyJob>();

  constructor(jobs: readonly AnyJob[]) {
    for (const job of jobs) {
      if (this.#byType.has(job.type)) throw new Error(`job type ${job.type} is defined twice`);
      this.#byType.set(job.type, job);
    }
  }

  get(type: string): AnyJob | undefined {
    return this.#byType.get(type);
  }

  get all(): AnyJob[] {
    return [...this.#byType.values()];
  }

  /** The job as the caller may read it: a payload its role may not read comes back empty. */
  readableBy<J extends { type: string; payload: Record<string, unknown> }>(role: string, job: J): J {
    const definition = this.#byType.get(job.type);
    return definition?.payloadReadableBy === "admin" && role !== "admin" && role !== "operator" ? { ...job, payload: {} } : job;
  }
}

/** Exponential backoff with full jitter: spreads a burst of retries instead of replaying it in step. */
export function backoffSeconds(definition: Pick<JobDefinition, "backoff">, attempt: number): number {
  const ceiling = Math.min(definition.backoff.maxSeconds, definition.backoff.baseSeconds * 2 ** Math.min(attempt, 16));
  return Math.max(1, Math.round(Math.random() * ceiling));
}
