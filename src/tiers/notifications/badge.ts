// The live unread badge: one Durable Object per tenant holds its members' browsers (WebSockets with the hibernation
// API, tagged by user). After every committed change the Worker tells it whose count changed; it recounts those users
// from Postgres (the exact count, never a delta) and pushes `{ "unread": n }` to their sockets. An alarm at the
// earliest expiry among the counted rows pushes the drop an expiry causes.
import { tierStore } from "../../platform/db";
import { parseEnv } from "../../platform/env";
import { createLogger } from "../../platform/logger";
import { unreadCounts } from "./services/notifications";

interface Attachment {
  tenantId: string;
  userId: string;
}

/**
 * A plain Durable Object class (fetch, alarm and WebSocket handlers; no RPC), so importing it needs no
 * `cloudflare:workers` module and Node tooling that loads the tier (wrangler-config test) still can.
 */
export class UnreadBadge {
  /** Users whose count must be recomputed (null: every connected user). */
  #dirty: Set<string> | null = new Set();
  #running: Promise<void> | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: unknown,
  ) {
    // Keep-alives are answered without waking the object from hibernation.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/connect") {
      const tenantId = request.headers.get("x-badge-tenant");
      const userId = request.headers.get("x-badge-user");
      if (!tenantId || !userId || request.headers.get("upgrade")?.toLowerCase() !== "websocket") return new Response("bad connect", { status: 400 });
      const pair = new WebSocketPair();
      const [client, server] = [pair[0], pair[1]];
      this.ctx.acceptWebSocket(server, [userId]);
      server.serializeAttachment({ tenantId, userId } satisfies Attachment);
      await this.ctx.storage.put("tenantId", tenantId);
      // The first message is the count now; the recount runs after the socket is registered, so no change is missed.
      this.ctx.waitUntil(this.recount([userId]));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/changed" && request.method === "POST") {
      const { userId } = (await request.json()) as { userId: string | null };
      if (this.ctx.getWebSockets().length > 0) await this.recount(userId ? [userId] : null);
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  }

  async alarm(): Promise<void> {
    await this.recount(null);
  }

  webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (message === "ping") ws.send("pong");
  }

  webSocketClose(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  /**
   * Recounts `users` (null: all connected) and pushes the counts. Recounts run one at a time: a change that
   * arrives during one marks its users dirty and the loop runs again, so the last recount always starts
   * after the last committed change it was told about, and the last count pushed is the current one.
   */
  private recount(users: string[] | null): Promise<void> {
    if (users === null || this.#dirty === null) this.#dirty = null;
    else for (const u of users) this.#dirty.add(u);
    this.#running ??= this.drain().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const dirty = this.#dirty;
      if (dirty !== null && dirty.size === 0) return;
      this.#dirty = new Set();
      const sockets = this.ctx.getWebSockets();
      const connected = new Set(sockets.map((ws) => (ws.deserializeAttachment() as Attachment).userId));
      const users = [...(dirty ?? connected)].filter((u) => connected.has(u));
      const tenantId = await this.ctx.storage.get<string>("tenantId");
      if (!tenantId || users.length === 0) continue;
      const env = parseEnv(this.env as object);
      let counts: Awaited<ReturnType<typeof unreadCounts>>;
      try {
        counts = await unreadCounts(tierStore(env, "notifications"), tenantId, users);
      } catch (error) {
        createLogger("warn").warn("live badge recount failed", { tenantId, error });
        // Try again shortly; the browser keeps its last count (and can poll) meanwhile.
        await this.ctx.storage.setAlarm(Date.now() + 5000);
        return;
      }
      for (const c of counts) {
        const message = JSON.stringify({ unread: c.unread });
        for (const ws of this.ctx.getWebSockets(c.userId)) {
          try {
            ws.send(message);
          } catch {
            // A socket closing under us: its close handler finishes it.
          }
        }
      }
      await this.scheduleExpiry(counts);
    }
  }

  /** An alarm at the earliest expiry among the counted rows of connected users: the count drops then without a write. */
  private async scheduleExpiry(counts: Array<{ nextExpiry: string | null }>): Promise<void> {
    const next = counts.map((c) => (c.nextExpiry ? Date.parse(c.nextExpiry) : Number.POSITIVE_INFINITY)).reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
    if (!Number.isFinite(next)) return;
    const current = await this.ctx.storage.getAlarm();
    // A few milliseconds past the expiry, so the recount no longer counts the row (`expires_at > now()`).
    if (current === null || next + 50 < current) await this.ctx.storage.setAlarm(next + 50);
  }
}
