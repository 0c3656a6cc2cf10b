// Local Neon-compatible endpoint (HTTP /sql and the /v2 WebSocket proxy) with per-database round-trip counters and fault injection.
import { EventEmitter } from "node:events";
import { appendFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import pg from "pg";
import { WebSocketServer, type WebSocket } from "ws";
import { MessageReader, PROTOCOL_V3, encodeMessage, encodeStartup, errorResponse, parseStartup } from "./pg-wire";
import { listen, readBody } from "./net-util";

/** `slow` adds a fixed latency (default 300 ms) to every HTTP query of the database. */
export type FaultMode = "none" | "down" | "hang" | "slow";

export interface NeonEndpoint {
  port: number;
  /** value for neonConfig.fetchEndpoint, e.g. http://127.0.0.1:PORT/sql */
  fetchEndpoint: string;
  /** value for neonConfig.wsProxy, e.g. 127.0.0.1:PORT/v2 (used with useSecureWebSocket=false) */
  wsProxy: string;
  /** keyed by database name as it appears in the client's connection string */
  roundTrips(): Record<string, number>;
  resetRoundTrips(): void;
  setFault(database: string, mode: FaultMode, latencyMs?: number): void;
  close(): Promise<void>;
}

interface Backend {
  host: string;
  port: number;
  database: string;
  password: string | undefined;
}

interface SqlQuery {
  query: string;
  params: (string | null)[];
}

/** A single query, or a batch run as one transaction opened by `begin`. */
type SqlRequest = { query: SqlQuery } | { begin: string; queries: SqlQuery[] };

class BadRequest extends Error {}

const FAULT_MODES: readonly string[] = ["none", "down", "hang", "slow"] satisfies FaultMode[];

const ISOLATION_LEVELS: Record<string, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

// The fields the driver copies from a 400 body onto NeonDbError.
const ERROR_FIELDS = [
  "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;

// Neon answers with Postgres' text output and lets the driver parse it, so pg must not parse anything.
const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

const TERMINATE = encodeMessage("X", Buffer.alloc(0));

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-max-age": "86400",
};

export async function startNeonEndpoint(opts: {
  host?: string;
  port?: number;
  /** database name as written in the client's connection string → backend URL (host, port, real database name; the user comes from the client) */
  backends: Record<string, string>;
}): Promise<NeonEndpoint> {
  const host = opts.host ?? "127.0.0.1";
  const backends = new Map(Object.entries(opts.backends).map(([name, url]) => [name, parseBackend(url)]));
  const counts = new Map<string, number>();
  const faults = new Map<string, FaultMode>();
  // Emits `<database>` with the new mode whenever a fault changes, for held requests and live proxies.
  const faultChanges = new EventEmitter().setMaxListeners(0);
  const pools = new Map<string, pg.Pool>();
  const exclusiveBackends = new Map<string, Promise<boolean>>();

  const resetRoundTrips = () => {
    for (const name of backends.keys()) counts.set(name, 0);
  };
  resetRoundTrips();
  const countRoundTrip = (database: string, n = 1) => counts.set(database, (counts.get(database) ?? 0) + n);
  const faultOf = (database: string): FaultMode => faults.get(database) ?? "none";

  const latencies = new Map<string, number>();
  /**
   * One-shot: the next transaction of the database with a statement containing `match` runs up to that statement,
   * then its connection dies (the server rolls it back, the client sees a reset): a fault in the middle of a batch.
   */
  const midTransaction = new Map<string, string>();
  const setFault = (database: string, mode: FaultMode, latencyMs = 300) => {
    if (!backends.has(database)) throw new BadRequest(`unknown database "${database}"`);
    if (!FAULT_MODES.includes(mode)) throw new BadRequest(`unknown fault mode "${String(mode)}"`);
    if (!Number.isFinite(latencyMs) || latencyMs < 0 || latencyMs > 60_000) throw new BadRequest("latencyMs must be 0 to 60000");
    faults.set(database, mode);
    latencies.set(database, latencyMs);
    faultChanges.emit(database, mode);
  };

  /** Resolves once `database` is not hanging; false if the client went away meanwhile. */
  const untilNotHanging = async (database: string, res: http.ServerResponse): Promise<boolean> => {
    while (faultOf(database) === "hang") {
      const stillWaiting = await new Promise<boolean>((resolve) => {
        const done = (value: boolean) => {
          faultChanges.off(database, onChange);
          res.off("close", onClose);
          resolve(value);
        };
        const onChange = () => done(true);
        const onClose = () => done(false);
        faultChanges.on(database, onChange);
        res.on("close", onClose);
      });
      if (!stillWaiting) return false;
    }
    return true;
  };

  const poolFor = (name: string, backend: Backend, user: string, password: string | undefined): pg.Pool => {
    const key = JSON.stringify([name, user, password]);
    let pool = pools.get(key);
    if (!pool) {
      pool = new pg.Pool({
        host: backend.host,
        port: backend.port,
        database: backend.database,
        user,
        password: password ?? backend.password,
        max: 5,
        idleTimeoutMillis: 10_000,
        allowExitOnIdle: true,
      });
      // An idle client whose backend went away is dropped by the pool; the next request reconnects.
      pool.on("error", () => {});
      pools.set(key, pool);
    }
    return pool;
  };

  /**
   * The PGlite server gives each connection the whole database until it closes, so an idle pooled
   * connection would lock every other client out: against PGlite, connections are closed after each request.
   */
  const isExclusive = (name: string, client: pg.PoolClient): Promise<boolean> => {
    let probe = exclusiveBackends.get(name);
    if (!probe) {
      probe = client.query<{ version: string }>("select version()").then((r) => /PGlite/.test(r.rows[0]?.version ?? ""));
      probe.catch(() => exclusiveBackends.delete(name));
      exclusiveBackends.set(name, probe);
    }
    return probe;
  };

  const handleSql = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const target = parseConnectionString(req.headers["neon-connection-string"]);
    if (req.headers["neon-raw-text-output"] !== "true" || req.headers["neon-array-mode"] !== "true") {
      throw new BadRequest("only Neon-Raw-Text-Output: true with Neon-Array-Mode: true is supported");
    }
    const backend = backends.get(target.database);
    if (!backend) {
      return sendJson(res, 400, { message: `database "${target.database}" does not exist`, code: "3D000" });
    }
    countRoundTrip(target.database);
    if (!(await untilNotHanging(target.database, res))) return;
    if (faultOf(target.database) === "slow") await new Promise((resolve) => setTimeout(resolve, latencies.get(target.database) ?? 300));
    if (faultOf(target.database) === "down") {
      // Like an unreachable host: no status, no body, just a reset.
      req.socket.destroy();
      return;
    }
    const request = parseSqlRequest(await readBody(req), req.headers);
    const started = performance.now();

    const pool = poolFor(target.database, backend, target.user, target.password);
    try {
      const client = await pool.connect();
      let discard = false;
      try {
        discard = await isExclusive(target.database, client);
        const dieAt = "query" in request ? -1 : request.queries.findIndex((q) => q.query.includes(midTransaction.get(target.database) ?? "\u0000"));
        if (dieAt >= 0 && !("query" in request)) {
          midTransaction.delete(target.database);
          discard = true;
          await client.query(request.begin);
          for (const query of request.queries.slice(0, dieAt + 1)) await runQuery(client, query);
          await client.query("ROLLBACK");
          req.socket.destroy();
          return;
        }
        const payload =
          "query" in request
            ? await runQuery(client, request.query)
            : { results: await runBatch(client, request.begin, request.queries) };
        sendJson(res, 200, payload);
        if (traceFile) traceRequest(traceFile, target.database, request, payload, started);
      } catch (error) {
        discard ||= !(error instanceof pg.DatabaseError);
        throw error;
      } finally {
        client.release(discard);
      }
    } catch (error) {
      if (!(error instanceof pg.DatabaseError)) throw error;
      const payload: Record<string, unknown> = { message: error.message };
      for (const field of ERROR_FIELDS) payload[field] = error[field];
      sendJson(res, 400, payload);
    }
  };

  const handleLocal = async (path: string, req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method === "GET" && path === "/_local/health") return sendJson(res, 200, { ok: true });
    if (req.method === "GET" && path === "/_local/round-trips") return sendJson(res, 200, Object.fromEntries(counts));
    if (req.method === "POST" && path === "/_local/round-trips/reset") {
      resetRoundTrips();
      return sendJson(res, 200, Object.fromEntries(counts));
    }
    if (req.method === "POST" && path === "/_local/fault/mid-transaction") {
      const { database, match } = parseJson(await readBody(req)) as { database?: unknown; match?: unknown };
      if (!backends.has(String(database))) throw new BadRequest(`unknown database "${String(database)}"`);
      if (typeof match !== "string" || match.length < 3) throw new BadRequest("match must be a statement fragment of 3 characters or more");
      midTransaction.set(String(database), match);
      return sendJson(res, 200, { database, match });
    }
    if (req.method === "POST" && path === "/_local/fault") {
      const { database, mode, latencyMs } = parseJson(await readBody(req)) as { database?: unknown; mode?: unknown; latencyMs?: unknown };
      setFault(String(database), mode as FaultMode, latencyMs === undefined ? undefined : Number(latencyMs));
      return sendJson(res, 200, { database, mode });
    }
    sendJson(res, 404, { message: `no route ${req.method} ${path}` });
  };

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const handled =
      req.method === "OPTIONS"
        ? Promise.resolve(preflight(req, res))
        : req.method === "POST" && path === "/sql"
          ? handleSql(req, res)
          : handleLocal(path, req, res);
    handled.catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const status = error instanceof BadRequest ? 400 : 502;
      sendJson(res, status, { message: error instanceof Error ? error.message : String(error) });
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== "/v2") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) =>
      proxy(ws, { backends, countRoundTrip, faultOf, faultChanges }),
    );
  });

  const port = await listen(server, host, opts.port);

  return {
    port,
    fetchEndpoint: `http://${host}:${port}/sql`,
    wsProxy: `${host}:${port}/v2`,
    roundTrips: () => Object.fromEntries(counts),
    resetRoundTrips,
    setFault,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.all([...pools.values()].map((pool) => pool.end()));
    },
  };
}

/**
 * One WebSocket = one raw Postgres connection. The target is only known from the startup packet
 * (the `address` query parameter names the client's host, not the database), so a `down` database
 * is refused by dropping the socket right after the startup packet instead of at the upgrade.
 */
function proxy(
  ws: WebSocket,
  ctx: {
    backends: Map<string, Backend>;
    countRoundTrip: (database: string, n?: number) => void;
    faultOf: (database: string) => FaultMode;
    faultChanges: EventEmitter;
  },
): void {
  const reader = new MessageReader();
  let target: { database: string; backend: Backend } | undefined;
  let messagesBeforeRouting = 0;
  let upstream: net.Socket | undefined;
  let hung = false;
  // Client bytes not yet forwarded: while the backend is hanging they wait, as TCP would.
  let queued: Buffer[] = [];

  const flush = (socket: net.Socket) => {
    for (const chunk of queued) socket.write(chunk);
    queued = [];
  };

  const connect = (backend: Backend) => {
    upstream = net.connect(backend.port, backend.host);
    upstream.setNoDelay(true);
    upstream.on("data", (data) => ws.send(data));
    upstream.on("error", () => {});
    upstream.on("close", () => ws.close());
    flush(upstream);
  };

  // Synchronous, so that a fault change arriving before the socket's 'close' event cannot flush the queue.
  const shutdown = () => {
    if (target) ctx.faultChanges.off(target.database, onFault);
    queued = [];
    upstream?.destroy();
    ws.terminate();
  };

  const onFault = (mode: FaultMode) => {
    if (mode === "down") return shutdown();
    hung = mode === "hang";
    if (hung) return upstream?.pause();
    if (!upstream) return connect(target!.backend);
    flush(upstream);
    upstream.resume();
  };

  const refuse = (code: string, message: string) => {
    ws.send(errorResponse("FATAL", code, message));
    ws.close();
  };

  const route = () => {
    const packet = reader.takeUntyped();
    if (!packet) return;
    const { code, params } = parseStartup(packet);
    if (code !== PROTOCOL_V3) return refuse("08P01", `unsupported frontend protocol ${code}`);
    const database = params.database ?? params.user ?? "";
    const backend = ctx.backends.get(database);
    if (!backend) return refuse("3D000", `database "${database}" does not exist`);
    target = { database, backend };
    ctx.countRoundTrip(database, messagesBeforeRouting);
    if (ctx.faultOf(database) === "down") return shutdown();
    ctx.faultChanges.on(database, onFault);
    // The backend's real database name may differ from the one the client asked for.
    queued = [encodeStartup({ ...params, database: backend.database }), reader.drain()];
    hung = ctx.faultOf(database) === "hang";
    if (!hung) connect(backend);
  };

  ws.on("message", (data) => {
    // With the default binaryType ("nodebuffer") every message arrives as one Buffer.
    const chunk = data as Buffer;
    if (!target) {
      messagesBeforeRouting++;
      reader.push(chunk);
      try {
        route();
      } catch {
        ws.terminate();
      }
      return;
    }
    // A lone Terminate is sent while closing and awaits no reply: not a round trip.
    if (!chunk.equals(TERMINATE)) ctx.countRoundTrip(target.database);
    if (hung || !upstream) queued.push(chunk);
    else upstream.write(chunk);
  });
  ws.on("error", () => {});
  ws.on("close", shutdown);
}

function parseBackend(url: string): Backend {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    database: decodeURIComponent(parsed.pathname.slice(1)),
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
  };
}

function parseConnectionString(header: string | string[] | undefined): {
  user: string;
  password: string | undefined;
  database: string;
} {
  if (typeof header !== "string") throw new BadRequest("missing Neon-Connection-String header");
  let url: URL;
  try {
    url = new URL(header);
  } catch {
    throw new BadRequest("Neon-Connection-String is not a valid URL");
  }
  const user = decodeURIComponent(url.username);
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!user || !database) throw new BadRequest("Neon-Connection-String must name a user and a database");
  return { user, password: url.password ? decodeURIComponent(url.password) : undefined, database };
}

function parseSqlRequest(text: string, headers: http.IncomingHttpHeaders): SqlRequest {
  const body = parseJson(text) as { queries?: unknown };
  if (body === null || typeof body !== "object") throw new BadRequest("request body must be a JSON object");
  if (!("queries" in body)) return { query: parseSqlQuery(body) };
  if (!Array.isArray(body.queries)) throw new BadRequest('"queries" must be an array');
  return { begin: beginStatement(headers), queries: body.queries.map(parseSqlQuery) };
}

function parseSqlQuery(value: unknown): SqlQuery {
  const { query, params = [] } = (value ?? {}) as { query?: unknown; params?: unknown };
  if (typeof query !== "string") throw new BadRequest('"query" must be a string');
  if (!Array.isArray(params) || !params.every((p) => p === null || typeof p === "string")) {
    throw new BadRequest('"params" must be an array of strings or nulls');
  }
  return { query, params: params as (string | null)[] };
}

function beginStatement(headers: http.IncomingHttpHeaders): string {
  const parts = ["BEGIN"];
  const isolation = headers["neon-batch-isolation-level"];
  if (typeof isolation === "string") {
    const level = ISOLATION_LEVELS[isolation];
    if (!level) throw new BadRequest(`unknown Neon-Batch-Isolation-Level "${isolation}"`);
    parts.push(`ISOLATION LEVEL ${level}`);
  }
  const readOnly = booleanHeader(headers, "neon-batch-read-only");
  if (readOnly !== undefined) parts.push(readOnly ? "READ ONLY" : "READ WRITE");
  const deferrable = booleanHeader(headers, "neon-batch-deferrable");
  if (deferrable !== undefined) parts.push(deferrable ? "DEFERRABLE" : "NOT DEFERRABLE");
  return parts.join(" ");
}

function booleanHeader(headers: http.IncomingHttpHeaders, name: string): boolean | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (value !== "true" && value !== "false") throw new BadRequest(`${name} must be true or false`);
  return value === "true";
}

async function runQuery(client: pg.PoolClient, { query, params }: SqlQuery) {
  // Extended protocol even without parameters, as Neon does: one statement per query, never a multi-statement string.
  const config: pg.QueryArrayConfig & { queryMode: "extended" } = {
    text: query,
    values: params,
    rowMode: "array",
    types: RAW_TEXT,
    queryMode: "extended",
  };
  const result = await client.query(config);
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows,
    fields: result.fields.map((f) => ({
      name: f.name,
      tableID: f.tableID,
      columnID: f.columnID,
      dataTypeID: f.dataTypeID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: "text",
    })),
    rowAsArray: true,
  };
}

async function runBatch(client: pg.PoolClient, begin: string, queries: SqlQuery[]) {
  await client.query(begin);
  try {
    const results = [];
    for (const query of queries) results.push(await runQuery(client, query));
    await client.query("COMMIT");
    return results;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

function preflight(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(204, {
    ...CORS_HEADERS,
    "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "*",
  });
  res.end();
}

/**
 * A benchmark's diagnosis aid: with NEON_ENDPOINT_TRACE=<file>, each HTTP round trip appends one line (database,
 * statements, the last one's start, rows and bytes answered, ms in Postgres), to see which statements a path makes.
 */
const traceFile = process.env.NEON_ENDPOINT_TRACE;

function traceRequest(file: string, database: string, request: SqlRequest, payload: unknown, started: number): void {
  const queries = "query" in request ? [request.query] : request.queries;
  const last = queries[queries.length - 1]!.query.replace(/\s+/g, " ").trim().slice(0, 120);
  const results = "results" in (payload as object) ? (payload as { results: Array<{ rows: unknown[] }> }).results : [payload as { rows: unknown[] }];
  const rows = results.reduce((n, r) => n + (r.rows?.length ?? 0), 0);
  const line = { database, statements: queries.length, last, rows, bytes: JSON.stringify(payload).length, ms: +(performance.now() - started).toFixed(2) };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...CORS_HEADERS, "content-type": "application/json" });
  res.end(JSON.stringify(body));
}


function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest("request body is not valid JSON");
  }
}
