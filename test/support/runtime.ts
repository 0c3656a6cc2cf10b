// The Worker's composed runtime as tests reach it: queue names, cron tasks by schedule, job preparation and a services context.
import { env } from "cloudflare:workers";
import { type Clock, systemClock } from "../../src/platform/clock";
import { type CronTask, type Schedule, schedules } from "../../src/platform/cron";
import { deadLetterQueue, type JobMessage, queues } from "../../src/platform/jobs/define";
import { prepareJobs as prepare, type JobRequest } from "../../src/platform/jobs/enqueue";
import { parseEnv } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { createServices, type Services } from "../../src/platform/services";
import { cronTasks as allTasks, wired } from "../../src/root";

export { schedules, type JobMessage, type JobRequest };

export const queueNames = { high: queues.high.name, normal: queues.normal.name, low: queues.low.name, dead: deadLetterQueue } as const;

/** The composed cron tasks, grouped by the trigger that runs them. */
export const cronTasks = Object.fromEntries(
  (Object.keys(schedules) as Schedule[]).map((schedule) => [schedule, allTasks.filter((task) => task.schedule === schedule)]),
) as Record<Schedule, CronTask[]>;

/** Job requests prepared exactly as a producer's transaction would (the composed registry, the given clock). */
export const prepareJobs = (tenantId: string | null, requests: JobRequest[], clock: Clock = systemClock) => prepare(wired.jobs, clock, tenantId, requests);

/** A services context like the one a queue delivery or cron run gets; background sends are awaited by `settle`. */
export function testServices(clock: Clock = systemClock): Services & { settle(): Promise<unknown> } {
  const pending: Promise<unknown>[] = [];
  const services = createServices(
    { env: parseEnv(env), requestId: crypto.randomUUID(), logger: createLogger("warn"), clock, waitUntil: (p) => void pending.push(p) },
    wired,
  );
  return Object.assign(services, { settle: () => Promise.all(pending) });
}
