import { Ratelimit } from "@upstash/ratelimit";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { createRedis } from "../../src/platform/redis";
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
});
