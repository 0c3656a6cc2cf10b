// OLTP tier tasks run by the cron triggers (see src/cron.ts for the schedules).
import type { TierCronTasks } from "../../cron";

export const oltpCron: TierCronTasks = {};
