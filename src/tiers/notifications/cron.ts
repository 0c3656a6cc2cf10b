// Notifications tier tasks run by the cron triggers (see src/cron.ts for the schedules).
import type { TierCronTasks } from "../../cron";
import { backgroundDeps } from "./deps";
import { relayPendingDeliveries } from "./services/outbox";
import { pruneNotificationsTier } from "./services/retention";

export const notificationsCron: TierCronTasks = {
  // The 5-minute trigger: a lost enqueue should not wait an hour for its retry.
  aggregation: [
    {
      name: "notifications.relayPendingDeliveries",
      async run({ env, logger }) {
        const deps = backgroundDeps(env, logger);
        const relayed = await relayPendingDeliveries(deps.store, env, deps.config);
        if (relayed > 0) logger.info("notification deliveries relayed", { relayed });
      },
    },
  ],
  pruning: [
    {
      name: "notifications.retention",
      async run({ env, logger }) {
        const deps = backgroundDeps(env, logger);
        const report = await pruneNotificationsTier(deps);
        logger.info("notifications retention", { ...report });
      },
    },
  ],
};
