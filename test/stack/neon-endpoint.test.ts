// Drives the local Neon endpoint with the real @neondatabase/serverless driver, over PGlite and (when reachable) a real PostgreSQL.
import { randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import { NeonDbError, Pool, neon, neonConfig } from "@neondatabase/serverless";
import pg from "pg";
import ws from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNeonEndpoint, type NeonEndpoint } from "../../scripts/stack/neon-endpoint";
import { startPgliteServer } from "../../scripts/stack/pglite-server";

const REAL_POSTGRES = "postgres://postgres@127.0.0.1:5432";
const realPostgresReachable = await exec(`${REAL_POSTGRES}/postgres`, "SELECT 1").then(
  () => true,
  () => false,
);

// Tables and a non-superuser login role, as the migrations would create them.
const SCHEMA = (role: string) => `
  CREATE ROLE ${role} LOGIN;
  CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
  GRANT SELECT, INSERT ON items TO ${role};
`;

interface Stack {
  endpoint: NeonEndpoint;
  role: string;
  teardown(): Promise<void>;
}

/** PGlite databases are named differently behind the endpoint to prove the name is mapped. */
async function pgliteStack(role: string): Promise<Stack> {
  const [oltp, olap] = await Promise.all([PGlite.create(), PGlite.create()]);
  await oltp.exec(SCHEMA(role));
  await olap.exec(SCHEMA(role));
  const server = await startPgliteServer({ databases: { edp_oltp: oltp, edp_olap: olap } });
  const endpoint = await startNeonEndpoint({
    backends: { oltp: server.url("edp_oltp"), olap: server.url("edp_olap") },
  });
  return {
    endpoint,
    role,
    async teardown() {
      await endpoint.close();
      await server.close();
      await Promise.all([oltp.close(), olap.close()]);
    },
  };
}

async function realPostgresStack(role: string): Promise<Stack> {
  const prefix = `neon_endpoint_test_${randomBytes(4).toString("hex")}`;
  const admin = `${REAL_POSTGRES}/postgres`;
  const dropScratch = () =>
    exec(
      admin,
      `DROP DATABASE IF EXISTS ${prefix}_oltp WITH (FORCE)`,
      `DROP DATABASE IF EXISTS ${prefix}_olap WITH (FORCE)`,
      `DROP ROLE IF EXISTS ${role}`,
    );
  try {
    await exec(admin, `CREATE DATABASE ${prefix}_oltp`, `CREATE DATABASE ${prefix}_olap`, `CREATE ROLE ${role} LOGIN`);
    const schema = SCHEMA(role).replace(/CREATE ROLE [^;]+;/, "");
    await exec(`${REAL_POSTGRES}/${prefix}_oltp`, schema);
    await exec(`${REAL_POSTGRES}/${prefix}_olap`, schema);
    const endpoint = await startNeonEndpoint({
      backends: { oltp: `${REAL_POSTGRES}/${prefix}_oltp`, olap: `${REAL_POSTGRES}/${prefix}_olap` },
    });
    return {
      endpoint,
      role,
      async teardown() {
        await endpoint.close();
        await dropScratch();
      },
    };
  } catch (error) {
    await dropScratch();
    throw error;
  }
}

async function exec(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

async function elapsedMs(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function isSettled(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  { backend: "pglite", available: true, start: pgliteStack },
  { backend: "postgres", available: realPostgresReachable, start: realPostgresStack },
])("neon endpoint over $backend", ({ available, start }) => {
  if (!available) {
    it.skip("needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust)", () => {});
    return;
  }

  let starting: Promise<Stack> | undefined;
  let stack: Stack;
  let endpoint: NeonEndpoint;
  const oltp = () => neon("postgres://postgres:pw@db.local/oltp");
  const olap = () => neon("postgres://postgres:pw@db.local/olap");
  const local = (path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${endpoint.port}${path}`, init);

  beforeAll(async () => {
    starting = start(`neon_endpoint_app_${randomBytes(4).toString("hex")}`);
    stack = await starting;
    endpoint = stack.endpoint;
    neonConfig.fetchEndpoint = endpoint.fetchEndpoint;
    neonConfig.wsProxy = endpoint.wsProxy;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineConnect = false;
    neonConfig.webSocketConstructor = ws;
  }, 30_000);

  afterAll(async () => {
    // Also tears down a stack that finished starting only after beforeAll timed out.
    const started = await starting?.catch(() => undefined);
    await started?.teardown();
  });

  it("returns Postgres values with the driver's types", async () => {
    const sql = oltp();
    const [row] = await sql`
      SELECT 42::int AS int, 9007199254740993::bigint AS bigint, 1.50::numeric AS numeric, true AS bool,
             '2024-01-02 03:04:05.678+00'::timestamptz AS ts, '{"a":[1,"x"]}'::jsonb AS jsonb,
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS uuid, ARRAY['a', 'b c', NULL]::text[] AS arr,
             '\\xdeadbeef'::bytea AS bytes, NULL::text AS nothing`;
    expect(row).toMatchObject({
      int: 42,
      bigint: "9007199254740993",
      numeric: "1.50",
      bool: true,
      jsonb: { a: [1, "x"] },
      uuid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      arr: ["a", "b c", null],
      nothing: null,
    });
    expect((row!.ts as Date).toISOString()).toBe("2024-01-02T03:04:05.678Z");
    expect(Buffer.from(row!.bytes as Uint8Array).toString("hex")).toBe("deadbeef");

    const full = await sql.query("SELECT 1::int AS one FROM generate_series(1, 3)", [], { fullResults: true });
    expect(full).toMatchObject({ command: "SELECT", rowCount: 3, fields: [{ name: "one", dataTypeID: 23 }] });
  });

  it("binds parameters, including bytea and null", async () => {
    const sql = oltp();
    const name = "ünïcode 'quoted'";
    const [tagged] = await sql`SELECT ${name}::text AS name, ${7}::int + 1 AS next`;
    expect(tagged).toEqual({ name, next: 8 });
    const [row] = await sql.query("SELECT $1::bytea AS bytes, $2::text IS NULL AS was_null, $3::int[] AS ints", [
      Buffer.from([0, 1, 255]),
      null,
      [1, 2, 3],
    ]);
    expect(Buffer.from(row!.bytes as Uint8Array).toString("hex")).toBe("0001ff");
    expect(row).toMatchObject({ was_null: true, ints: [1, 2, 3] });
  });

  it("runs sql.transaction as one atomic round trip", async () => {
    const sql = oltp();
    endpoint.resetRoundTrips();
    const inserted = await sql.transaction([
      sql`INSERT INTO items VALUES (1, 'one'), (2, 'two')`,
      sql`SELECT count(*)::int AS n FROM items WHERE id IN (1, 2)`,
    ]);
    expect(inserted).toEqual([[], [{ n: 2 }]]);
    expect(endpoint.roundTrips()).toEqual({ oltp: 1, olap: 0 });

    await expect(
      sql.transaction([sql`INSERT INTO items VALUES (3, 'three')`, sql`INSERT INTO items VALUES (1, 'again')`]),
    ).rejects.toMatchObject({ code: "23505" });
    expect(await sql`SELECT id FROM items WHERE id = 3`).toEqual([]);

    const settings = await sql.transaction([sql`SHOW transaction_isolation`, sql`SHOW transaction_read_only`], {
      isolationLevel: "Serializable",
      readOnly: true,
    });
    expect(settings).toEqual([[{ transaction_isolation: "serializable" }], [{ transaction_read_only: "on" }]]);
    await expect(
      sql.transaction([sql`INSERT INTO items VALUES (4, 'four')`], { readOnly: true }),
    ).rejects.toMatchObject({ code: "25006" });
  });

  it("reports Postgres errors as NeonDbError with their fields", async () => {
    const sql = oltp();
    await sql`INSERT INTO items VALUES (10, 'ten')`;
    const duplicate = await sql`INSERT INTO items VALUES (10, 'ten')`.catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(NeonDbError);
    expect(duplicate).toMatchObject({
      code: "23505",
      severity: "ERROR",
      constraint: "items_pkey",
      table: "items",
      detail: "Key (id)=(10) already exists.",
    });
    await expect(sql.query("SELEC 1")).rejects.toMatchObject({ code: "42601", position: "1" });
  });

  it("runs an interactive transaction through Pool over WebSocket, one round trip per query", async () => {
    // The earlier HTTP requests must not have left a connection holding the (PGlite) session.
    const pool = new Pool({ connectionString: "postgres://postgres:pw@db.local/oltp", connectionTimeoutMillis: 2_000 });
    const client = await pool.connect();
    try {
      endpoint.resetRoundTrips();
      await client.query("BEGIN");
      await client.query("INSERT INTO items VALUES ($1, $2)", [20, "rolled back"]);
      expect((await client.query("SELECT name FROM items WHERE id = 20")).rows).toEqual([{ name: "rolled back" }]);
      await client.query("ROLLBACK");
      expect(endpoint.roundTrips()).toEqual({ oltp: 4, olap: 0 });

      await client.query("BEGIN");
      await client.query("INSERT INTO items VALUES ($1, $2)", [21, "committed"]);
      await client.query("COMMIT");
    } finally {
      client.release();
      await pool.end();
    }
    // The Terminate sent while closing awaits no reply, so it is not a round trip.
    await sleep(100);
    expect(endpoint.roundTrips()).toEqual({ oltp: 7, olap: 0 });
    expect(await oltp()`SELECT id FROM items WHERE id IN (20, 21)`).toEqual([{ id: 21 }]);
  });

  it("counts round trips per database and resets them, also over HTTP", async () => {
    endpoint.resetRoundTrips();
    await oltp()`SELECT 1`;
    await oltp()`SELECT 2`;
    await olap()`SELECT 3`;
    expect(endpoint.roundTrips()).toEqual({ oltp: 2, olap: 1 });
    expect(await (await local("/_local/round-trips")).json()).toEqual({ oltp: 2, olap: 1 });

    expect((await local("/_local/round-trips/reset", { method: "POST" })).ok).toBe(true);
    expect(endpoint.roundTrips()).toEqual({ oltp: 0, olap: 0 });
    expect((await local("/_local/health")).status).toBe(200);
  });

  it("fails fast for a database that is down while the others answer, until restored", async () => {
    const response = await local("/_local/fault", { method: "POST", body: JSON.stringify({ database: "olap", mode: "down" }) });
    expect(response.ok).toBe(true);
    try {
      const failedIn = await elapsedMs(() =>
        expect(olap()`SELECT 1`).rejects.toThrow(/Error connecting to database/),
      );
      expect(failedIn).toBeLessThan(1000);

      const pool = new Pool({ connectionString: "postgres://postgres:pw@db.local/olap" });
      pool.on("error", () => {});
      const refusedIn = await elapsedMs(() => expect(pool.connect()).rejects.toThrow());
      expect(refusedIn).toBeLessThan(1000);
      await pool.end();

      expect(await oltp()`SELECT 'up' AS state`).toEqual([{ state: "up" }]);
    } finally {
      endpoint.setFault("olap", "none");
    }
    expect(await olap()`SELECT 'back' AS state`).toEqual([{ state: "back" }]);
  });

  it("holds requests to a hanging database until aborted or restored, while the others answer", async () => {
    const pool = new Pool({ connectionString: "postgres://postgres:pw@db.local/olap" });
    pool.on("error", () => {});
    const live = await pool.connect();
    live.on("error", () => {});
    endpoint.setFault("olap", "hang");
    try {
      const timedOutIn = await elapsedMs(() =>
        expect(
          olap().query("SELECT 1", [], { fetchOptions: { signal: AbortSignal.timeout(300) } }),
        ).rejects.toThrow(/abort|timeout/i),
      );
      expect(timedOutIn).toBeGreaterThanOrEqual(250);

      const held = olap()`SELECT 'held' AS state`;
      const heldLive = live.query("SELECT 'live' AS state");
      const heldDone = isSettled(held);
      const heldLiveDone = isSettled(heldLive);
      expect(await oltp()`SELECT 'up' AS state`).toEqual([{ state: "up" }]);
      const fresh = new Pool({ connectionString: "postgres://postgres:pw@db.local/olap", connectionTimeoutMillis: 300 });
      fresh.on("error", () => {});
      await expect(fresh.connect()).rejects.toThrow(/timeout/i);
      await fresh.end();
      expect([heldDone(), heldLiveDone()]).toEqual([false, false]);

      endpoint.setFault("olap", "none");
      expect((await heldLive).rows).toEqual([{ state: "live" }]);
      // A PGlite session belongs to one connection at a time: the held request runs once the pool lets go.
      live.release();
      await pool.end();
      expect(await held).toEqual([{ state: "held" }]);
    } finally {
      endpoint.setFault("olap", "none");
    }
    const restoredIn = await elapsedMs(async () => expect(await olap()`SELECT 1 AS ok`).toEqual([{ ok: 1 }]));
    expect(restoredIn).toBeLessThan(1000);
  });

  it("drops live connections when a database goes down, and nothing sent while it hung reaches it", async () => {
    const pool = new Pool({ connectionString: "postgres://postgres:pw@db.local/olap" });
    pool.on("error", () => {});
    const live = await pool.connect();
    live.on("error", () => {});
    endpoint.setFault("olap", "hang");
    try {
      const insert = live.query("INSERT INTO items VALUES (40, 'sent while hanging')");
      await sleep(100);
      endpoint.setFault("olap", "down");
      await expect(insert).rejects.toThrow(/terminated/);
    } finally {
      endpoint.setFault("olap", "none");
      live.release(true);
      await pool.end();
    }
    expect(await olap()`SELECT id FROM items WHERE id = 40`).toEqual([]);
  });

  it("connects as the role in the connection string", async () => {
    const { role } = stack;
    const sql = neon(`postgres://${role}:pw@db.local/oltp`);
    expect(await sql`SELECT current_user AS who`).toEqual([{ who: role }]);
    await sql`INSERT INTO items VALUES (30, 'by app role')`;
    await expect(sql`DELETE FROM items WHERE id = 30`).rejects.toMatchObject({ code: "42501" });

    const pool = new Pool({ connectionString: `postgres://${role}:pw@db.local/oltp` });
    try {
      expect((await pool.query("SELECT current_user AS who")).rows).toEqual([{ who: role }]);
    } finally {
      await pool.end();
    }
  });

  it("rejects malformed requests and unknown databases", async () => {
    const headers = { "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": "true" };
    const noConnection = await local("/sql", { method: "POST", headers, body: JSON.stringify({ query: "SELECT 1" }) });
    expect(noConnection.status).toBe(400);
    expect(await noConnection.json()).toMatchObject({ message: expect.stringMatching(/Neon-Connection-String/) });

    const badJson = await local("/sql", {
      method: "POST",
      headers: { ...headers, "Neon-Connection-String": "postgres://postgres@db.local/oltp" },
      body: "{not json",
    });
    expect(badJson.status).toBe(400);

    await expect(neon("postgres://postgres@db.local/nope")`SELECT 1`).rejects.toMatchObject({ code: "3D000" });

    const preflight = await local("/sql", {
      method: "OPTIONS",
      headers: { Origin: "http://app.local", "Access-Control-Request-Headers": "neon-connection-string" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-headers")).toBe("neon-connection-string");
  });
});
