// The live badge's edges: single-use tickets (a browser cannot send Authorization on a WebSocket), opening a socket
// with one, and telling the tenant's badge object whose count changed after a commit.
import type { Redis } from "@upstash/redis/cloudflare";
import type { TenantScope } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import { AppError, tierUnavailable } from "../../../platform/errors";
import type { Logger } from "../../../platform/logger";
import type { NotificationsConfig } from "../config";
import type { CacheChange } from "./unread-cache";

const ticketKey = (ticket: string) => `notif:ticket:${ticket}`;

/**
 * A ticket for one WebSocket connection of the caller: 32 random bytes, kept in Redis for
 * `live.ticketTtlSeconds` and redeemed at most once (GETDEL), so a stolen or replayed ticket opens nothing.
 */
export async function mintBadgeTicket(redis: Redis, config: NotificationsConfig, scope: TenantScope): Promise<{ ticket: string; expiresInSeconds: number }> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const ticket = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  try {
    await redis.set(ticketKey(ticket), JSON.stringify({ tenantId: scope.tenantId, userId: scope.userId }), { ex: config.live.ticketTtlSeconds });
  } catch (error) {
    throw tierUnavailable("redis", error);
  }
  return { ticket, expiresInSeconds: config.live.ticketTtlSeconds };
}

async function redeemTicket(redis: Redis, ticket: string): Promise<{ tenantId: string; userId: string }> {
  let stored: unknown;
  try {
    stored = await redis.getdel(ticketKey(ticket));
  } catch (error) {
    throw tierUnavailable("redis", error);
  }
  const value = typeof stored === "string" ? (JSON.parse(stored) as unknown) : stored;
  const owner = value as { tenantId?: unknown; userId?: unknown } | null;
  if (!owner || typeof owner.tenantId !== "string" || typeof owner.userId !== "string") {
    throw new AppError("AUTH_TOKEN_INVALID", "The badge ticket is unknown, expired or already used; mint a new one");
  }
  return { tenantId: owner.tenantId, userId: owner.userId };
}

/** `GET /v1/notifications/live?ticket=…` with `Upgrade: websocket`: redeems the ticket and hands the socket to the tenant's badge. */
export async function openLiveBadge(env: Env, redis: Redis, request: Request): Promise<Response> {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("BAD_REQUEST", "This route opens a WebSocket: send Upgrade: websocket");
  }
  if (!env.UNREAD_BADGE) throw new AppError("SERVICE_UNAVAILABLE", "The live badge is not configured in this deployment; poll the unread count", { tier: "notifications" });
  const ticket = new URL(request.url).searchParams.get("ticket");
  if (!ticket || ticket.length > 100) throw new AppError("AUTH_TOKEN_MISSING", "A badge ticket is required (notifications.badgeTicket)");
  const owner = await redeemTicket(redis, ticket);
  const stub = env.UNREAD_BADGE.get(env.UNREAD_BADGE.idFromName(owner.tenantId));
  const upgraded = await stub.fetch("https://badge/connect", {
    headers: { upgrade: "websocket", "x-badge-tenant": owner.tenantId, "x-badge-user": owner.userId },
  });
  // A fresh response (mutable headers), so the app's middleware can add its request id and CORS headers.
  return new Response(null, { status: upgraded.status, webSocket: upgraded.webSocket });
}

/**
 * After a commit that changed counts (the same changes the unread cache is invalidated for): each tenant's badge
 * recounts the users concerned (`userId` null: every connected member). Off the response path; a lost signal
 * leaves a browser's badge behind until the next change or its poll.
 */
export async function signalBadges(env: Env, logger: Logger, changes: CacheChange[]): Promise<void> {
  const namespace = env.UNREAD_BADGE;
  if (!namespace || changes.length === 0) return;
  await Promise.all(
    changes.map(async (change) => {
      try {
        const stub = namespace.get(namespace.idFromName(change.tenantId));
        const response = await stub.fetch("https://badge/changed", { method: "POST", body: JSON.stringify({ userId: change.userId }) });
        await response.body?.cancel();
      } catch (error) {
        logger.warn("live badge signal failed", { tenantId: change.tenantId, error });
      }
    }),
  );
}
