// Builds the notifications services' dependencies from the services context of a request, a queue delivery or a cron run.
import type { Services } from "../../platform/services";
import { notificationsConfig } from "./config";
import type { NotificationDeps } from "./services/notifications";

export function notificationDeps(services: Services): NotificationDeps {
  return {
    env: services.env,
    clock: services.clock,
    jobs: services.jobs,
    store: services.store("notifications"),
    redis: services.redis(),
    logger: services.logger,
    waitUntil: services.waitUntil,
    config: notificationsConfig,
  };
}
