// Dead-letter consumer: jobs whose queue retries ran out are marked dead in the ledger (error kept) and raised to admins.
import type { Services } from "../services";
import { jobMessageSchema } from "./define";
import { buryJobs, raiseDeadJobEvents } from "./ledger";
import type { Job } from "./rows";

/**
 * Runs the give-up hooks of jobs that have just died (each transition to dead is recorded once, so each hook runs
 * once). A hook that fails is logged: the ledger keeps the job dead and its reason, for redrive.
 */
export async function runGiveUpHooks(services: Services, jobs: Job[]): Promise<void> {
  for (const job of jobs) {
    if (job.status !== "dead") continue;
    const definition = services.jobs.registry.get(job.type);
    if (!definition?.onGiveUp) continue;
    try {
      const payload = definition.payload.parse(job.payload);
      await definition.onGiveUp({ jobId: job.id, tenantId: job.tenantId, payload, error: job.lastError ?? "The job was given up" }, services);
    } catch (error) {
      services.logger.error("a given-up job's hook failed", { jobId: job.id, type: job.type, error });
    }
  }
}

export async function consumeDeadLetters(batch: MessageBatch<unknown>, services: Services): Promise<void> {
  const { logger } = services;
  const ledgerMessages: Array<{ message: Message<unknown>; jobId: string }> = [];
  for (const message of batch.messages) {
    const parsed = jobMessageSchema.safeParse(message.body);
    if (parsed.success && services.jobs.registry.get(parsed.data.type)?.ledger) {
      ledgerMessages.push({ message, jobId: parsed.data.jobId });
      continue;
    }
    // Malformed messages and jobs kept by their own tier (SEND_NOTIFICATION's outbox) have no ledger row to mark.
    logger.error("job dead-lettered", { messageId: message.id, attempts: message.attempts, body: message.body });
    message.ack();
  }
  if (ledgerMessages.length === 0) return;
  try {
    const dead = await buryJobs(
      services.store("oltp"),
      ledgerMessages.map((m) => m.jobId),
      "The queue's retries were exhausted",
    );
    for (const job of dead) logger.error("job dead", { jobId: job.id, type: job.type, lastError: job.lastError });
    await raiseDeadJobEvents(services.systemEvents, dead);
    await runGiveUpHooks(services, dead);
    for (const { message } of ledgerMessages) message.ack();
  } catch (error) {
    logger.error("dead letters not recorded; retrying", { error });
    for (const { message } of ledgerMessages) message.retry({ delaySeconds: 30 });
  }
}
