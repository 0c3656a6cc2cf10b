// Upstash Redis client per request: rate limits and caches only, never a source of truth.
import { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "./env";

/**
 * No retries and a per-request timeout: Redis is an accelerator, so a slow or absent Redis
 * must cost callers at most one bounded wait before they fall back to Postgres.
 */
export function createRedis(env: Env, timeoutMs = Math.min(env.STORE_TIMEOUT_MS, 1000)): Redis {
  return new Redis({
    url: env.UPSTASH_REDIS_REST_URL,
    token: env.UPSTASH_REDIS_REST_TOKEN,
    retry: false,
    signal: () => AbortSignal.timeout(timeoutMs),
    enableTelemetry: false,
  });
}
