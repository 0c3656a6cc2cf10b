// Builds the lifecycle services' dependencies from a request context or a cron/queue environment.
import { tierStore } from "../core/db";
import type { Env } from "../core/env";
import type { Logger } from "../core/logger";
import { createRedis } from "../core/redis";
import { sendJobMessages } from "../tiers/jobs/services/enqueue";
import type { ConsistencyDeps } from "./consistency";
import type { ErasureDeps } from "./erasure";

/** Every store a lifecycle task reaches. Background work gets a longer Redis bound than a request path: it scans, and nobody waits on it. */
function lifecycleStores(env: Env, logger: Logger) {
  return {
    oltp: tierStore(env, "oltp"),
    notifications: tierStore(env, "notifications"),
    olap: tierStore(env, "olap"),
    bucket: env.CONTENT_BUCKET,
    redis: createRedis(env, env.STORE_TIMEOUT_MS),
    logger,
  };
}

export function consistencyDeps(env: Env, logger: Logger): ConsistencyDeps {
  return { ...lifecycleStores(env, logger), sendJobs: (messages) => sendJobMessages(env, logger, messages) };
}

export function erasureDeps(env: Env, logger: Logger): ErasureDeps {
  return { ...lifecycleStores(env, logger), env };
}
