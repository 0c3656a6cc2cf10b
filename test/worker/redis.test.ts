import { Ratelimit } from "@upstash/ratelimit";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { enforceLimits, type LimitCheck } from "../../src/platform/rate-limits";
import { createRedis, redisBatch } from "../../src/platform/redis";
import { redisRoundTrips, resetRoundTrips, setRedisFault } from "../support/stack";

const redis = () => createRedis(parseEnv(env));
const key = (name: string) => `test:${crypto.randomUUID()}:${name}`;

describe("Redis through @upstash/redis from the Worker", () => {
  afterEach(() => setRedisFault("none"));

  it("typical cache calls work and a pipeline is one round trip", async () => {
    const client = redis();
    const k = key("unread");
    expect(await client.set(k, 7, { ex: 60 })).toBe("OK");
    expect(await client.get<number>(k)).toBe(7);
    expect(await client.incrby(k, 3)).toBe(10);
    expect(await client.ttl(k)).toBeGreaterThan(0);

    await resetRoundTrips();
    const results = await client.pipeline().incr(k).get(k).del(k).exec();
    expect(results).toEqual([11, 11, 1]);
    expect(await redisRoundTrips()).toBe(1);
  });

  it("@upstash/ratelimit allows exactly the limit, then refuses", async () => {
    const limiter = new Ratelimit({ redis: redis(), limiter: Ratelimit.slidingWindow(3, "60 s"), prefix: key("rl") });
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await limiter.limit("recipient@example.test"));
    expect(outcomes.map((o) => o.success)).toEqual([true, true, true, false, false]);
    expect(outcomes[2]?.remaining).toBe(0);
  });

  it("a Redis outage fails fast instead of hanging the request", async () => {
    await setRedisFault("hang");
    const started = Date.now();
    await expect(redis().get(key("x"))).rejects.toThrow();
    // Two attempts (the client's minimum) of at most 1 s each.
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("one client per isolate and configuration, whose timeout still bounds every call on its own", async () => {
    const workerEnv = parseEnv(env);
    expect(createRedis(workerEnv, 300)).toBe(createRedis(workerEnv, 300));
    expect(createRedis(workerEnv, 300)).not.toBe(createRedis(workerEnv, 400));
    const client = createRedis(workerEnv, 300);
    const k = key("shared");
    expect(await client.set(k, 1)).toBe("OK");
    // Longer than the timeout since the client was built: a signal made once per client would have fired by now.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await client.get<number>(k)).toBe(1);
    await setRedisFault("hang");
    const started = Date.now();
    await expect(client.get(k)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("a batch sends its commands in one request and answers each with its own result or error", async () => {
    const client = redis();
    const k = key("hash");
    await client.hset(k, { a: "1", b: "two" });
    await resetRoundTrips();
    const batch = redisBatch(client);
    const both = batch.hmget<Record<string, unknown>>(k, "a", "b");
    const missing = batch.hmget<Record<string, unknown>>(key("none"), "a");
    const refused = batch.evalsha("0000000000000000000000000000000000000000", [], []);
    batch.send();
    expect(await both).toEqual({ a: 1, b: "two" });
    expect(await missing).toBeNull();
    await expect(refused).rejects.toThrow(/NOSCRIPT/);
    expect(await redisRoundTrips()).toBe(1);
  });

  it("the limiter checks of one call share one Redis request, and a hung Redis still fails them open within the bound", async () => {
    const logger = createLogger("error");
    const id = crypto.randomUUID();
    const checks: LimitCheck[] = [
      { name: "one", prefix: key("rl-one"), identifier: id, setting: { limit: 5, windowSeconds: 60 }, whenRedisDown: "open" },
      { name: "two", prefix: key("rl-two"), identifier: id, setting: { limit: 5, windowSeconds: 60 }, whenRedisDown: "open" },
    ];
    // The first call may load the script (EVALSHA refused, then EVAL); later ones find it.
    await enforceLimits(redis(), logger, checks);
    await resetRoundTrips();
    await enforceLimits(redis(), logger, checks);
    expect(await redisRoundTrips()).toBe(1);
    await setRedisFault("hang");
    const started = Date.now();
    await enforceLimits(redis(), logger, checks);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
