// The cron registry: the schedules (as in wrangler.toml's [triggers]), the task shape each tier declares, and the runner.
import { AppError } from "./errors";
import type { Services } from "./services";

/**
 * Cron expressions exactly as in wrangler.toml's [triggers] (the one source:
 * test/stack/wrangler-config.test.ts fails when they drift).
 */
export const schedules = {
  aggregation: "*/5 * * * *",
  pruning: "0 * * * *",
  consistency: "30 3 * * *",
} as const;
export type Schedule = keyof typeof schedules;

export interface CronTask {
  /** `<tier>.<verb>`, as the logs and the retention table name it. */
  name: string;
  schedule: Schedule;
  run(services: Services): Promise<void>;
}

/** Declares a task beside the code it runs; the owning tier lists it in its index.ts `crons`. */
export const defineCron = (task: CronTask): CronTask => task;

/** The schedule of a trigger's expression; an expression no schedule has is a deployment error, not a warning. */
export function scheduleOf(expression: string): Schedule {
  const entry = Object.entries(schedules).find(([, value]) => value === expression);
  if (!entry) {
    throw new AppError("INTERNAL", `No cron schedule has the expression '${expression}': wrangler.toml and src/platform/cron.ts disagree`);
  }
  return entry[0] as Schedule;
}

/** Runs every task of the trigger; one failing task does not stop the others, and the run fails if any did. */
export async function runCronTasks(tasks: readonly CronTask[], expression: string, services: Services): Promise<void> {
  const schedule = scheduleOf(expression);
  const due = tasks.filter((task) => task.schedule === schedule);
  const results = await Promise.allSettled(due.map((task) => task.run({ ...services, logger: services.logger.child({ task: task.name }) })));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ task: due[i]?.name, error: r.reason }] : []));
  for (const failure of failed) services.logger.error("cron task failed", failure);
  services.logger.info("cron run", { schedule, tasks: due.length, failed: failed.length });
  if (failed.length > 0) throw new Error(`${failed.length} cron task(s) failed`);
}
