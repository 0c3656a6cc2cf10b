// What every procedure receives: the validated env, the caller, per-request store clients and a logger.
import type { Context as HonoContext } from "hono";
import type { Principal } from "../core/auth";
import type { Env } from "../core/env";
import type { AppError } from "../core/errors";
import type { Logger } from "../core/logger";
import { tierStore, type DbTier, type TierStore } from "../core/db";
import { createRedis } from "../core/redis";
import type { Redis } from "@upstash/redis/cloudflare";

export interface Context {
  env: Env;
  requestId: string;
  logger: Logger;
  principal: Principal | null;
  /** Why the presented token was refused, surfaced only by procedures that need a caller. */
  authError: AppError | null;
  store(tier: DbTier): TierStore;
  redis(): Redis;
  waitUntil(promise: Promise<unknown>): void;
}

/** Clients are built lazily and once per request: no module-level connections on Workers. */
export function buildContext(init: {
  env: Env;
  requestId: string;
  logger: Logger;
  principal: Principal | null;
  authError: AppError | null;
  waitUntil(promise: Promise<unknown>): void;
}): Context {
  const stores = new Map<DbTier, TierStore>();
  let redis: Redis | undefined;
  return {
    ...init,
    store(tier) {
      let store = stores.get(tier);
      if (!store) {
        store = tierStore(init.env, tier);
        stores.set(tier, store);
      }
      return store;
    },
    redis() {
      redis ??= createRedis(init.env);
      return redis;
    },
  };
}

export function contextFromHono(c: HonoContext): Context {
  return buildContext({
    env: c.get("env"),
    requestId: c.get("requestId"),
    logger: c.get("logger"),
    principal: c.get("principal") ?? null,
    authError: c.get("authError") ?? null,
    waitUntil: (p) => c.executionCtx.waitUntil(p),
  });
}
