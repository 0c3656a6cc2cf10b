// Upstash Redis: one client per isolate (rate limits and caches only, never a source of truth), and explicit batches
// for the reads that must share one request.
import { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "./env";

/**
 * Clients by their configuration. A client holds no I/O object (each call makes its own fetch and its own timeout
 * signal), so one built for an earlier request serves the next: building one costs an object of ~250 function fields,
 * which per request was the largest cost of the Redis-served hot paths (issue 22).
 */
const clients = new Map<string, Redis>();

/**
 * No retries and a per-call timeout (a fresh AbortSignal for every HTTP request the client makes): Redis is an
 * accelerator, so a slow or absent Redis must cost callers at most one bounded wait before they fall back to Postgres.
 * No auto-pipelining: it wraps every call in a proxy and a fresh pipeline object; reads that must share a request say
 * so with `redisBatch` (or `pipeline()`).
 */
export function createRedis(env: Env, timeoutMs = Math.min(env.STORE_TIMEOUT_MS, 1000)): Redis {
  const key = `${env.UPSTASH_REDIS_REST_URL}\n${env.UPSTASH_REDIS_REST_TOKEN}\n${timeoutMs}`;
  let client = clients.get(key);
  if (!client) {
    client = new Redis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
      retry: false,
      signal: () => AbortSignal.timeout(timeoutMs),
      enableTelemetry: false,
      enableAutoPipelining: false,
    });
    // Bounded: configurations come from bindings, so more than a handful means a test harness cycling them.
    if (clients.size >= 16) clients.clear();
    clients.set(key, client);
  }
  return client;
}

/** The reads a batch and a client both answer, so a service can take either. */
export interface RedisReads {
  hmget<T extends Record<string, unknown>>(key: string, ...fields: string[]): Promise<T | null>;
}

type Pipeline = ReturnType<Redis["pipeline"]>;

/**
 * Commands queued now and sent together in one pipeline request by `send()`, each answering through its own promise
 * (or its own error). What auto-pipelining did implicitly, said where it matters: the authorization's reads with the
 * route's own, two limiter checks of one call. Every command must be queued before `send()`; one queued after it
 * rejects.
 */
export class RedisBatch implements RedisReads {
  readonly #pipeline: Pipeline;
  readonly #waiters: Array<{ resolve(value: unknown): void; reject(error: unknown): void }> = [];
  #sent = false;

  constructor(redis: Redis) {
    this.#pipeline = redis.pipeline();
  }

  /** Queues one command built on the pipeline; its result (deserialized as the client would) or its error comes back. */
  add<T>(command: (pipeline: Pipeline) => unknown): Promise<T> {
    if (this.#sent) return Promise.reject(new Error("redis batch already sent"));
    command(this.#pipeline);
    return new Promise<T>((resolve, reject) => this.#waiters.push({ resolve: resolve as (value: unknown) => void, reject }));
  }

  hmget<T extends Record<string, unknown>>(key: string, ...fields: string[]): Promise<T | null> {
    return this.add<T | null>((p) => p.hmget(key, ...fields));
  }

  evalsha<TArgs extends unknown[], TData = unknown>(sha1: string, keys: string[], args: TArgs): Promise<TData> {
    return this.add<TData>((p) => p.evalsha(sha1, keys, args));
  }

  /** Sends what was queued (nothing: no request). Never throws: each command's promise carries its outcome. */
  send(): void {
    if (this.#sent) return;
    this.#sent = true;
    const waiters = this.#waiters;
    if (waiters.length === 0) return;
    this.#pipeline.exec({ keepErrors: true }).then(
      (results) =>
        results.forEach(({ error, result }, i) => {
          if (error) waiters[i]!.reject(new Error(`Redis command ${i + 1} failed: ${error}`));
          else waiters[i]!.resolve(result);
        }),
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
  }
}

export const redisBatch = (redis: Redis) => new RedisBatch(redis);
