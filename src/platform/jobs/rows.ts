// The job as clients see it, mapped from raw ledger rows (the Neon HTTP driver hands timestamps back as text).
import { isoOrNull, isoTimestamp, rowsOf } from "../rows";
import type { JobQueue } from "./define";

export const jobStatuses = ["pending", "running", "succeeded", "failed", "dead"] as const;
export type JobStatus = (typeof jobStatuses)[number];

export interface Job {
  id: string;
  tenantId: string | null;
  type: string;
  payload: Record<string, unknown>;
  /** The queue that carries it (the ledger calls it priority). */
  priority: JobQueue;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  progress: Record<string, unknown> | null;
  idempotencyKey: string | null;
  lastQueue: string | null;
  scheduledAt: string;
  startedAt: string | null;
  completedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * What a job's run is given of its claimed row: the claim returns only these columns, a batch's rows being a large
 * share of what a consumer parses (bench:jobs --profile).
 */
export type ClaimedJob = Pick<Job, "id" | "tenantId" | "type" | "payload" | "priority" | "attempts" | "maxAttempts" | "progress">;

export const toClaimedJob = (r: Record<string, unknown>): ClaimedJob => ({
  id: String(r.id),
  tenantId: r.tenant_id === null ? null : String(r.tenant_id),
  type: String(r.type),
  payload: (r.payload ?? {}) as Record<string, unknown>,
  priority: r.priority as Job["priority"],
  attempts: Number(r.attempts),
  maxAttempts: Number(r.max_attempts),
  progress: (r.progress ?? null) as Record<string, unknown> | null,
});

export const toJob = (r: Record<string, unknown>): Job => ({
  ...toClaimedJob(r),
  status: r.status as JobStatus,
  lastError: r.last_error === null ? null : String(r.last_error),
  idempotencyKey: r.idempotency_key === null ? null : String(r.idempotency_key),
  lastQueue: r.last_queue === null ? null : String(r.last_queue),
  scheduledAt: isoTimestamp(r.scheduled_at),
  startedAt: isoOrNull(r.started_at),
  completedAt: isoOrNull(r.completed_at),
  createdAt: isoTimestamp(r.created_at),
  updatedAt: isoTimestamp(r.updated_at),
});

export const rowsOfJobs = (result: unknown): Job[] => rowsOf(result).map(toJob);

