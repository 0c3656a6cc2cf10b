// Which cron trigger runs which maintenance tasks; the same services also run from queues and HTTP.
import { parseEnv, type Env } from "./core/env";
import { createLogger, isLogLevel, type Logger } from "./core/logger";
import { lifecycleCron } from "./lifecycle/cron";
import { jobsCron } from "./tiers/jobs/cron";
import { contentCron } from "./tiers/content/cron";
import { notificationsCron } from "./tiers/notifications/cron";
import { olapCron } from "./tiers/olap/cron";
import { oltpCron } from "./tiers/oltp/cron";

export type CronTask = { name: string; run(deps: { env: Env; logger: Logger }): Promise<void> };
export type TierCronTasks = Partial<Record<keyof typeof schedules, CronTask[]>>;

/** Cron expressions exactly as in wrangler.toml's [triggers]. */
export const schedules = {
  aggregation: "*/5 * * * *",
  pruning: "0 * * * *",
  consistency: "30 3 * * *",
} as const;

/** Each tier declares its own tasks in src/tiers/<tier>/cron.ts; this only gathers them. */
const tierTasks: TierCronTasks[] = [oltpCron, notificationsCron, contentCron, jobsCron, olapCron, lifecycleCron];

export const cronTasks: Record<keyof typeof schedules, CronTask[]> = {
  aggregation: tierTasks.flatMap((t) => t.aggregation ?? []),
  pruning: tierTasks.flatMap((t) => t.pruning ?? []),
  consistency: tierTasks.flatMap((t) => t.consistency ?? []),
};

/** Runs every task of the trigger; one failing task does not stop the others. */
export async function runScheduled(
  controller: ScheduledController,
  rawEnv: object,
  _ctx?: ExecutionContext,
): Promise<void> {
  const env = parseEnv(rawEnv);
  const logger = createLogger(isLogLevel(env.LOG_LEVEL) ? env.LOG_LEVEL : "info", { cron: controller.cron });
  const entry = Object.entries(schedules).find(([, expression]) => expression === controller.cron);
  if (!entry) {
    logger.warn("no tasks for this cron expression");
    return;
  }
  const tasks = cronTasks[entry[0] as keyof typeof schedules];
  const results = await Promise.allSettled(tasks.map((task) => task.run({ env, logger: logger.child({ task: task.name }) })));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ task: tasks[i]?.name, error: r.reason }] : []));
  for (const failure of failed) logger.error("cron task failed", failure);
  logger.info("cron run", { schedule: entry[0], tasks: tasks.length, failed: failed.length });
  if (failed.length > 0) throw new Error(`${failed.length} cron task(s) failed`);
}
