// Worker entry: HTTP, queue deliveries and cron triggers, each handed straight to its module with one services context.
import { createApp } from "./app";
import { type Clock, systemClock } from "./platform/clock";
import { runCronTasks } from "./platform/cron";
import { parseEnv } from "./platform/env";
import { consumeQueueBatch } from "./platform/jobs/consumer";
import { createLogger, isLogLevel } from "./platform/logger";
import { createServices, pendingWork } from "./platform/services";
import { traced } from "./platform/tracing";
import { cronTasks, wired } from "./root";
import { receiveReply } from "./tiers/jobs";

/**
 * The Worker's three handlers, reading time from `clock`. Production uses the system clock; a test builds
 * its own Worker with a clock set to the hour it needs (see test/support/clock.ts).
 */
export function createWorker(clock: Clock = systemClock) {
  const app = createApp(clock);
  return traced({
    fetch: app.fetch,

    /** One services context per delivered batch; the consumer knows the jobs only through it. */
    async queue(batch: MessageBatch<unknown>, rawEnv: object, ctx?: ExecutionContext): Promise<void> {
      const env = parseEnv(rawEnv);
      const work = pendingWork(ctx);
      const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { queue: batch.queue });
      await consumeQueueBatch(batch, createServices({ env, requestId: crypto.randomUUID(), logger, clock, waitUntil: work.waitUntil }, wired));
      await work.settle();
    },

    /** Cloudflare Email Routing delivers replies here: matched to the email they answer and queued as a `replied` fact. */
    async email(message: ForwardableEmailMessage, rawEnv: object, ctx?: ExecutionContext): Promise<void> {
      const env = parseEnv(rawEnv);
      const work = pendingWork(ctx);
      const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { email: "inbound" });
      try {
        await receiveReply(message.raw, createServices({ env, requestId: crypto.randomUUID(), logger, clock, waitUntil: work.waitUntil }, wired));
      } finally {
        await work.settle();
      }
    },

    /** One services context per trigger; an expression no schedule has fails the run loudly. */
    async scheduled(controller: ScheduledController, rawEnv: object, ctx?: ExecutionContext): Promise<void> {
      const env = parseEnv(rawEnv);
      const work = pendingWork(ctx);
      const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { cron: controller.cron });
      try {
        await runCronTasks(cronTasks, controller.cron, createServices({ env, requestId: crypto.randomUUID(), logger, clock, waitUntil: work.waitUntil }, wired));
      } finally {
        await work.settle();
      }
    },
  } satisfies ExportedHandler<object>, parseEnv);
}

export default createWorker();

export type { AppRouter } from "./root";
/** The live unread badge's Durable Object class (wrangler.toml `durable_objects`). */
export { UnreadBadge } from "./tiers/notifications";
