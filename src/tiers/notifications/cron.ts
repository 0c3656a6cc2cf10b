// Notifications tier tasks run by the cron triggers: the outbox relay and retention.
import { defineCron } from "../../platform/cron";
import { notificationDeps } from "./deps";
import { relayPendingDeliveries } from "./services/outbox";
import { pruneNotificationsTier } from "./services/retention";

export const notificationsCrons = [
  // The 5-minute trigger: a lost enqueue should not wait an hour for its retry.
  defineCron({
    name: "notifications.relayPendingDeliveries",
    schedule: "aggregation",
    async run(services) {
      const deps = notificationDeps(services);
      const relayed = await relayPendingDeliveries(deps.store, deps.jobs, deps.config);
      if (relayed > 0) services.logger.info("notification deliveries relayed", { relayed });
    },
  }),
  defineCron({
    name: "notifications.retention",
    schedule: "pruning",
    async run(services) {
      const report = await pruneNotificationsTier(notificationDeps(services));
      services.logger.info("notifications retention", { ...report });
    },
  }),
];
