// Worker entry: HTTP, queue deliveries and cron triggers, each handed straight to its module.
import { app } from "./app";
import { consumeQueueBatch } from "./tiers/jobs/consumer";
import { runScheduled } from "./cron";

export default {
  fetch: app.fetch,
  queue: consumeQueueBatch,
  scheduled: runScheduled,
} satisfies ExportedHandler<object>;

export type { AppRouter } from "./trpc/root";
