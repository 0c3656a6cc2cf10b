// Checks the local Upstash endpoint with the real @upstash/redis and @upstash/ratelimit clients, on both backends.
import { createHash, randomUUID } from "node:crypto";
import net from "node:net";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis, type RedisConfigNodejs } from "@upstash/redis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startUpstashEndpoint, type UpstashEndpoint } from "../../scripts/stack/upstash-endpoint";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

function redisAnswers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    // A password-protected Redis answers -NOAUTH, which still means it is there.
    socket.once("data", (d) => done(/^[+-]/.test(d.toString())));
  });
}

const redisUp = await redisAnswers(REDIS_URL);
const backends = [
  { name: "embedded", redisUrl: undefined, available: true },
  { name: "redis", redisUrl: REDIS_URL, available: redisUp },
];

const clientFor = (ep: UpstashEndpoint, extra: Partial<RedisConfigNodejs> = {}): Redis =>
  new Redis({ url: ep.url, token: ep.token, enableTelemetry: false, ...extra });

const raw = (ep: UpstashEndpoint, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${ep.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${ep.token}`, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe.each(backends)("Upstash endpoint on $name", ({ name, redisUrl, available }) => {
  if (!available) {
    it.skip(`needs a Redis answering at ${REDIS_URL}`, () => {});
    return;
  }

  let ep: UpstashEndpoint;
  let redis: Redis;
  const P = `test:upstash:${name}:${randomUUID().slice(0, 8)}:`;

  beforeAll(async () => {
    ep = await startUpstashEndpoint({ token: `tok-${randomUUID()}`, redisUrl });
    redis = clientFor(ep);
  });

  afterEach(() => {
    ep.setFault("none");
    vi.restoreAllMocks();
  });

  afterAll(async () => {
    if (!ep) return;
    const keys = await redis.keys(`${P}*`);
    if (keys.length > 0) await redis.del(...keys);
    await ep.close();
  });

  it("reports its backend and a usable URL", async () => {
    expect(ep.backend).toBe(name);
    expect(ep.url).toBe(`http://127.0.0.1:${ep.port}`);
    const health = await fetch(`${ep.url}/_local/health`);
    expect(await health.json()).toEqual({ ok: true, backend: name, fault: "none" });
  });

  it("serves everyday commands as Upstash does", async () => {
    expect(await redis.set(`${P}s`, "v1", { ex: 100, nx: true })).toBe("OK");
    expect(await redis.set(`${P}s`, "v2", { nx: true })).toBeNull();
    expect(await redis.get(`${P}s`)).toBe("v1");
    expect(await redis.ttl(`${P}s`)).toBe(100);
    expect(await redis.set(`${P}s`, "v3", { xx: true, get: true })).toBe("v1");
    expect(await redis.ttl(`${P}s`)).toBe(-1);

    expect(await redis.incr(`${P}n`)).toBe(1);
    expect(await redis.incrby(`${P}n`, 41)).toBe(42);
    expect(await redis.decr(`${P}n`)).toBe(41);
    expect(await redis.expire(`${P}n`, 50)).toBe(1);
    expect(await redis.ttl(`${P}n`)).toBe(50);
    expect(await redis.pttl(`${P}n`)).toBeGreaterThan(49_000);
    expect(await redis.ttl(`${P}missing`)).toBe(-2);

    const profile = { id: 7, name: "Ada", tags: ["a", "b"], nested: { ok: true } };
    await redis.set(`${P}json`, profile);
    expect(await redis.get(`${P}json`)).toEqual(profile);

    expect(await redis.hset(`${P}h`, { opens: 1, subject: "Hello ✓" })).toBe(2);
    expect(await redis.hincrby(`${P}h`, "opens", 4)).toBe(5);
    expect(await redis.hgetall(`${P}h`)).toEqual({ opens: 5, subject: "Hello ✓" });
    expect(await redis.hget(`${P}h`, "nope")).toBeNull();

    expect(await redis.mset({ [`${P}m1`]: 1, [`${P}m2`]: "two" })).toBe("OK");
    expect(await redis.mget(`${P}m1`, `${P}m2`, `${P}missing`)).toEqual([1, "two", null]);

    expect(await redis.zadd(`${P}z`, { score: 2, member: "b" }, { score: 1, member: "a" }, { score: 3, member: "c" })).toBe(3);
    expect(await redis.zadd(`${P}z`, { nx: true }, { score: 9, member: "a" })).toBe(0);
    expect(await redis.zrange(`${P}z`, 0, -1)).toEqual(["a", "b", "c"]);
    expect(await redis.zrange(`${P}z`, 0, 1, { withScores: true })).toEqual(["a", 1, "b", 2]);
    expect(await redis.zrange(`${P}z`, 10, 2, { byScore: true, rev: true })).toEqual(["c", "b"]);

    expect(await redis.exists(`${P}s`, `${P}n`, `${P}missing`)).toBe(2);
    expect(await redis.del(`${P}m1`, `${P}missing`)).toBe(1);
    expect((await redis.keys(`${P}m*`)).sort()).toEqual([`${P}m2`]);
    // A shared Redis may hold other runs' keys, so one page need not cover the keyspace: walk the cursor.
    const scanned: string[] = [];
    let cursor: string | number = 0;
    let pages = 0;
    do {
      const [next, keys]: [string | number, string[]] = await redis.scan(cursor, { match: `${P}z*`, count: 1000 });
      scanned.push(...keys);
      cursor = next;
      pages++;
    } while (String(cursor) !== "0" && pages < 10_000);
    expect(String(cursor)).toBe("0");
    expect(scanned).toEqual([`${P}z`]);
  });

  it("runs a pipeline and a transaction in one round trip each", async () => {
    ep.resetRoundTrips();
    const piped = await redis.pipeline().set(`${P}p`, 1).incr(`${P}p`).get(`${P}p`).exec();
    expect(piped).toEqual(["OK", 2, 2]);
    expect(ep.roundTrips()).toBe(1);

    const tx = await redis.multi().set(`${P}t`, "x").append(`${P}t`, "yz").get(`${P}t`).exec();
    expect(tx).toEqual(["OK", 3, "xyz"]);
    expect(ep.roundTrips()).toBe(2);

    const mixed = await redis.pipeline().incr(`${P}t`).get(`${P}t`).exec({ keepErrors: true });
    expect(mixed[0]?.error).toBe("ERR value is not an integer or out of range");
    expect(mixed[1]?.result).toBe("xyz");
  });

  it("keeps a transaction atomic against concurrent writers", async () => {
    await redis.set(`${P}atomic`, 0);
    const writers = Array.from({ length: 20 }, () => clientFor(ep, { enableAutoPipelining: false }));
    await Promise.all(writers.map((w) => w.multi().incr(`${P}atomic`).incr(`${P}atomic`).exec()));
    expect(await redis.get(`${P}atomic`)).toBe(40);
    const pairs = await Promise.all(writers.map((w) => w.multi().incr(`${P}atomic`).incr(`${P}atomic`).exec()));
    // Each transaction sees its own two increments back to back.
    for (const [a, b] of pairs as [number, number][]) expect(b).toBe(a + 1);
  });

  it("rejects a wrong or missing token with 401 and counts no round trip", async () => {
    ep.resetRoundTrips();
    const intruder = new Redis({ url: ep.url, token: "wrong", enableTelemetry: false });
    await expect(intruder.get(`${P}s`)).rejects.toThrow(/Unauthorized/);
    const res = await fetch(ep.url, { method: "POST", body: JSON.stringify(["GET", `${P}s`]) });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "Unauthorized" });
    expect(ep.roundTrips()).toBe(0);
  });

  it("turns a Redis error into an UpstashError with Redis's wording", async () => {
    await redis.set(`${P}word`, "not a number");
    const err = await redis.incr(`${P}word`).then(() => undefined, (e: Error) => e);
    expect(err?.name).toBe("UpstashError");
    expect(err?.message).toContain("ERR value is not an integer or out of range");
    const res = await raw(ep, "/", ["INCR", `${P}word`]);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "ERR value is not an integer or out of range" });
    await redis.hset(`${P}hash`, { a: 1 });
    await expect(redis.get(`${P}hash`)).rejects.toThrow(/WRONGTYPE Operation against a key holding the wrong kind of value/);
  });

  it("answers in base64 when asked, sparing numbers, nulls and a top-level OK", async () => {
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const enc = { "upstash-encoding": "base64" };
    expect(await (await raw(ep, "/", ["SET", `${P}enc`, "héllo ✓"], enc)).json()).toEqual({ result: "OK" });
    expect(await (await raw(ep, "/", ["GET", `${P}enc`], enc)).json()).toEqual({ result: b64("héllo ✓") });
    expect(await (await raw(ep, "/", ["GET", `${P}enc`])).json()).toEqual({ result: "héllo ✓" });
    expect(await (await raw(ep, "/", ["MGET", `${P}enc`, `${P}none`], enc)).json()).toEqual({ result: [b64("héllo ✓"), null] });
    expect(await (await raw(ep, "/", ["PING"], enc)).json()).toEqual({ result: b64("PONG") });
    const nested = await raw(ep, "/", ["EVAL", "return {1, {'OK', 'x'}, false}", 0], enc);
    expect(await nested.json()).toEqual({ result: [1, [b64("OK"), b64("x")], null] });
    const piped = await raw(ep, "/pipeline", [["INCR", `${P}enc-n`], ["INCR", `${P}enc`], ["GET", `${P}enc-n`]], enc);
    expect(await piped.json()).toEqual([
      { result: 1 },
      { error: "ERR value is not an integer or out of range" },
      { result: b64("1") },
    ]);
    expect(piped.headers.get("upstash-sync-token")).toMatch(/^\d+$/);
    expect(await redis.get(`${P}enc`)).toBe("héllo ✓");
  });

  it("takes path-style commands and answers a CORS preflight", async () => {
    expect(await (await raw(ep, `/set/${encodeURIComponent(`${P}path`)}/v?EX=30`)).json()).toEqual({ result: "OK" });
    expect(await (await raw(ep, `/get/${encodeURIComponent(`${P}path`)}`)).json()).toEqual({ result: "v" });
    expect(await redis.ttl(`${P}path`)).toBe(30);
    const preflight = await fetch(ep.url, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.local",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,upstash-encoding",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.local");
    expect(preflight.headers.get("access-control-allow-headers")).toBe("authorization,content-type,upstash-encoding");
  });

  it("serves Lua scripts, shebang included, under the SHA1 of their own text", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn {redis.call('INCRBY', KEYS[1], ARGV[1]), #KEYS}";
    const sha = await redis.scriptLoad(script);
    expect(sha).toBe(createHash("sha1").update(script).digest("hex"));
    expect(await redis.evalsha(sha, [`${P}lua`], [5])).toEqual([5, 1]);
    expect(await redis.scriptExists(sha, "0".repeat(40))).toEqual([1, 0]);
    await expect(redis.evalsha("0".repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
    expect(await redis.eval("return redis.call('GET', KEYS[1])", [`${P}lua`], [])).toBe(5);
  });

  it.each([
    ["slidingWindow", Ratelimit.slidingWindow(3, "1 h")],
    ["fixedWindow", Ratelimit.fixedWindow(3, "1 h")],
    ["tokenBucket", Ratelimit.tokenBucket(1, "1 h", 3)],
  ] as const)("enforces Ratelimit.%s: exactly the limit, remaining counting down", async (_, limiter) => {
    const limit = new Ratelimit({ redis, limiter, prefix: `${P}rl`, ephemeralCache: false });
    const id = `user-${randomUUID()}`;
    const seen = [];
    for (let i = 0; i < 5; i++) {
      const r = await limit.limit(id);
      seen.push([r.success, r.remaining]);
    }
    expect(seen).toEqual([[true, 2], [true, 1], [true, 0], [false, 0], [false, 0]]);
    expect(await limit.limit(`other-${id}`)).toMatchObject({ success: true, remaining: 2 });
  });

  it("counts one round trip per HTTP request the client makes", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const requests = (): number => fetchSpy.mock.calls.filter(([u]) => String(u).startsWith(ep.url)).length;
    await redis.set(`${P}rt`, 1);
    ep.resetRoundTrips();
    const before = requests();

    await redis.get(`${P}rt`);
    expect(ep.roundTrips()).toBe(1);
    // Auto-pipelining folds commands issued in the same tick into one /pipeline request.
    await Promise.all([redis.get(`${P}rt`), redis.get(`${P}rt`), redis.exists(`${P}rt`)]);
    expect(ep.roundTrips()).toBe(2);
    await redis.pipeline().get(`${P}rt`).incr(`${P}rt`).exec();
    await redis.multi().get(`${P}rt`).incr(`${P}rt`).exec();
    const limit = new Ratelimit({ redis, limiter: Ratelimit.fixedWindow(10, "1 h"), prefix: `${P}rt-rl`, ephemeralCache: false });
    await limit.limit("a");
    await limit.limit("a");

    expect(ep.roundTrips()).toBe(requests() - before);
    expect(ep.roundTrips()).toBeGreaterThanOrEqual(6);
    const viaHttp = await (await fetch(`${ep.url}/_local/round-trips`)).json();
    expect(viaHttp).toEqual({ roundTrips: ep.roundTrips() });
    await fetch(`${ep.url}/_local/round-trips/reset`, { method: "POST" });
    expect(ep.roundTrips()).toBe(0);
  });

  it("fails fast while down and recovers on none", async () => {
    const fragile = clientFor(ep, { retry: false });
    await fragile.set(`${P}down`, "up");
    ep.resetRoundTrips();
    ep.setFault("down");
    const started = Date.now();
    await expect(fragile.get(`${P}down`)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1_000);
    // retry: false still means one retry: the client loops while attempt <= attempts (1).
    expect(ep.roundTrips()).toBe(2);
    const health = await fetch(`${ep.url}/_local/health`);
    expect(await health.json()).toMatchObject({ ok: true, fault: "down" });

    ep.setFault("none");
    expect(await fragile.get(`${P}down`)).toBe("up");
  });

  it("holds requests while hanging: a client timeout aborts, clearing the fault lets held ones finish", async () => {
    await redis.set(`${P}hang`, "still here");
    const control = await fetch(`${ep.url}/_local/fault`, { method: "POST", body: JSON.stringify({ mode: "hang" }) });
    expect(await control.json()).toEqual({ fault: "hang" });

    const impatient = clientFor(ep, { retry: false, signal: () => AbortSignal.timeout(150) });
    const started = Date.now();
    await expect(impatient.get(`${P}hang`)).rejects.toThrow(/abort|timeout/i);
    expect(Date.now() - started).toBeLessThan(1_000);

    let settled = false;
    const held = redis.get(`${P}hang`).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(settled).toBe(false);
    ep.setFault("none");
    expect(await held).toBe("still here");
  });

  // FLUSHDB on a shared local Redis would wipe others' keys.
  it.skipIf(name !== "embedded")("flushes through the API and the control route", async () => {
    await redis.set(`${P}gone`, 1);
    await ep.flushAll();
    expect(await redis.exists(`${P}gone`)).toBe(0);
    await redis.set(`${P}gone`, 1);
    expect((await fetch(`${ep.url}/_local/flush`, { method: "POST" })).status).toBe(200);
    expect(await redis.exists(`${P}gone`)).toBe(0);
  });
});

// The embedded store stands in for Redis wherever no Redis runs, so its answers, errors included,
// are held to real Redis's, byte for byte, over the protocol.
describe.skipIf(!redisUp)("embedded store against real Redis", () => {
  const P = `test:upstash:diff:${randomUUID().slice(0, 8)}:`;
  const corpus: (string | number)[][] = [
    ["SET", `${P}a`, 1], ["SET", `${P}a`, 2, "nx"], ["SET", `${P}a`, 3, "xx", "get"], ["SET", `${P}b`, "v", "nx", "ex", 10], ["TTL", `${P}b`],
    ["set", `${P}a`, "x", "ex", 0], ["set", `${P}a`, "x", "ex", "abc"], ["set", `${P}a`, "x", "nx", "xx"], ["set", `${P}a`, 1, "keepttl"],
    ["incr", `${P}b`], ["incrby", `${P}n`, 5], ["incrby", `${P}n`, "x"], ["decrby", `${P}n`, 2], ["incrbyfloat", `${P}n`, "0.1"],
    ["set", `${P}fl`, "0.1"], ["incrbyfloat", `${P}fl`, "0.2"], ["hset", `${P}hf`, "f", "0.1"], ["hincrbyfloat", `${P}hf`, "f", "0.2"],
    ["expire", `${P}n`, 100], ["expire", `${P}n`, 50, "nx"], ["expire", `${P}n`, 50, "gt"], ["expire", `${P}n`, 50, "lt"], ["ttl", `${P}n`],
    ["expire", `${P}n`, 5, "nx", "xx"], ["persist", `${P}n`], ["ttl", `${P}n`], ["del", `${P}n`, `${P}zz`], ["exists", `${P}a`, `${P}zz`, `${P}a`],
    ["hset", `${P}h`, "f1", 1, "f2", "x"], ["hset", `${P}h`, "f1"], ["hgetall", `${P}h`], ["hincrby", `${P}h`, "f2", 1], ["hincrbyfloat", `${P}h`, "f1", "0.5"],
    ["hmget", `${P}h`, "f1", "nope"], ["hdel", `${P}h`, "f2", "zz"], ["get", `${P}h`], ["lpush", `${P}b`, "x"], ["mget", `${P}h`, `${P}b`],
    ["mset", `${P}m1`, 1, `${P}m2`, 2], ["mset", `${P}m1`], ["msetnx", `${P}m1`, 1, `${P}m3`, 3],
    ["zadd", `${P}z`, 1, "a", 2, "b", 3, "c"], ["zadd", `${P}z`, "xx", "ch", 5, "a"], ["zadd", `${P}z`, "gt", "lt", 1, "a"], ["zadd", `${P}z`, "incr", 1, "a", 2, "b"],
    ["zadd", `${P}z`, "gt", "ch", 4, "a", 9, "c"], ["zadd", `${P}z`, "nx", "incr", 2.5, "a"], ["zadd", `${P}zx`, "xx", 1, "a"], ["exists", `${P}zx`],
    ["zrange", `${P}z`, 0, -1, "withscores"], ["zrange", `${P}z`, "(2", "+inf", "byscore", "limit", 0, 1], ["zrange", `${P}z`, 0, -1, "limit", 0, 1],
    ["zrevrangebyscore", `${P}z`, "+inf", 3], ["zincrby", `${P}z`, 1.5, "b"], ["zrank", `${P}z`, "b"], ["zcount", `${P}z`, 2, "(7.5"], ["zremrangebyscore", `${P}z`, "-inf", 3],
    ["sadd", `${P}s`, "a", "b", "a"], ["smismember", `${P}s`, "a", "z"], ["srem", `${P}s`, "a", "q"],
    ["rpush", `${P}l`, "a", "b", "c"], ["lpush", `${P}l`, "x", "y"], ["lrange", `${P}l`, -2, 100], ["rpop", `${P}l`, 2], ["lpop", `${P}nol`, 2],
    ["type", `${P}h`], ["getdel", `${P}a`], ["setex", `${P}a`, 0, "v"], ["getex", `${P}a`, "ex", 20], ["rename", `${P}nokey`, `${P}x`],
    ["ping"], ["nosuchcmd", "x", 1], ["get"], ["GeT", `${P}b`, "extra"],
    ["eval", "return {1, 2.7, 'a', false, nil, 3}", 0], ["eval", "return redis.call('incr', KEYS[1])", 1, `${P}s`], ["eval", "return 1 + nil", 0],
    ["eval", "return {err='My Error'}", 0], ["eval", "local x = ", 0], ["eval", "return redis.call('nosuch')", 0], ["eval", "return x", 0],
    ["eval", "return redis.pcall('incr', KEYS[1])", 1, `${P}s`], ["eval", "return redis.call('set', KEYS[1], 1.5)", 1, `${P}f`], ["get", `${P}f`],
    ["eval", "local t = redis.call('hmget', KEYS[1], 'f1', 'nope') return {t[1], tostring(t[2])}", 1, `${P}h`], ["eval", "error({err='TAB'})", 0],
    ["eval", "return 1", 2, "a"], ["evalsha", "0000000000000000000000000000000000000000", 0], ["scan", "x"],
  ];
  const batches: [string, (string | number)[][]][] = [
    ["/pipeline", [["SET", `${P}t`, "a"], ["NOSUCH"], ["INCR", `${P}t`], ["GET", `${P}t`]]],
    ["/multi-exec", [["SET", `${P}t`, "b"], ["INCR", `${P}t`], ["APPEND", `${P}t`, "c"], ["GET", `${P}t`]]],
    ["/multi-exec", [["SET", `${P}t`, "d"], ["NOSUCH"]]],
    ["/multi-exec", [["SET", `${P}t`, "e"], ["GET"]]],
    ["/multi-exec", [["MULTI"]]],
    ["/multi-exec", [["GET", `${P}t`]]],
  ];

  it("answers the corpus exactly as Redis does, plain and base64", async () => {
    const embedded = await startUpstashEndpoint({ token: "t" });
    const real = await startUpstashEndpoint({ token: "t", redisUrl: REDIS_URL });
    const reset = async (): Promise<void> => {
      await embedded.flushAll();
      const keys = (await (await raw(real, "/", ["KEYS", `${P}*`])).json()) as { result: string[] };
      if (keys.result.length > 0) await raw(real, "/", ["DEL", ...keys.result]);
    };
    const encodings: Record<string, string>[] = [{}, { "upstash-encoding": "base64" }];
    try {
      for (const headers of encodings) {
        await reset();
        for (const command of corpus) {
          const [e, r] = await Promise.all(
            [embedded, real].map(async (ep) => {
              const res = await raw(ep, "/", command, headers);
              return `${res.status} ${await res.text()}`;
            }),
          );
          expect({ command, embedded: e }).toEqual({ command, embedded: r });
        }
        for (const [path, commands] of batches) {
          const [e, r] = await Promise.all(
            [embedded, real].map(async (ep) => {
              const res = await raw(ep, path, commands, headers);
              return `${res.status} ${await res.text()}`;
            }),
          );
          expect({ path, commands, embedded: e }).toEqual({ path, commands, embedded: r });
        }
      }
    } finally {
      await reset();
      await Promise.all([embedded.close(), real.close()]);
    }
  });
});
