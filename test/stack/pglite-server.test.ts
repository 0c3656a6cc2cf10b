// Checks the PGlite TCP server with the real `pg` client: exclusive sessions, reset between clients, login roles and RLS.
import net from "node:net";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPgliteServer, type PgliteServer } from "../../scripts/stack/pglite-server";

let db: PGlite;
let server: PgliteServer;

beforeAll(async () => {
  db = await PGlite.create();
  await db.exec(`
    CREATE ROLE app_user LOGIN;
    CREATE TABLE counters (id int PRIMARY KEY);
    GRANT SELECT, INSERT ON counters TO app_user;

    CREATE TABLE leads (tenant_id text NOT NULL, name text NOT NULL);
    ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
    ALTER TABLE leads FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON leads
      USING (tenant_id = current_setting('app.current_tenant_id', true))
      WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));
    GRANT SELECT, INSERT ON leads TO app_user;
    INSERT INTO leads VALUES ('t1', 'alice'), ('t1', 'bob'), ('t2', 'carol');
  `);
  server = await startPgliteServer({ databases: { app: db } });
}, 30_000);

afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function connect(url: string, config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...config });
  await client.connect();
  return client;
}

function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

describe("pglite server", () => {
  it("answers queries from pg, accepting any password", async () => {
    const client = await connect(server.url("app").replace("postgres@", "postgres:any-password@"));
    try {
      const { rows } = await client.query("SELECT $1::int + 1 AS answer, current_user AS who", [41]);
      expect(rows).toEqual([{ answer: 42, who: "postgres" }]);
    } finally {
      await client.end();
    }
  });

  it("answers an SSLRequest with N", async () => {
    const socket = net.connect(server.port, "127.0.0.1");
    try {
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(80877103, 4);
      socket.write(request);
      const reply = await new Promise<Buffer>((resolve, reject) => {
        socket.once("data", resolve);
        socket.once("error", reject);
      });
      expect(reply.toString()).toBe("N");
    } finally {
      socket.destroy();
    }
  });

  it("makes a second connection wait for the first, then shows it committed data only", async () => {
    const a = await connect(server.url("app"));
    await a.query("BEGIN; INSERT INTO counters VALUES (1); COMMIT");
    await a.query("BEGIN; INSERT INTO counters VALUES (2)");

    const b = new pg.Client(server.url("app"));
    const seenByB = b.connect().then(() => b.query<{ id: number }>("SELECT id FROM counters ORDER BY id"));
    const bDone = settledFlag(seenByB);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(bDone()).toBe(false);

    await a.end();
    try {
      expect((await seenByB).rows).toEqual([{ id: 1 }]);
    } finally {
      await b.end();
    }
  });

  it("leaves no transaction, role or session state behind a dropped connection", async () => {
    const socket = new net.Socket();
    const a = new pg.Client({ connectionString: server.url("app", "app_user"), stream: () => socket });
    a.on("error", () => {});
    await a.connect();
    await a.query("BEGIN");
    await a.query("INSERT INTO counters VALUES (100)");
    await a.query("SELECT set_config('app.current_tenant_id', 't1', false)");
    await a.query({ name: "probe", text: "SELECT 'stale'" });
    await a.query("CREATE TEMP TABLE scratch (x int)");
    expect((await a.query("SELECT current_user AS who")).rows).toEqual([{ who: "app_user" }]);
    socket.destroy();

    const b = await connect(server.url("app"));
    try {
      const { rows } = await b.query(`
        SELECT current_user AS who, session_user AS session,
               coalesce(current_setting('app.current_tenant_id', true), '') AS tenant,
               to_regclass('pg_temp.scratch') AS scratch,
               (SELECT count(*)::int FROM counters WHERE id = 100) AS leaked_rows`);
      expect(rows).toEqual([{ who: "postgres", session: "postgres", tenant: "", scratch: null, leaked_rows: 0 }]);
      // The same statement name with other text only works if the old prepared statement is gone.
      expect((await b.query({ name: "probe", text: "SELECT 'fresh' AS v" })).rows).toEqual([{ v: "fresh" }]);
    } finally {
      await b.end();
    }
    await db.query("SELECT 1"); // in-process callers queue behind TCP sessions, so this also waits for the reset
    expect(db.isInTransaction()).toBe(false);
  });

  it("applies row-level security to a non-superuser login role", async () => {
    const client = await connect(server.url("app", "app_user"));
    try {
      expect((await client.query("SELECT current_user AS who")).rows).toEqual([{ who: "app_user" }]);
      expect((await client.query("SELECT count(*)::int AS n FROM leads")).rows).toEqual([{ n: 0 }]);

      await client.query("BEGIN");
      await client.query("SELECT set_config('app.current_tenant_id', 't1', true)");
      const { rows } = await client.query("SELECT * FROM leads ORDER BY name");
      expect(rows).toEqual([
        { tenant_id: "t1", name: "alice" },
        { tenant_id: "t1", name: "bob" },
      ]);
      await expect(client.query("INSERT INTO leads VALUES ('t2', 'mallory')")).rejects.toMatchObject({
        code: "42501",
      });
      await client.query("ROLLBACK");
    } finally {
      await client.end();
    }
    expect((await db.query("SELECT count(*)::int AS n FROM leads")).rows).toEqual([{ n: 3 }]);
  });

  it("refuses an unknown database or role cleanly and keeps serving", async () => {
    await expect(connect(server.url("nope"))).rejects.toMatchObject({
      code: "3D000",
      message: 'database "nope" does not exist',
    });
    await expect(connect(server.url("app", "ghost"))).rejects.toMatchObject({ code: "28000" });
    const client = await connect(server.url("app"));
    try {
      expect((await client.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
    } finally {
      await client.end();
    }
  });
});
