// Builds the notifications services' dependencies from a request context, a queue delivery or a cron run.
import type { Env } from "../../core/env";
import type { Logger } from "../../core/logger";
import { tierStore } from "../../core/db";
import { createRedis } from "../../core/redis";
import type { Context } from "../../trpc/context";
import { notificationsConfig } from "./config";
import type { NotificationDeps } from "./services/notifications";

export function notificationDeps(ctx: Context): NotificationDeps {
  return {
    env: ctx.env,
    store: ctx.store("notifications"),
    redis: ctx.redis(),
    logger: ctx.logger,
    waitUntil: ctx.waitUntil,
    config: notificationsConfig,
  };
}

/** Outside a request (cron): the same stores, with every step awaited by the task itself. */
export function backgroundDeps(env: Env, logger: Logger): Omit<NotificationDeps, "waitUntil"> {
  return { env, store: tierStore(env, "notifications"), redis: createRedis(env), logger, config: notificationsConfig };
}
