// Builds the lifecycle services' dependencies from the services context of a request, a queue delivery or a cron run.
import { createRedis } from "../platform/redis";
import type { Services } from "../platform/services";
import type { ConsistencyDeps } from "./consistency";
import type { ErasureDeps } from "./erasure";

/** Every store a lifecycle task reaches. Background work gets a longer Redis bound than a request path: it scans, and nobody waits on it. */
function lifecycleStores(services: Services) {
  return {
    oltp: services.store("oltp"),
    notifications: services.store("notifications"),
    olap: services.store("olap"),
    bucket: services.env.CONTENT_BUCKET,
    redis: createRedis(services.env, services.env.STORE_TIMEOUT_MS),
    logger: services.logger,
    services,
  };
}

export const consistencyDeps = (services: Services): ConsistencyDeps => lifecycleStores(services);
export const erasureDeps = (services: Services): ErasureDeps => lifecycleStores(services);
