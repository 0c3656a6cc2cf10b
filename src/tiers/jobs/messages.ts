// Job definitions (payload schema, priority, attempts, backoff; one entry per type) and the message every queue carries.
import { z } from "zod";
import { leadStatuses } from "../oltp/schema";
import type { jobPriorities } from "./schema";

export type JobPriority = (typeof jobPriorities)[number];

export interface JobDefinition<P extends z.ZodType = z.ZodType> {
  /** Validated at enqueue (a bad payload is refused with VALIDATION_FAILED) and again by the consumer. */
  payload: P;
  /** Which queue carries it: high for sends, normal for short work, low for bulk work. */
  priority: JobPriority;
  /** Failed attempts before the job is dead; at most the queue's max_retries + 1 (wrangler.toml). */
  maxAttempts: number;
  /** Exponential backoff with full jitter: a retry waits up to min(maxSeconds, baseSeconds * 2^attempt). */
  backoff: { baseSeconds: number; maxSeconds: number };
  /**
   * Whether the job has a row in the OLTP ledger. SEND_NOTIFICATION does not: its durable record is
   * the notifications database's outbox, because that tier must keep delivering while OLTP is down.
   */
  ledger: boolean;
}

const define = <P extends z.ZodType>(definition: JobDefinition<P>) => definition;

/** Storage keys and ids only: big data stays in R2 and the OLTP tables. */
const storageKey = z.string().min(1).max(512);

/** Who did what to which tenant object, when and from where (src/tiers/olap/services/audit.ts builds it). */
const auditPayload = z
  .object({
    actorId: z.string().min(1).max(64),
    actorRole: z.string().min(1).max(32),
    actorTenantId: z.uuid().nullable(),
    action: z.string().min(1).max(100),
    tenantId: z.uuid().nullable(),
    targetType: z.string().min(1).max(64),
    targetId: z.string().max(200).nullable(),
    occurredAt: z.iso.datetime({ offset: true }),
    ip: z.string().max(64).nullable(),
    userAgent: z.string().max(512).nullable(),
    requestId: z.string().max(128).nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .strict();

export const jobDefinitions = {
  NOOP: define({
    payload: z.object({}).strict(),
    priority: "normal",
    maxAttempts: 3,
    backoff: { baseSeconds: 5, maxSeconds: 60 },
    ledger: true,
  }),
  SEND_NOTIFICATION: define({
    payload: z.object({ outboxId: z.uuid(), notificationId: z.uuid() }),
    priority: "normal",
    maxAttempts: 6,
    backoff: { baseSeconds: 5, maxSeconds: 900 },
    ledger: false,
  }),
  /** Its ledger row is written with the email (same id) by createEmail, so a queued email always has its send job. */
  SEND_EMAIL: define({
    payload: z.object({ emailId: z.uuid() }).strict(),
    priority: "high",
    maxAttempts: 6,
    backoff: { baseSeconds: 30, maxSeconds: 1800 },
    ledger: true,
  }),
  IMPORT_LEADS: define({
    payload: z.object({ storageKey, fileName: z.string().min(1).max(255), requestedBy: z.uuid() }).strict(),
    priority: "low",
    maxAttempts: 5,
    backoff: { baseSeconds: 10, maxSeconds: 900 },
    ledger: true,
  }),
  /** Bulk, in chunks like IMPORT_LEADS: each delivery writes one part to R2 and saves its place; the last joins them into one file. */
  EXPORT_LEADS: define({
    payload: z
      .object({
        requestedBy: z.uuid(),
        campaignId: z.uuid().optional(),
        status: z.enum(leadStatuses).optional(),
      })
      .strict(),
    priority: "low",
    maxAttempts: 5,
    backoff: { baseSeconds: 10, maxSeconds: 900 },
    ledger: true,
  }),
  /** No ledger: the durable record is the email_contents row still unindexed, which the content consistency cron queues again. */
  INDEX_CONTENT: define({
    payload: z.object({ emailId: z.uuid() }).strict(),
    priority: "normal",
    maxAttempts: 5,
    backoff: { baseSeconds: 5, maxSeconds: 300 },
    ledger: false,
  }),
  /** An admin action's compliance entry, written to OLAP's admin_audit_log; ledger row in the action's own OLTP transaction. */
  RECORD_AUDIT: define({
    payload: auditPayload,
    priority: "normal",
    maxAttempts: 8,
    backoff: { baseSeconds: 5, maxSeconds: 900 },
    ledger: true,
  }),
  /** The OLAP ETL (platform job from the aggregation cron), or with `rebuild` one tenant's range recomputed from source (operators). */
  AGGREGATE_ANALYTICS: define({
    payload: z
      .object({ rebuild: z.object({ tenantId: z.uuid(), from: z.iso.date(), to: z.iso.date() }).strict().optional() })
      .strict(),
    priority: "normal",
    maxAttempts: 3,
    backoff: { baseSeconds: 10, maxSeconds: 300 },
    ledger: true,
  }),
  /** The same entry for actions of tiers that must work while OLTP is down (notifications): queue only, no ledger. */
  RECORD_AUDIT_DIRECT: define({
    payload: auditPayload,
    priority: "normal",
    maxAttempts: 6,
    backoff: { baseSeconds: 5, maxSeconds: 900 },
    ledger: false,
  }),
  /** GDPR erasure of one subject across every tier (src/lifecycle/erasure.ts); resumable from erasure_requests' step record. */
  ERASE_SUBJECT: define({
    payload: z.object({ requestId: z.uuid() }).strict(),
    priority: "normal",
    maxAttempts: 10,
    backoff: { baseSeconds: 10, maxSeconds: 900 },
    ledger: true,
  }),
} satisfies Record<string, JobDefinition>;

export type JobType = keyof typeof jobDefinitions;
export type JobPayload<T extends JobType> = z.infer<(typeof jobDefinitions)[T]["payload"]>;
export const jobTypes = Object.keys(jobDefinitions) as [JobType, ...JobType[]];

export const jobMessageSchema = z.object({
  jobId: z.uuid(),
  type: z.enum(jobTypes),
  tenantId: z.uuid().nullable(),
  payload: z.record(z.string(), z.unknown()).default({}),
  enqueuedAt: z.iso.datetime(),
  /** Times the job was put back because a tier it needs was down; grows the wait without burning attempts. */
  deferrals: z.number().int().min(0).max(1000).optional(),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;

/** Queue names as declared in wrangler.toml; the consumer tells them apart by batch.queue. */
export const queueNames = {
  high: "edp-jobs-high",
  normal: "edp-jobs-normal",
  low: "edp-jobs-low",
  dead: "edp-jobs-dead",
} as const;

export const queueBinding = { high: "JOBS_HIGH", normal: "JOBS_NORMAL", low: "JOBS_LOW" } as const satisfies Record<JobPriority, string>;
