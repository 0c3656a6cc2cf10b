// Notifications tier routers: the notification center (`notifications`) and the admin incident board (`admin`).
import { z } from "zod";
import { isoInstant, uuid } from "../../platform/inputs";
import type { TenantScope } from "../../platform/db";
import { actorOf } from "../../platform/emitters";
import type { Services } from "../../platform/services";
import { adminProcedure, authedProcedure, router } from "../../platform/trpc";
import { notificationsConfig } from "./config";
import { notificationDeps } from "./deps";
import { badgeCounts, digestChannels, notificationChannels, preferenceChannels, severities } from "./schema";
import {
  changeState,
  changeStateByFilter,
  createNotification,
  deleteNotifications,
  listNotifications,
  markAllRead,
  markRead,
  markUnread,
  unreadCount,
} from "./services/notifications";
import { getTenantSettings, setTenantSettings } from "./services/settings";
import { mintBadgeTicket } from "./services/live";
import { getDigests, setDigest } from "./services/digests";
import { getPreferences, listDeliveries, setPreferences } from "./services/preferences";
import { pushPublicKey, subscribePush, unsubscribePush } from "./services/push";
import { createSystemEvent, listSystemEvents, setSystemEventResolved } from "./services/system-events";
import { createWebhookEndpoint, deleteWebhookEndpoint, enableWebhookEndpoint, listWebhookEndpoints } from "./services/webhooks";

const cursor = z.string().min(1).max(200);
const ids = z.array(uuid()).min(1).max(100);
const idsInput = z.object({ ids });
const jsonObject = z.record(z.string().max(100), z.unknown());
const notificationType = z.string().trim().min(1).max(50).regex(/^[a-z0-9_.:-]+$/i, "letters, digits and _ . : - only");

const preferencesRouter = router({
  /** The caller's overrides and the tenant's defaults. */
  get: authedProcedure.query(({ ctx }) => getPreferences(ctx.store("notifications"), ctx.scope)),
  /** `tenantDefault: true` (admins) sets the tenant's defaults; otherwise the caller's own overrides. */
  set: authedProcedure
    .input(
      z.object({
        tenantDefault: z.boolean().default(false),
        settings: z
          .array(
            z.object({
              type: z.union([notificationType, z.literal("*")]),
              channel: z.enum(preferenceChannels),
              enabled: z.boolean().nullable(),
            }),
          )
          .min(1)
          .max(50),
      }),
    )
    .mutation(({ ctx, input }) => setPreferences(ctx.store("notifications"), ctx.scope, input.settings, input.tenantDefault)),
  /** The caller's digests: per channel, the window whose notifications go out as one message. */
  digests: authedProcedure.query(({ ctx }) => getDigests(ctx.store("notifications"), ctx.scope)),
  /** `windowMinutes` 5 to 10,080 (a week); null turns the channel's digest off. Security notices are never held. */
  setDigest: authedProcedure
    .input(z.object({ channel: z.enum(digestChannels), windowMinutes: z.number().int().min(5).max(10_080).nullable() }))
    .mutation(({ ctx, input }) => setDigest(ctx.store("notifications"), ctx.scope, input.channel, input.windowMinutes)),
});

const webhooksRouter = router({
  /** The signing secret is in this answer only; it is never listed again. */
  create: adminProcedure
    .input(
      z.object({
        url: z.url().max(2000),
        description: z.string().trim().min(1).max(200).optional(),
        types: z.array(notificationType).min(1).max(50).optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const created = await createWebhookEndpoint(ctx.store("notifications"), ctx.env, notificationsConfig, ctx.scope, input);
      ctx.waitUntil(ctx.audit.direct({ actor: actorOf(ctx.scope), action: "webhookEndpoint.create", tenantId: ctx.scope.tenantId, target: { type: "webhook_endpoint", id: created.endpoint.id } }));
      return created;
    }),
  list: adminProcedure.query(({ ctx }) => listWebhookEndpoints(ctx.store("notifications"), ctx.scope)),
  enable: adminProcedure.input(z.object({ id: uuid() })).mutation(async ({ ctx, input }) => {
    const endpoint = await enableWebhookEndpoint(ctx.store("notifications"), ctx.scope, input.id);
    ctx.waitUntil(ctx.audit.direct({ actor: actorOf(ctx.scope), action: "webhookEndpoint.enable", tenantId: ctx.scope.tenantId, target: { type: "webhook_endpoint", id: endpoint.id } }));
    return endpoint;
  }),
  delete: adminProcedure.input(z.object({ id: uuid() })).mutation(async ({ ctx, input }) => {
    const result = await deleteWebhookEndpoint(ctx.store("notifications"), ctx.scope, input.id);
    ctx.waitUntil(ctx.audit.direct({ actor: actorOf(ctx.scope), action: "webhookEndpoint.delete", tenantId: ctx.scope.tenantId, target: { type: "webhook_endpoint", id: input.id } }));
    return result;
  }),
});

const base64Url = (length: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${length}}$`), `${length} base64url characters`);
const pushEndpoint = z.url().max(2000);

const pushRouter = router({
  /** The VAPID public key to pass to `pushManager.subscribe({ applicationServerKey })`; null where push is not configured. */
  publicKey: authedProcedure.query(({ ctx }) => pushPublicKey(ctx.env)),
  /** The browser's PushSubscription (`subscription.toJSON()`): its endpoint and keys. Subscribing again refreshes the keys. */
  subscribe: authedProcedure
    .input(z.object({ endpoint: pushEndpoint, keys: z.object({ p256dh: base64Url(87), auth: base64Url(22) }) }))
    .mutation(({ ctx, input }) => subscribePush(ctx.store("notifications"), ctx.env, notificationsConfig, ctx.scope, input)),
  unsubscribe: authedProcedure
    .input(z.object({ endpoint: pushEndpoint }))
    .mutation(({ ctx, input }) => unsubscribePush(ctx.store("notifications"), ctx.scope, input.endpoint)),
});

export const notificationsRouter = router({
  list: authedProcedure
    .input(
      z.object({
        limit: z.number().int().min(1).max(100).default(20),
        cursor: cursor.optional(),
        unreadOnly: z.boolean().optional(),
        type: z.string().min(1).max(50).optional(),
        /** true: the archive instead of the inbox. */
        archived: z.boolean().optional(),
      }),
    )
    .query(({ ctx, input }) => listNotifications(notificationDeps(ctx), ctx.scope, input)),

  /** A single-use ticket (30 s) for `GET /v1/notifications/live?ticket=…`, the live badge's WebSocket. */
  badgeTicket: authedProcedure.mutation(({ ctx }) => mintBadgeTicket(ctx.redis(), notificationsConfig, ctx.scope)),

  unreadCount: authedProcedure.query(async ({ ctx }) => ({ unread: await unreadCount(notificationDeps(ctx), ctx.scope) })),

  markRead: authedProcedure.input(idsInput).mutation(async ({ ctx, input }) => {
    const result = await markRead(notificationDeps(ctx), ctx.scope, input.ids);
    ctx.telemetry.capture({ event: "notification read", tenantId: ctx.scope.tenantId, distinctId: ctx.scope.userId, properties: { count: input.ids.length } });
    return result;
  }),
  markUnread: authedProcedure.input(idsInput).mutation(({ ctx, input }) => markUnread(notificationDeps(ctx), ctx.scope, input.ids)),
  markAllRead: authedProcedure.mutation(({ ctx }) => markAllRead(notificationDeps(ctx), ctx.scope)),
  delete: authedProcedure.input(idsInput).mutation(({ ctx, input }) => deleteNotifications(notificationDeps(ctx), ctx.scope, input.ids)),
  /** Shown to the user (the badge counts unseen rows where the tenant chose so). */
  markSeen: authedProcedure.input(idsInput).mutation(({ ctx, input }) => changeState(notificationDeps(ctx), ctx.scope, input.ids, "seen")),
  archive: authedProcedure.input(idsInput).mutation(({ ctx, input }) => changeState(notificationDeps(ctx), ctx.scope, input.ids, "archive")),
  unarchive: authedProcedure.input(idsInput).mutation(({ ctx, input }) => changeState(notificationDeps(ctx), ctx.scope, input.ids, "unarchive")),
  /** One action on every live notification of the caller of a type, older than an instant, or both (no filter: all). */
  bulk: authedProcedure
    .input(
      z.object({
        action: z.enum(["read", "unread", "seen", "archive", "unarchive", "delete"]),
        type: notificationType.optional(),
        olderThan: isoInstant().optional(),
      }),
    )
    .mutation(({ ctx, input }) => changeStateByFilter(notificationDeps(ctx), ctx.scope, { type: input.type, olderThan: input.olderThan }, input.action)),
  /** The tenant's notification settings; `set` is for its admins. */
  settings: router({
    get: authedProcedure.query(({ ctx }) => getTenantSettings(notificationDeps(ctx), ctx.scope)),
    set: adminProcedure
      .input(z.object({ badgeCounts: z.enum(badgeCounts) }))
      .mutation(({ ctx, input }) => setTenantSettings(notificationDeps(ctx), ctx.scope, input)),
  }),

  create: adminProcedure
    .input(
      z.object({
        userId: uuid().nullable().optional(),
        type: notificationType,
        title: z.string().trim().min(1).max(255),
        message: z.string().min(1).max(5000),
        data: jsonObject.optional(),
        channel: z.enum(notificationChannels).default("in_app"),
        expiresAt: isoInstant().optional(),
      }),
    )
    .mutation(({ ctx, input }) => createNotification(notificationDeps(ctx), ctx.scope, input)),

  /** Every delivery attempt of one notification (admins of its tenant), and what is still owed. */
  deliveries: adminProcedure.input(z.object({ id: uuid() })).query(({ ctx, input }) => listDeliveries(ctx.store("notifications"), ctx.scope, input.id)),

  preferences: preferencesRouter,
  webhooks: webhooksRouter,
  push: pushRouter,
});

const systemEventsRouter = router({
  create: adminProcedure
    .input(
      z.object({
        eventType: z.string().trim().min(1).max(100),
        severity: z.enum(severities),
        description: z.string().trim().min(1).max(5000),
        details: jsonObject.optional(),
        tenantId: uuid().nullable().optional(),
        userId: uuid().nullable().optional(),
        dedupKey: z.string().trim().min(1).max(200).optional(),
      }),
    )
    .mutation(({ ctx, input }) => createSystemEvent(ctx.store("notifications"), notificationsConfig, ctx.scope, input)),

  list: adminProcedure
    .input(
      z
        .object({
          limit: z.number().int().min(1).max(100).default(50),
          cursor: cursor.optional(),
          severity: z.array(z.enum(severities)).min(1).max(4).optional(),
          eventType: z.string().min(1).max(100).optional(),
          resolved: z.boolean().optional(),
          from: isoInstant().optional(),
          to: isoInstant().optional(),
          tenantId: uuid().nullable().optional(),
        })
        .refine((f) => !f.from || !f.to || Date.parse(f.from) < Date.parse(f.to), { message: "from must be before to", path: ["from"] }),
    )
    .query(({ ctx, input }) => listSystemEvents(ctx.store("notifications"), ctx.scope, input)),

  // Audited straight through the queue (no OLTP ledger): this tier keeps working while OLTP is down.
  resolve: adminProcedure
    .input(z.object({ id: uuid() }))
    .mutation(({ ctx, input }) => audited(ctx, setSystemEventResolved(ctx.store("notifications"), ctx.scope, input.id, true), "resolve")),
  reopen: adminProcedure
    .input(z.object({ id: uuid() }))
    .mutation(({ ctx, input }) => audited(ctx, setSystemEventResolved(ctx.store("notifications"), ctx.scope, input.id, false), "reopen")),
});

export const adminRouter = router({ systemEvents: systemEventsRouter });

/**
 * A system event resolved or reopened, audited off the response path once the change is done. The entry
 * goes straight to the queue: this tier must keep working while OLTP (and so the job ledger) is down.
 */
async function audited<E extends { id: string; tenantId: string | null }>(ctx: Services & { scope: TenantScope }, change: Promise<E>, verb: "resolve" | "reopen"): Promise<E> {
  const event = await change;
  ctx.waitUntil(ctx.audit.direct({ actor: actorOf(ctx.scope), action: `systemEvent.${verb}`, tenantId: event.tenantId, target: { type: "system_event", id: event.id } }));
  return event;
}
