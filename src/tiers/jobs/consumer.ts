// Queue consumer: validates each message, runs its type's handler, and acks or retries it on its own.
import { parseEnv, type Env } from "../../core/env";
import { createLogger, isLogLevel, type Logger } from "../../core/logger";
import { jobMessageSchema, queueNames, type JobMessage, type JobType } from "./messages";
import { consumeDeadLetters } from "./dead-letters";
import { sendNotificationJob } from "../notifications/jobs";

export type JobHandler = (job: JobMessage, deps: { env: Env; logger: Logger }) => Promise<void>;

/** One handler per job type; tier issues register theirs here. */
export const jobHandlers: Record<JobType, JobHandler> = {
  NOOP: async () => undefined,
  SEND_NOTIFICATION: sendNotificationJob,
};

/** Exponential backoff with full jitter, capped at 15 minutes. */
export function backoffSeconds(attempt: number): number {
  const ceiling = Math.min(900, 2 ** Math.min(attempt, 10) * 5);
  return Math.max(1, Math.round(Math.random() * ceiling));
}

export async function consumeQueueBatch(
  batch: MessageBatch<unknown>,
  rawEnv: object,
  _ctx?: ExecutionContext,
): Promise<void> {
  const env = parseEnv(rawEnv);
  const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { queue: batch.queue });
  if (batch.queue === queueNames.dead) return consumeDeadLetters(batch, logger);

  for (const message of batch.messages) {
    const parsed = jobMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // A malformed message can never succeed: retry it at once, without backoff, so it reaches
      // the dead-letter queue (and an operator) quickly instead of being dropped.
      logger.error("malformed job message", { messageId: message.id, issues: parsed.error.issues });
      message.retry({ delaySeconds: 0 });
      continue;
    }
    const job = parsed.data;
    try {
      await jobHandlers[job.type](job, { env, logger });
      message.ack();
    } catch (error) {
      logger.warn("job attempt failed", { jobId: job.jobId, type: job.type, attempt: message.attempts, error });
      message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    }
  }
}
