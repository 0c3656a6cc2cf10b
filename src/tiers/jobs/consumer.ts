// Queue consumer: validates each message, claims its ledger row, runs its type's handler, and acks or retries it on its own.
import { z } from "zod";
import { tierStore, type TierStore } from "../../core/db";
import { parseEnv, type Env } from "../../core/env";
import { AppError } from "../../core/errors";
import { createLogger, isLogLevel, type Logger } from "../../core/logger";
import { erasureDeps } from "../../lifecycle/deps";
import { eraseSubjectJob } from "../../lifecycle/erasure";
import { indexContentJob } from "../content/jobs";
import { sendNotificationJob } from "../notifications/jobs";
import { aggregateAnalyticsJob, recordAuditJob } from "../olap/jobs";
import { jobsConfig } from "./config";
import { consumeDeadLetters } from "./dead-letters";
import { exportLeadsJob } from "./services/export-leads";
import { importLeadsJob } from "./services/import-leads";
import { sendEmailJob } from "./services/send-email";
import { jobDefinitions, jobMessageSchema, queueBinding, queueNames, type JobDefinition, type JobMessage, type JobType } from "./messages";
import type { Job } from "./services/rows";
import { claimJobs, raiseDeadJobEvents, recordOutcomes, type RunOutcome } from "./services/runs";

export interface JobHandlerDeps {
  env: Env;
  logger: Logger;
  /** The claimed ledger row (jobs with a ledger only): attempts, progress so far. */
  ledger?: Job;
}

/**
 * A handler may report progress, ask to continue in a fresh delivery (long jobs run in chunks), or
 * defer itself (not allowed to run yet, e.g. outside a send window): its attempt is given back.
 */
export type JobResult = {
  progress?: Record<string, unknown>;
  continueWith?: Record<string, unknown>;
  defer?: { seconds: number; reason: string };
};
export type JobHandler = (job: JobMessage, deps: JobHandlerDeps) => Promise<void | JobResult>;

/** One handler per job type; tier issues register theirs here. */
export const jobHandlers: Record<JobType, JobHandler> = {
  NOOP: async () => undefined,
  SEND_NOTIFICATION: sendNotificationJob,
  SEND_EMAIL: sendEmailJob,
  IMPORT_LEADS: importLeadsJob,
  EXPORT_LEADS: exportLeadsJob,
  INDEX_CONTENT: indexContentJob,
  ERASE_SUBJECT: (job, { env, logger }) => eraseSubjectJob(job, erasureDeps(env, logger)),
  RECORD_AUDIT: recordAuditJob,
  RECORD_AUDIT_DIRECT: recordAuditJob,
  AGGREGATE_ANALYTICS: aggregateAnalyticsJob,
};

/** Exponential backoff with full jitter: spreads a burst of retries instead of replaying it in step. */
export function backoffSeconds(definition: JobDefinition, attempt: number): number {
  const ceiling = Math.min(definition.backoff.maxSeconds, definition.backoff.baseSeconds * 2 ** Math.min(attempt, 16));
  return Math.max(1, Math.round(Math.random() * ceiling));
}

const isTierDown = (error: unknown) => error instanceof AppError && error.code === "SERVICE_UNAVAILABLE";
/** A payload the handler refuses can never succeed: retrying it only delays the operator. */
const isPermanent = (error: unknown) => error instanceof z.ZodError || (error instanceof AppError && error.code === "VALIDATION_FAILED");
const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/**
 * Puts a job back as a fresh message instead of retry(): an outage must not use up the queue's
 * own max_retries either. If this send fails too, the ledger row is pending and the relay heals it.
 */
async function resendMessage(env: Env, message: Message<unknown>, job: JobMessage, delaySeconds: number): Promise<void> {
  try {
    const priority = jobDefinitions[job.type].priority;
    await env[queueBinding[priority]].send(job, { contentType: "json", delaySeconds });
    message.ack();
  } catch {
    message.retry({ delaySeconds });
  }
}

async function runHandler(env: Env, logger: Logger, job: JobMessage, ledger: Job): Promise<RunOutcome> {
  const definition = jobDefinitions[job.type];
  try {
    const result = await jobHandlers[job.type]({ ...job, payload: ledger.payload }, { env, logger, ledger });
    if (result?.defer) return { id: ledger.id, outcome: "deferred", error: result.defer.reason, delaySeconds: result.defer.seconds };
    if (result?.continueWith) return { id: ledger.id, outcome: "continued", progress: result.continueWith };
    return { id: ledger.id, outcome: "succeeded", progress: result?.progress };
  } catch (error) {
    const message = describe(error);
    logger.warn("job attempt failed", { jobId: ledger.id, type: job.type, attempt: ledger.attempts, error });
    if (isTierDown(error)) {
      const delaySeconds = backoffSeconds(definition, (job.deferrals ?? 0) + 1);
      return { id: ledger.id, outcome: "deferred", error: message, delaySeconds };
    }
    if (isPermanent(error)) return { id: ledger.id, outcome: "failed", error: message };
    if (ledger.attempts >= ledger.maxAttempts) return { id: ledger.id, outcome: "dead", error: message };
    return { id: ledger.id, outcome: "retry", error: message, delaySeconds: backoffSeconds(definition, ledger.attempts) };
  }
}

/**
 * Ledger jobs: one round trip claims the whole batch, the handlers run concurrently, one round
 * trip records every outcome, then each message is acked, retried or re-sent on its own.
 */
async function runLedgerJobs(env: Env, logger: Logger, queue: string, items: Array<{ message: Message<unknown>; job: JobMessage }>) {
  if (items.length === 0) return;
  const store: TierStore = tierStore(env, "oltp");
  let claimed: Job[];
  let throttled: Job[];
  try {
    ({ claimed, throttled } = await claimJobs(store, jobsConfig, [...new Set(items.map((i) => i.job.jobId))], queue));
  } catch (error) {
    logger.warn("job ledger unavailable; deliveries put back", { error });
    await Promise.all(
      items.map(({ message, job }) =>
        isTierDown(error)
          ? resendMessage(env, message, { ...job, deferrals: (job.deferrals ?? 0) + 1 }, backoffSeconds(jobDefinitions[job.type], (job.deferrals ?? 0) + 1))
          : message.retry({ delaySeconds: backoffSeconds(jobDefinitions[job.type], message.attempts) }),
      ),
    );
    return;
  }
  const byId = new Map(claimed.map((job) => [job.id, job]));
  const throttledIds = new Set(throttled.map((job) => job.id));
  const runs: Array<{ message: Message<unknown>; job: JobMessage; ledger: Job }> = [];
  const putBack: Array<Promise<void>> = [];
  for (const item of items) {
    if (throttledIds.has(item.job.jobId)) {
      // Its tenant has its share of bulk work running: back later, attempts untouched.
      throttledIds.delete(item.job.jobId);
      const delaySeconds = jobsConfig.fairness.throttleDelaySeconds + Math.round(Math.random() * jobsConfig.fairness.throttleDelaySeconds);
      putBack.push(resendMessage(env, item.message, item.job, delaySeconds));
      continue;
    }
    const ledger = byId.get(item.job.jobId);
    // Nothing to claim (already done, running elsewhere, unknown, or a duplicate in this batch): a no-op.
    if (!ledger) item.message.ack();
    else {
      runs.push({ ...item, ledger });
      byId.delete(item.job.jobId);
    }
  }
  await Promise.all(putBack);
  if (runs.length === 0) return;
  const outcomes = await Promise.all(runs.map((run) => runHandler(env, logger, run.job, run.ledger)));
  try {
    const recorded = await recordOutcomes(store, outcomes);
    await raiseDeadJobEvents(tierStore(env, "notifications"), logger, recorded.filter((job) => job.status === "dead"));
  } catch (error) {
    // The rows stay running; when their lease runs out the relay makes them due again.
    logger.error("job outcomes not recorded", { error });
    for (const run of runs) run.message.retry({ delaySeconds: backoffSeconds(jobDefinitions[run.job.type], run.message.attempts) });
    return;
  }
  await Promise.all(
    runs.map(async (run, index) => {
      const outcome = outcomes[index]!;
      switch (outcome.outcome) {
        case "retry":
          return run.message.retry({ delaySeconds: outcome.delaySeconds });
        case "deferred":
          return resendMessage(env, run.message, { ...run.job, deferrals: (run.job.deferrals ?? 0) + 1 }, outcome.delaySeconds);
        case "continued":
          return resendMessage(env, run.message, run.job, 0);
        default:
          return run.message.ack();
      }
    }),
  );
}

/** Jobs whose durable record lives in their own tier (SEND_NOTIFICATION's outbox): the queue's attempts count. */
async function runDirectJobs(env: Env, logger: Logger, items: Array<{ message: Message<unknown>; job: JobMessage }>) {
  await Promise.all(
    items.map(async ({ message, job }) => {
      try {
        await jobHandlers[job.type](job, { env, logger });
        message.ack();
      } catch (error) {
        logger.warn("job attempt failed", { jobId: job.jobId, type: job.type, attempt: message.attempts, error });
        message.retry({ delaySeconds: backoffSeconds(jobDefinitions[job.type], message.attempts) });
      }
    }),
  );
}

export async function consumeQueueBatch(
  batch: MessageBatch<unknown>,
  rawEnv: object,
  _ctx?: ExecutionContext,
): Promise<void> {
  const env = parseEnv(rawEnv);
  const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { queue: batch.queue });
  if (batch.queue === queueNames.dead) return consumeDeadLetters(batch, env, logger);

  const ledgerItems: Array<{ message: Message<unknown>; job: JobMessage }> = [];
  const directItems: Array<{ message: Message<unknown>; job: JobMessage }> = [];
  for (const message of batch.messages) {
    const parsed = jobMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // A malformed message can never succeed: retry it at once, without backoff, so it reaches
      // the dead-letter queue (and an operator) quickly instead of being dropped.
      logger.error("malformed job message", { messageId: message.id, issues: parsed.error.issues });
      message.retry({ delaySeconds: 0 });
      continue;
    }
    (jobDefinitions[parsed.data.type].ledger ? ledgerItems : directItems).push({ message, job: parsed.data });
  }
  await Promise.all([runLedgerJobs(env, logger, batch.queue, ledgerItems), runDirectJobs(env, logger, directItems)]);
}
