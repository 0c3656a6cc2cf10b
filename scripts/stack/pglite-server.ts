// PGlite served as a Postgres server over TCP: one exclusive session per connection, login role applied, state reset between clients.
import net from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import {
  GSSENC_REQUEST,
  MessageReader,
  PROTOCOL_V3,
  SSL_REQUEST,
  SYNC_MESSAGE,
  encodeStartup,
  errorResponse,
  messagesOf,
  parseErrorFields,
  parseStartup,
  queryMessage,
  quoteIdent,
  type Message,
  type Startup,
} from "./pg-wire";
import { listen } from "./net-util";

export interface PgliteServer {
  port: number;
  /** postgres://user@127.0.0.1:port/database */
  url(database: string, user?: string): string;
  close(): Promise<void>;
}

const SUPERUSER = "postgres";

export async function startPgliteServer(opts: {
  databases: Record<string, PGlite>;
  host?: string;
  port?: number;
}): Promise<PgliteServer> {
  const host = opts.host ?? "127.0.0.1";
  const sockets = new Set<net.Socket>();
  const sessions = new Set<Promise<void>>();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    const session: Promise<void> = serve(new Connection(socket), opts.databases)
      .catch((error: unknown) => {
        console.error("pglite-server: connection failed:", error);
        socket.destroy();
      })
      .finally(() => {
        sockets.delete(socket);
        sessions.delete(session);
      });
    sessions.add(session);
  });
  const port = await listen(server, host, opts.port);

  return {
    port,
    url: (database, user = SUPERUSER) =>
      `postgres://${encodeURIComponent(user)}@${host}:${port}/${encodeURIComponent(database)}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      // Each session rolls back and releases its PGlite before we report closed, so callers may close the PGlite next.
      await Promise.all(sessions);
      await closed;
    },
  };
}

/** Turns socket events into awaitable reads so a session reads as straight-line code. */
class Connection {
  private readonly reader = new MessageReader();
  private wake: (() => void) | undefined;
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk) => {
      this.reader.push(chunk);
      this.wake?.();
    });
    // 'close' always follows 'error'; the session ends there.
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  async readStartup(): Promise<Startup | undefined> {
    for (;;) {
      const packet = this.reader.takeUntyped();
      if (packet) return parseStartup(packet);
      if (this.closed) return undefined;
      await this.waitForData();
    }
  }

  async readMessages(): Promise<Message[] | undefined> {
    for (;;) {
      const messages = this.reader.takeMessages();
      if (messages.length > 0) return messages;
      if (this.closed) return undefined;
      await this.waitForData();
    }
  }

  fail(code: string, message: string): void {
    this.socket.end(errorResponse("FATAL", code, message));
  }

  private waitForData(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }
}

async function serve(conn: Connection, databases: Record<string, PGlite>): Promise<void> {
  let startup = await conn.readStartup();
  while (startup && (startup.code === SSL_REQUEST || startup.code === GSSENC_REQUEST)) {
    conn.socket.write("N");
    startup = await conn.readStartup();
  }
  if (!startup) return;
  if (startup.code !== PROTOCOL_V3) return conn.fail("08P01", `unsupported frontend protocol ${startup.code}`);
  const user = startup.params.user;
  if (!user) return conn.fail("28000", "no PostgreSQL user name specified in startup packet");
  const database = startup.params.database ?? user;
  const db = databases[database];
  if (!db) return conn.fail("3D000", `database "${database}" does not exist`);

  const release = await lease(db);
  try {
    // A client that gave up while queued must not cost the next one a reset.
    if (conn.closed) return;
    try {
      await runSession(conn, db, startup, user);
    } finally {
      await resetSession(db);
    }
  } finally {
    release();
  }
}

/**
 * PGlite is a single session, so a connection holds it for its whole life. Taking PGlite's own
 * exclusive lock (a FIFO) also queues in-process `db.query()` callers behind TCP clients.
 */
async function lease(db: PGlite): Promise<() => void> {
  await db.waitReady;
  return new Promise((granted) => {
    db.runExclusive(() => new Promise<void>((release) => granted(release))).catch((error: unknown) =>
      console.error("pglite-server: lock failed:", error),
    );
  });
}

async function runSession(conn: Connection, db: PGlite, startup: Startup, user: string): Promise<void> {
  // PGlite answers the startup packet itself (AuthenticationOk without asking for a password,
  // ParameterStatus, BackendKeyData, ReadyForQuery); it ignores the user and database in it.
  let greeting = messagesOf(await db.execProtocolRaw(encodeStartup(startup.params)));
  if (user !== SUPERUSER) {
    // SESSION AUTHORIZATION rather than SET ROLE: session_user and role-membership checks then
    // behave as for a real login, and RLS applies because the session user is no superuser.
    const reply = messagesOf(await db.execProtocolRaw(queryMessage(`SET SESSION AUTHORIZATION ${quoteIdent(user)}`)));
    const error = reply.find((m) => m.type === "E");
    if (error) return conn.fail("28000", parseErrorFields(error.body).M ?? `role "${user}" does not exist`);
    // Keep the ParameterStatus updates (is_superuser, session_authorization) but end with the greeting's ReadyForQuery.
    const statuses = reply.filter((m) => m.type === "S");
    greeting = [...greeting.slice(0, -1), ...statuses, ...greeting.slice(-1)];
  }
  conn.socket.write(Buffer.concat(greeting.map((m) => m.raw)));

  for (;;) {
    const messages = await conn.readMessages();
    if (!messages) return;
    const terminate = messages.findIndex((m) => m.type === "X");
    const batch = terminate === -1 ? messages : messages.slice(0, terminate);
    if (batch.length > 0) {
      await db.execProtocolRawStream(Buffer.concat(batch.map((m) => m.raw)), {
        onRawData: (data) => {
          if (!conn.closed) conn.socket.write(Buffer.from(data));
        },
      });
    }
    if (terminate !== -1) {
      conn.socket.end();
      return;
    }
  }
}

/**
 * Sync ends a half-sent extended-protocol exchange, ROLLBACK any transaction (aborted or not), and
 * DISCARD ALL the GUCs, prepared statements, temp tables, advisory locks and LISTENs. The login role
 * needs its own statement: PGlite's reset value for session_authorization is empty, so RESET and
 * DISCARD ALL would leave the previous client's role in place.
 */
async function resetSession(db: PGlite): Promise<void> {
  const reset = [
    SYNC_MESSAGE,
    queryMessage("ROLLBACK"),
    queryMessage(`SET SESSION AUTHORIZATION ${quoteIdent(SUPERUSER)}`),
    queryMessage("DISCARD ALL"),
  ];
  const reply = messagesOf(await db.execProtocolRaw(Buffer.concat(reset)));
  const error = reply.find((m) => m.type === "E");
  if (error || db.isInTransaction()) {
    throw new Error(`pglite-server: session reset failed: ${error ? parseErrorFields(error.body).M : "still in a transaction"}`);
  }
}
