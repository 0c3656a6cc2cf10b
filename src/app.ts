// The Hono app: middleware, /health, browser routes under /v1, and tRPC under /trpc.
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { Hono } from "hono";
import { contextStorage } from "hono/context-storage";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { z } from "zod";
import { uuid } from "./platform/inputs";
import { type Clock, systemClock } from "./platform/clock";
import { AppError, errorBody, toAppError } from "./platform/errors";
import { noSniff, sandboxedContent } from "./platform/content-safety";
import { checkHealth } from "./platform/health";
import { apiRateLimit, retryAfterOf } from "./platform/api-limits";
import { authenticate, environment, requestLog, requireCaller, servicesContext } from "./platform/middleware";
import { contextFromHono } from "./platform/trpc";
import { openApiDocument, referencePage } from "./openapi";
import { appRouter, wired } from "./root";
import { contentConfig, contentReadDeps, streamAttachment, uploadAttachment } from "./tiers/content";
import { exportRoutes, trackingRoutes, webhookRoutes } from "./tiers/jobs";
import { notificationDeps, openLiveBadge, unreadCount, unreadCountCacheControl, unreadLookup } from "./tiers/notifications";
import { callers, unsubscribeRoutes } from "./tiers/oltp";

/**
 * A POST without a body and without a Content-Type (a mutation that takes no input, sent by curl or a form-less
 * fetch) is read as JSON with no input, instead of being refused for a type it never had. A body sent without
 * its type is still UNSUPPORTED_MEDIA_TYPE.
 */
function bodylessAsJson(req: Request): Request {
  if (req.method !== "POST" || req.headers.has("content-type")) return req;
  if (req.body !== null && req.headers.get("content-length") !== "0") return req;
  const headers = new Headers(req.headers);
  headers.set("content-type", "application/json");
  return new Request(req.url, { method: "POST", headers, signal: req.signal });
}

/** The Hono app of a Worker whose services read `clock` (the system clock in production; tests set another). */
export function createApp(clock: Clock = systemClock): Hono {
  const app = new Hono();

  // Liveness probe and the benchmarks' floor: registered before every middleware, so it answers with
  // no request id, log line, env check, auth, tRPC or store.
  app.get("/ping", (c) => c.text("pong"));

  app.use("*", contextStorage());
  app.use("*", requestId({ limitLength: 128 }));
  app.use("*", requestLog());
  app.use("*", noSniff());
  app.use("*", environment());
  app.use("*", servicesContext(wired, clock));
  app.use(
    "*",
    cors({
      origin: (origin, c) => {
        const allowed = c.get("env").CORS_ORIGINS;
        return allowed.includes("*") || allowed.includes(origin) ? origin : null;
      },
      allowHeaders: ["Authorization", "Content-Type", "X-Request-Id", "trpc-accept"],
      exposeHeaders: ["X-Request-Id"],
      maxAge: 600,
    }),
  );
  app.use("*", authenticate(callers, { "/v1/notifications/unread-count": (services, caller, batch) => unreadLookup(notificationDeps(services), caller, batch) }));
  // Browser and file routes count against the caller's API limit here; tRPC counts each call (src/platform/trpc.ts).
  app.use("/v1/*", apiRateLimit());

  app.get("/health", async (c) => {
    const report = await checkHealth(c.get("env"), c.get("services").clock.now());
    return c.json(report, report.status === "down" ? 503 : 200);
  });

  // The API described for non-TypeScript clients (generated from the routers' zod schemas), and in
  // development an interactive reference of it (Scalar, from its CDN).
  app.get("/openapi.json", (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
  app.get("/reference", (c) => {
    if (c.get("env").ENVIRONMENT === "production") throw new AppError("ROUTE_NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`);
    return c.html(referencePage);
  });

  // The browser's unread badge: same auth and CORS as everything else, same service as the tRPC procedure.
  // One user's exact count: private (never in a shared cache) and max-age=0, so a browser never shows a count
  // older than the user's own last mark-read; the poll is cheap (one Redis HMGET on a hit).
  app.get("/v1/notifications/unread-count", requireCaller(), async (c) => {
    const { tenantId, userId, role } = c.get("principal")!;
    // The cache read was sent beside the caller's authorization (authenticate's prefetch): one Redis round trip.
    const started = c.get("prefetched") as ReturnType<typeof unreadLookup> | undefined;
    const unread = await unreadCount(notificationDeps(c.get("services")), { tenantId, userId, role }, started);
    c.header("cache-control", unreadCountCacheControl);
    c.header("vary", "Authorization, Origin", { append: true });
    return c.json({ unread });
  });

  // The live badge: a WebSocket opened with a single-use ticket (browsers cannot send Authorization on one).
  app.get("/v1/notifications/live", (c) => openLiveBadge(c.get("services").env, c.get("services").redis(), c.req.raw));

  // Stored bytes are served sandboxed, and anything a browser could run as a download.
  app.use("/v1/content/*", sandboxedContent());
  app.use("/v1/exports/*", sandboxedContent());

  // Large attachments stream in and out here (tRPC carries JSON, so base64 built whole in memory).
  app.put("/v1/content/attachments/:sha256", requireCaller(), async (c) => {
    const { tenantId } = c.get("principal")!;
    const length = c.req.header("content-length");
    const uploaded = await uploadAttachment(c.get("env").CONTENT_BUCKET, contentConfig, tenantId, {
      sha256: c.req.param("sha256"),
      mimeType: (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase(),
      contentLength: length === undefined ? null : Number(length),
      body: c.req.raw.body,
    });
    return c.json(uploaded, uploaded.created ? 201 : 200);
  });
  app.get("/v1/content/emails/:emailId/attachments/:position", requireCaller(), async (c) => {
    const { tenantId, userId, role } = c.get("principal")!;
    const params = z.object({ emailId: uuid(), position: z.coerce.number().int().min(1).max(100) }).safeParse(c.req.param());
    if (!params.success) throw new AppError("VALIDATION_FAILED", "emailId must be a uuid and position 1–100", { details: [{ path: "params", message: params.error.message }] });
    return streamAttachment(contentReadDeps(c.get("services")), { tenantId, userId, role }, params.data.emailId, params.data.position);
  });

  // Public by design: the signed token in the link is the only credential a recipient has.
  app.route("/v1/unsubscribe", unsubscribeRoutes);
  // Export downloads: the signed, expiring link is the credential (a browser follows it without a token).
  app.route("/v1/exports", exportRoutes);
  // Inbound at the edge: the provider's signature, or the signed token in the email, is the credential;
  // both only queue the fact (no OLTP round trip), which RECORD_INBOUND_FACTS records.
  app.route("/v1/webhooks", webhookRoutes);
  app.route("/t", trackingRoutes);

  app.use("/trpc/*", async (c, next) => {
    c.set("routeName", `/trpc/${c.req.path.slice("/trpc/".length)}`);
    await next();
  });
  // tRPC's fetch adapter, called directly so procedures get this request's services context as built (its parsed
  // env included) and the batch limit of this environment.
  app.use("/trpc/*", (c) =>
    fetchRequestHandler({
      endpoint: "/trpc",
      req: bodylessAsJson(c.req.raw),
      router: appRouter,
      createContext: () => contextFromHono(c),
      maxBatchSize: c.get("env").TRPC_MAX_BATCH,
      responseMeta({ errors }) {
        const retryAfter = Math.max(0, ...errors.map((error) => retryAfterOf(error.cause) ?? 0));
        return retryAfter > 0 ? { headers: { "retry-after": String(retryAfter) } } : {};
      },
      onError({ error, ctx, path }) {
        // Only server faults are logged with their cause; caller mistakes are in the request log.
        if (error.code === "INTERNAL_SERVER_ERROR" || error.code === "SERVICE_UNAVAILABLE") {
          ctx?.logger.error("procedure failed", { path, code: error.code, error: error.cause ?? error });
        }
      },
    }),
  );

  app.notFound((c) => c.json(errorBody(new AppError("ROUTE_NOT_FOUND", `No route for ${c.req.method} ${c.req.path}`), c.get("requestId")), 404));

  app.onError((error, c) => {
    const appError = toAppError(error);
    if (appError.status >= 500) c.get("logger")?.error("unhandled error", { error: appError.cause ?? appError });
    const retryAfter = retryAfterOf(appError);
    if (retryAfter) c.header("retry-after", String(retryAfter));
    return c.json(errorBody(appError, c.get("requestId")), appError.status as 400);
  });
  return app;
}
