// Local Upstash-compatible REST endpoint (real Redis or embedded store) with round-trip counting and fault injection.
import { createHash } from "node:crypto";
import http from "node:http";
import IORedis, { ReplyError } from "ioredis";
import { listen, readBody } from "./net-util";

export interface UpstashEndpoint {
  port: number;
  url: string;
  token: string;
  backend: "redis" | "embedded";
  roundTrips(): number;
  resetRoundTrips(): void;
  setFault(mode: FaultMode): void;
  flushAll(): Promise<void>;
  close(): Promise<void>;
}

export type FaultMode = "none" | "down" | "hang";

/** A RESP2 reply as the backends hand it over: bulk and status strings alike as string or bytes. */
export type Reply = null | number | string | Uint8Array | Reply[];

/** An error reply from Redis; its message goes to the client verbatim, so it must be worded as Redis words it. */
export class CommandError extends Error {
  override name = "CommandError";
}

export interface Backend {
  readonly kind: "redis" | "embedded";
  /** Must put the command on the wire before returning, so a pipeline issued in a loop keeps its order. */
  command(args: string[]): Promise<Reply>;
  /** Rejects with a CommandError when Redis discards the whole transaction (EXECABORT). */
  transaction(commands: string[][]): Promise<(Reply | CommandError)[]>;
  ping(): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

// Commands that would change the state of a shared connection or park it; Upstash's REST API has
// its own endpoints (multi-exec) or none for them.
const REFUSED = new Set([
  "multi", "exec", "discard", "watch", "unwatch", "select", "swapdb", "quit", "reset", "hello", "auth",
  "client", "monitor", "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
  "sunsubscribe", "shutdown", "sync", "psync", "replicaof", "slaveof", "debug", "wait", "waitaof",
  "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
]);

function refusal(args: string[]): string | undefined {
  const name = (args[0] ?? "").toLowerCase();
  if (REFUSED.has(name)) return `ERR Command is not available over the REST API: '${name}'`;
  if ((name === "xread" || name === "xreadgroup") && args.some((a) => a.toLowerCase() === "block")) {
    return `ERR Command is not available over the REST API: '${name}' with BLOCK`;
  }
  return undefined;
}

export async function startUpstashEndpoint(opts: {
  host?: string;
  port?: number;
  token: string;
  redisUrl?: string;
}): Promise<UpstashEndpoint> {
  // Imported on demand: the embedded store pulls in a Lua VM that a real-Redis endpoint never needs.
  const backend = opts.redisUrl
    ? await createRedisBackend(opts.redisUrl)
    : (await import("./embedded-redis")).createEmbeddedBackend();
  const host = opts.host ?? "127.0.0.1";
  let roundTrips = 0;
  let syncToken = 0;
  let fault: FaultMode = "none";
  const parked = new Set<() => void>();

  const setFault = (mode: FaultMode): void => {
    fault = mode;
    if (mode === "hang") return;
    for (const resume of [...parked]) resume();
  };

  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, {
      "content-type": "application/json",
      "upstash-sync-token": String(++syncToken),
    });
    res.end(JSON.stringify(body));
  };

  const handleControl = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> => {
    const route = `${req.method} ${path}`;
    if (route === "GET /_local/round-trips") return send(res, 200, { roundTrips });
    if (route === "POST /_local/round-trips/reset") {
      roundTrips = 0;
      return send(res, 200, { roundTrips });
    }
    if (route === "POST /_local/fault") {
      const body = parseJson(await readBody(req)) as { mode?: unknown } | undefined;
      if (body?.mode !== "none" && body?.mode !== "down" && body?.mode !== "hang") {
        return send(res, 400, { error: 'body must be {"mode": "none" | "down" | "hang"}' });
      }
      setFault(body.mode);
      return send(res, 200, { fault });
    }
    if (route === "POST /_local/flush") {
      await backend.flush();
      return send(res, 200, { flushed: true });
    }
    if (route === "GET /_local/health") {
      const ok = await backend.ping().then(() => true, () => false);
      return send(res, ok ? 200 : 503, { ok, backend: backend.kind, fault });
    }
    send(res, 404, { error: `no control route ${route}` });
  };

  // Resolves when the fault changes (true) or the client gives up (false).
  const waitOutHang = (req: http.IncomingMessage): Promise<boolean> =>
    new Promise((resolve) => {
      const resume = (): void => {
        parked.delete(resume);
        req.socket.off("close", abandon);
        resolve(true);
      };
      const abandon = (): void => {
        parked.delete(resume);
        resolve(false);
      };
      if (req.socket.destroyed) return resolve(false);
      parked.add(resume);
      req.socket.once("close", abandon);
    });

  // A fault comes before the token check: an unreachable host answers nobody, not even with a 401.
  const handleData = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const authed = authorized(req, url, opts.token);
    if (authed) roundTrips++;
    while (fault === "hang") {
      if (!(await waitOutHang(req))) return;
    }
    if (fault === "down") {
      req.socket.destroy();
      return;
    }
    if (!authed) return send(res, 401, { error: "Unauthorized" });
    const body = await readBody(req);
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const entry = (r: Reply | CommandError): unknown =>
      r instanceof CommandError ? { error: r.message } : { result: encodeReply(r, base64, true) };
    try {
      if (url.pathname === "/pipeline" || url.pathname === "/multi-exec") {
        const commands = parseCommandList(body);
        if (!commands) return send(res, 400, { error: "ERR failed to parse pipeline request" });
        if (url.pathname === "/multi-exec") {
          const refused = commands.map(refusal).find((r) => r !== undefined);
          if (refused) return send(res, 400, { error: refused });
          return send(res, 200, (await backend.transaction(commands)).map(entry));
        }
        const results = await Promise.all(
          commands.map((c) => {
            const refused = refusal(c);
            return refused ? new CommandError(refused) : backend.command(c).catch(commandErrorOnly);
          }),
        );
        return send(res, 200, results.map(entry));
      }
      const command = url.pathname === "/" ? parseCommand(parseJson(body)) : pathCommand(url, body);
      if (!command) return send(res, 400, { error: "ERR failed to parse command" });
      const refused = refusal(command);
      if (refused) return send(res, 400, { error: refused });
      send(res, 200, entry(await backend.command(command)));
    } catch (err) {
      if (err instanceof CommandError) return send(res, 400, { error: err.message });
      send(res, 500, { error: `ERR backend failure: ${(err as Error).message}` });
    }
  };

  const server = http.createServer((req, res) => {
    res.setHeader("access-control-allow-origin", req.headers.origin ?? "*");
    res.setHeader("access-control-expose-headers", "upstash-sync-token");
    res.setHeader("vary", "origin");
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        "access-control-allow-methods": "GET, HEAD, POST, PUT, OPTIONS",
        "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "*",
        "access-control-max-age": "86400",
      });
      res.end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://local");
    const work = url.pathname.startsWith("/_local/")
      ? handleControl(req, res, url.pathname)
      : ["GET", "HEAD", "POST", "PUT"].includes(req.method ?? "")
        ? handleData(req, res, url)
        : Promise.resolve(send(res, 405, { error: "Method Not Allowed" }));
    work.catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, { error: `ERR ${(err as Error).message}` });
      else res.destroy();
    });
  });

  let port: number;
  try {
    port = await listen(server, host, opts.port);
  } catch (err) {
    await backend.close();
    throw err;
  }

  return {
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    token: opts.token,
    backend: backend.kind,
    roundTrips: () => roundTrips,
    resetRoundTrips: () => {
      roundTrips = 0;
    },
    setFault,
    flushAll: () => backend.flush(),
    close: async () => {
      fault = "down";
      for (const resume of [...parked]) resume();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await backend.close();
    },
  };
}

// In a pipeline a Redis error belongs to its command; anything else (Redis unreachable) fails the request.
function commandErrorOnly(err: unknown): CommandError {
  if (err instanceof CommandError) return err;
  throw err;
}

function authorized(req: http.IncomingMessage, url: URL, token: string): boolean {
  const header = req.headers.authorization ?? "";
  const given = header.startsWith("Bearer ") ? header.slice(7) : url.searchParams.get("_token");
  return given === token;
}


function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Upstash takes numbers and booleans as arguments; Redis only has strings. A JSON null (the ratelimit
// reset script sends one) becomes the empty string, as ioredis does.
function parseCommand(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const args: string[] = [];
  for (const v of value) {
    if (typeof v === "string") args.push(v);
    else if (typeof v === "number" || typeof v === "boolean") args.push(String(v));
    else if (v === null) args.push("");
    else return undefined;
  }
  return args[0] ? args : undefined;
}

function parseCommandList(body: string): string[][] | undefined {
  const value = parseJson(body);
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const commands = value.map(parseCommand);
  return commands.every((c) => c !== undefined) ? (commands as string[][]) : undefined;
}

// Path style: /cmd/arg1/arg2, a POST body appended as the last argument, then ?NAME=value pairs.
function pathCommand(url: URL, body: string): string[] | undefined {
  const args = url.pathname.split("/").filter((s) => s !== "").map(decodeURIComponent);
  if (args.length === 0) return undefined;
  if (body !== "") args.push(body);
  for (const [name, value] of url.searchParams) {
    if (name === "_token") continue;
    args.push(name);
    if (value !== "") args.push(value);
  }
  return args;
}

// Upstash base64-encodes every string of the result except a top-level "OK", so binary values survive
// JSON; @upstash/redis decodes strings (nested ones too) and leaves numbers and nulls alone.
function encodeReply(reply: Reply, base64: boolean, topLevel: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64, false));
  const bytes = typeof reply === "string" ? Buffer.from(reply, "utf8") : Buffer.from(reply);
  if (!base64) return bytes.toString("utf8");
  if (topLevel && bytes.length === 2 && bytes.toString("latin1") === "OK") return "OK";
  return bytes.toString("base64");
}

// Real Redis rejects the Upstash-only shebang flags the ratelimit scripts carry (flags=allow-key-locking),
// and Redis before 7 rejects any shebang; so a script loses its shebang line (kept as a blank line for
// line numbers) and the script's own SHA1 is mapped to the stripped body for EVALSHA.
function stripShebang(script: string): string | undefined {
  return script.startsWith("#!") ? script.replace(/^#![^\n]*/, "") : undefined;
}

const sha1 = (text: string): string => createHash("sha1").update(text).digest("hex");

async function createRedisBackend(url: string): Promise<Backend> {
  const options = { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 };
  const main = new IORedis(url, options);
  // MULTI/EXEC has its own connection so no other request's command lands inside a transaction.
  const tx = new IORedis(url, options);
  for (const conn of [main, tx]) conn.on("error", () => {});
  try {
    await Promise.all([main.connect(), tx.connect()]);
  } catch (err) {
    main.disconnect();
    tx.disconnect();
    throw new Error(`cannot reach Redis at ${url}: ${(err as Error).message}`);
  }

  const stripped = new Map<string, string>();
  const rewrite = (args: string[]): string[] => {
    const name = (args[0] ?? "").toLowerCase();
    if ((name === "eval" || name === "eval_ro") && args[1] !== undefined) {
      const body = stripShebang(args[1]);
      if (body === undefined) return args;
      stripped.set(sha1(args[1]), body);
      return [args[0]!, body, ...args.slice(2)];
    }
    if ((name === "evalsha" || name === "evalsha_ro") && args[1] !== undefined) {
      const body = stripped.get(args[1].toLowerCase());
      return body === undefined ? args : [name === "evalsha" ? "EVAL" : "EVAL_RO", body, ...args.slice(2)];
    }
    if (name === "script" && args[1]?.toLowerCase() === "exists") {
      return [...args.slice(0, 2), ...args.slice(2).map((s) => {
        const body = stripped.get(s.toLowerCase());
        return body === undefined ? s : sha1(body);
      })];
    }
    if (name === "script" && args[1]?.toLowerCase() === "flush") stripped.clear();
    return args;
  };
  const scriptLoad = async (args: string[]): Promise<Reply> => {
    const body = stripShebang(args[2]!);
    if (body === undefined) return call(main, args);
    await call(main, [args[0]!, args[1]!, body]);
    stripped.set(sha1(args[2]!), body);
    return sha1(args[2]!);
  };

  return {
    kind: "redis",
    command(args) {
      const isLoad = args[0]?.toLowerCase() === "script" && args[1]?.toLowerCase() === "load" && args.length === 3;
      return isLoad ? scriptLoad(args) : call(main, rewrite(args));
    },
    async transaction(commands) {
      const multi = tx.multi();
      for (const c of commands) {
        const [name, ...rest] = rewrite(c);
        multi.callBuffer(rawName(name!), ...rest);
      }
      let results: [Error | null, unknown][] | null;
      try {
        results = await multi.exec();
      } catch (err) {
        throw err instanceof ReplyError ? new CommandError((err as Error).message) : err;
      }
      // Null only answers a failed WATCH, and nothing here WATCHes.
      if (!results) throw new Error("EXEC returned no results");
      return results.map(([err, value]) => (err ? new CommandError(err.message) : (value as Reply)));
    },
    async ping() {
      await main.ping();
    },
    async flush() {
      await main.flushdb();
    },
    async close() {
      await Promise.allSettled([main.quit(), tx.quit()]);
    },
  };
}

// ioredis turns an `hgetall` reply into an object, keyed by the lower-case name; Upstash returns the
// flat array, so that one name goes in upper case. Others stay as sent: Redis echoes unknown names.
const rawName = (name: string): string => (name.toLowerCase() === "hgetall" ? "HGETALL" : name);

async function call(conn: IORedis, args: string[]): Promise<Reply> {
  const [name, ...rest] = args;
  try {
    return (await conn.callBuffer(rawName(name!), ...rest)) as Reply;
  } catch (err) {
    throw err instanceof ReplyError ? new CommandError((err as Error).message) : err;
  }
}
