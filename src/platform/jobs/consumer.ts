// Queue consumer: validates each message, claims its ledger row, runs its job's `run`, and acks or retries it on its own.
// It knows no tier: the jobs come from the registry the root composed into the services context.
import { contextOf, linkToActive, SpanKind, withSpan } from "../spans";
import { z } from "zod";
import { AppError } from "../errors";
import type { Services } from "../services";
import { jobRuntimeConfig } from "./config";
import { consumeDeadLetters, runGiveUpHooks } from "./dead-letters";
import { type AnyJob, backoffSeconds, deadLetterQueue, jobMessageSchema, type JobMessage, queues } from "./define";
import { groupBy } from "../rows";
import { claimJobs, raiseDeadJobEvents, recordOutcomes, type RunOutcome } from "./ledger";
import type { ClaimedJob } from "./rows";

interface Delivery {
  message: Message<unknown>;
  job: JobMessage;
  definition: AnyJob;
}

const isTierDown = (error: unknown) => error instanceof AppError && error.code === "SERVICE_UNAVAILABLE";
/** A payload the job refuses can never succeed: retrying it only delays the operator. */
const isPermanent = (error: unknown) => error instanceof z.ZodError || (error instanceof AppError && error.code === "VALIDATION_FAILED");
const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/**
 * Puts a job back as a fresh message instead of retry(): an outage must not use up the queue's
 * own max_retries either. If this send fails too, the ledger row is pending and the relay heals it.
 */
/** A job attempt's span: a child of the span that enqueued it (same trace), linked to this delivery's batch span. */
const attemptSpan = <T>(delivery: Pick<Delivery, "job" | "definition">, attempt: number, run: () => Promise<T>) =>
  withSpan(
    `job ${delivery.job.type}`,
    {
      "edp.tier": "jobs",
      "edp.job.id": delivery.job.jobId,
      "edp.job.type": delivery.job.type,
      "edp.job.attempt": attempt,
      ...(delivery.job.tenantId ? { "edp.tenant_id": delivery.job.tenantId } : {}),
    },
    run,
    delivery.job.traceparent ? { kind: SpanKind.CONSUMER, parent: contextOf(delivery.job.traceparent), links: linkToActive() } : { kind: SpanKind.CONSUMER },
  );

async function resendMessage(services: Services, delivery: Delivery, job: JobMessage, delaySeconds: number): Promise<void> {
  try {
    await services.env[queues[delivery.definition.queue].binding].send(job, { contentType: "json", delaySeconds });
    delivery.message.ack();
  } catch {
    delivery.message.retry({ delaySeconds });
  }
}

/**
 * Runs the job; a job that asks to continue runs its next chunk at once, from the progress it returned,
 * while the delivery's time allows (its claim holds, and a crash resumes from the last progress recorded).
 */
async function runJob(services: Services, delivery: Delivery, ledger: ClaimedJob): Promise<RunOutcome> {
  const { job, definition } = delivery;
  const deadline = services.clock.now().getTime() + jobRuntimeConfig.continueWithinSeconds * 1000;
  try {
    const payload = definition.payload.parse(ledger.payload);
    for (let current = ledger; ; ) {
      const result = await attemptSpan(delivery, ledger.attempts, () => definition.run({ jobId: ledger.id, tenantId: ledger.tenantId, payload, services, ledger: current }));
      if (result?.defer) return { id: ledger.id, outcome: "deferred", error: result.defer.reason, delaySeconds: result.defer.seconds };
      if (!result?.continueWith) {
        const fact = definition.productEvent?.(result?.progress);
        if (fact) services.telemetry.capture({ event: fact.event, tenantId: ledger.tenantId, properties: { job_type: job.type, ...fact.properties } });
        return { id: ledger.id, outcome: "succeeded", progress: result?.progress };
      }
      if (services.clock.now().getTime() >= deadline) return { id: ledger.id, outcome: "continued", progress: result.continueWith };
      current = { ...current, progress: result.continueWith };
    }
  } catch (error) {
    return failedOutcome(services, delivery, ledger, error);
  }
}

/** How a failed attempt ends: deferred (a tier is down), failed (it can never succeed), dead, or retried after backoff. */
function failedOutcome(services: Services, { job, definition }: Pick<Delivery, "job" | "definition">, ledger: ClaimedJob, error: unknown): RunOutcome {
  const message = describe(error);
  services.logger.warn("job attempt failed", { jobId: ledger.id, type: job.type, attempt: ledger.attempts, error });
  if (isTierDown(error)) {
    const delaySeconds = backoffSeconds(definition, (job.deferrals ?? 0) + 1);
    return { id: ledger.id, outcome: "deferred", error: message, delaySeconds };
  }
  if (isPermanent(error)) return { id: ledger.id, outcome: "failed", error: message };
  if (ledger.attempts >= ledger.maxAttempts) return { id: ledger.id, outcome: "dead", error: message };
  return { id: ledger.id, outcome: "retry", error: message, delaySeconds: backoffSeconds(definition, ledger.attempts) };
}

type Run = Delivery & { ledger: ClaimedJob };

/**
 * Runs a delivery's claimed jobs, each with its own `run`, except that two or more of a type with `runBatch` run
 * together in one call whose outcome they share (a payload that does not parse fails alone). Outcomes in `runs` order.
 */
async function runJobs(services: Services, runs: Run[]): Promise<RunOutcome[]> {
  const outcomes = new Map<Run, Promise<RunOutcome>>();
  for (const run of runs) if (!run.definition.runBatch) outcomes.set(run, runJob(services, run, run.ledger));
  for (const group of groupBy(runs.filter((run) => run.definition.runBatch), (run) => run.definition.type).values()) {
    const definition = group[0]!.definition;
    if (group.length === 1) {
      outcomes.set(group[0]!, runJob(services, group[0]!, group[0]!.ledger));
      continue;
    }
    const parsed: Array<{ run: Run; payload: unknown }> = [];
    for (const run of group) {
      const payload = definition.payload.safeParse(run.ledger.payload);
      if (payload.success) parsed.push({ run, payload: payload.data });
      else outcomes.set(run, Promise.resolve(failedOutcome(services, run, run.ledger, payload.error)));
    }
    const together = withSpan(`jobs ${definition.type}`, { "edp.tier": "jobs", "edp.job.type": definition.type, "edp.job.count": parsed.length }, () =>
      definition.runBatch!(
        parsed.map(({ run, payload }) => ({ jobId: run.ledger.id, tenantId: run.ledger.tenantId, payload })),
        services,
      ),
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    for (const { run } of parsed) {
      outcomes.set(
        run,
        together.then((error): RunOutcome => (error === undefined ? { id: run.ledger.id, outcome: "succeeded" } : failedOutcome(services, run, run.ledger, error))),
      );
    }
  }
  return Promise.all(runs.map((run) => outcomes.get(run)!));
}

/**
 * Ledger jobs: one round trip claims the whole batch, the jobs run concurrently, one round
 * trip records every outcome, then each message is acked, retried or re-sent on its own.
 */
async function runLedgerJobs(services: Services, queue: string, items: Delivery[]) {
  if (items.length === 0) return;
  const { logger } = services;
  const store = services.store("oltp");
  let claimed: ClaimedJob[];
  let throttled: string[];
  try {
    const ids = [...new Set(items.map((i) => i.job.jobId))];
    ({ claimed, throttled } = await claimJobs(store, jobRuntimeConfig, ids, queue, { bulk: items.some((i) => i.definition.queue === "low") }));
  } catch (error) {
    logger.warn("job ledger unavailable; deliveries put back", { error });
    await Promise.all(
      items.map((item) => {
        const deferrals = (item.job.deferrals ?? 0) + 1;
        return isTierDown(error)
          ? resendMessage(services, item, { ...item.job, deferrals }, backoffSeconds(item.definition, deferrals))
          : item.message.retry({ delaySeconds: backoffSeconds(item.definition, item.message.attempts) });
      }),
    );
    return;
  }
  const byId = new Map(claimed.map((job) => [job.id, job]));
  const throttledIds = new Set(throttled);
  const runs: Run[] = [];
  const putBack: Array<Promise<void>> = [];
  const fairness = jobRuntimeConfig.fairness;
  for (const item of items) {
    if (throttledIds.has(item.job.jobId)) {
      // Its tenant has its share of bulk work running: back later, attempts untouched.
      throttledIds.delete(item.job.jobId);
      const delaySeconds = fairness.throttleDelaySeconds + Math.round(Math.random() * fairness.throttleDelaySeconds);
      putBack.push(resendMessage(services, item, item.job, delaySeconds));
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
  const outcomes = await runJobs(services, runs);
  try {
    const dead = await recordOutcomes(store, outcomes);
    await raiseDeadJobEvents(services.systemEvents, dead);
    await runGiveUpHooks(services, dead);
  } catch (error) {
    // The rows stay running; when their lease runs out the relay makes them due again.
    logger.error("job outcomes not recorded", { error });
    for (const run of runs) run.message.retry({ delaySeconds: backoffSeconds(run.definition, run.message.attempts) });
    return;
  }
  await Promise.all(
    runs.map(async (run, index) => {
      const outcome = outcomes[index]!;
      switch (outcome.outcome) {
        case "retry":
          return run.message.retry({ delaySeconds: outcome.delaySeconds });
        case "deferred":
          return resendMessage(services, run, { ...run.job, deferrals: (run.job.deferrals ?? 0) + 1 }, outcome.delaySeconds);
        case "continued":
          return resendMessage(services, run, run.job, 0);
        default:
          return run.message.ack();
      }
    }),
  );
}

/** Jobs whose durable record lives in their own tier (SEND_NOTIFICATION's outbox): the queue's attempts count. */
async function runDirectJobs(services: Services, items: Delivery[]) {
  await Promise.all(
    items.map(async ({ message, job, definition }) => {
      try {
        const payload = definition.payload.parse(job.payload);
        await attemptSpan({ job, definition }, message.attempts, () => definition.run({ jobId: job.jobId, tenantId: job.tenantId, payload, services }));
        message.ack();
      } catch (error) {
        services.logger.warn("job attempt failed", { jobId: job.jobId, type: job.type, attempt: message.attempts, error });
        message.retry({ delaySeconds: backoffSeconds(definition, message.attempts) });
      }
    }),
  );
}

export async function consumeQueueBatch(batch: MessageBatch<unknown>, services: Services): Promise<void> {
  if (batch.queue === deadLetterQueue) return consumeDeadLetters(batch, services);
  const ledgerItems: Delivery[] = [];
  const directItems: Delivery[] = [];
  for (const message of batch.messages) {
    const parsed = jobMessageSchema.safeParse(message.body);
    const definition = parsed.success ? services.jobs.registry.get(parsed.data.type) : undefined;
    if (!parsed.success || !definition) {
      // A malformed message can never succeed: retry it at once, without backoff, so it reaches
      // the dead-letter queue (and an operator) quickly instead of being dropped.
      services.logger.error("malformed job message", { messageId: message.id, issues: parsed.success ? "unknown job type" : parsed.error.issues });
      message.retry({ delaySeconds: 0 });
      continue;
    }
    (definition.ledger ? ledgerItems : directItems).push({ message, job: parsed.data, definition });
  }
  await Promise.all([runLedgerJobs(services, batch.queue, ledgerItems), runDirectJobs(services, directItems)]);
}
