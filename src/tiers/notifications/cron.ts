// Notifications tier tasks run by the cron triggers: the outbox relay, closing digest windows, and retention.
import { defineCron } from "../../platform/cron";
import { notificationDeps } from "./deps";
import { closeDueDigests } from "./services/digests";
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
  // Digest windows close within 5 minutes of their end.
  defineCron({
    name: "notifications.closeDigests",
    schedule: "aggregation",
    async run(services) {
      const deps = notificationDeps(services);
      let closed = 0;
      for (let batch = 0; batch < 20; batch++) {
        const n = await closeDueDigests(deps.store, deps.jobs, deps.clock);
        closed += n;
        if (n < 100) break;
      }
      if (closed > 0) services.logger.info("notification digests closed", { closed });
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
