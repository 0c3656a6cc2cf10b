// Hono middleware factories: environment, structured request log, the services context, authentication, role guard.
import { withRequestId } from "./spans";
import type { Context as HonoContext, MiddlewareHandler } from "hono";
import { bearerToken, hasRole, verifyToken, type Credential, type Principal, type Role } from "./auth";
import type { Clock } from "./clock";
import type { RequestOrigin } from "./emitters";
import { parseEnv, type Env } from "./env";
import { AppError } from "./errors";
import { createLogger, isLogLevel, type Logger } from "./logger";
import { redisBatch, type RedisBatch } from "./redis";
import { createServices, type Services, type Wiring } from "./services";

declare module "hono" {
  interface ContextVariableMap {
    env: Env;
    logger: Logger;
    services: Services;
    principal: Principal | undefined;
    authError: AppError | undefined;
    /** What a route asked to read from Redis beside the caller's authorization (see `authenticate`). */
    prefetched: Promise<unknown> | undefined;
    /** A more specific route name for the request log (e.g. the tRPC procedure). */
    routeName: string | undefined;
  }
}

/** Validates the bindings once per isolate; a broken environment answers ENV_INVALID, never a crash. */
export const environment = (): MiddlewareHandler =>
  async function environment(c, next) {
    c.set("env", parseEnv(c.env));
    await next();
  };

/** One JSON line per request: method, route, status, ms, tenant, request id. */
export const requestLog = (): MiddlewareHandler =>
  async function requestLog(c, next) {
    const started = performance.now();
    const level = typeof c.env === "object" && c.env && "LOG_LEVEL" in c.env ? String(c.env.LOG_LEVEL) : "info";
    const logger = createLogger(isLogLevel(level) ? level : "info", {
      requestId: c.get("requestId"),
    });
    c.set("logger", logger);
    await next();
    const status = c.res.status;
    const fields = {
      method: c.req.method,
      route: c.get("routeName") ?? c.req.routePath,
      status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      tenant: c.get("principal")?.tenantId ?? null,
    };
    if (status >= 500) logger.error("request", fields);
    else logger.info("request", fields);
  };

const clip = (value: string | null | undefined, max: number) => (value ? value.slice(0, max) : null);

/** Where the request came from, for audit entries: the client address Cloudflare saw, and the user agent. */
function originOf(c: HonoContext): RequestOrigin {
  const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
  return {
    ip: clip(c.req.header("cf-connecting-ip") ?? c.req.header("x-real-ip") ?? forwarded, 64),
    userAgent: clip(c.req.header("user-agent"), 512),
  };
}

/** Builds the request's services context once, after the environment is known; handlers read c.get("services"). */
export const servicesContext = (wired: Wiring, clock: Clock): MiddlewareHandler =>
  async function servicesContext(c, next) {
    c.set(
      "services",
      createServices(
        {
          env: c.get("env"),
          requestId: c.get("requestId"),
          logger: c.get("logger"),
          clock,
          origin: originOf(c),
          waitUntil: (p) => c.executionCtx.waitUntil(p),
        },
        wired,
      ),
    );
    await withRequestId(c.get("requestId"), next);
  };

/**
 * Memberships and API keys live in a tier; the platform verifies a JWT itself and asks the owning tier who the
 * credential stands for right now (role, membership, tenant status, key revocation and expiry).
 */
export interface CallerResolver {
  /** Every API key starts with this, so it is told apart from a JWT without parsing. */
  marker: string;
  /** The credential an API key presents (its hash, the tenant it names): no I/O. */
  apiKeyCredential(key: string): Promise<Credential>;
  /** Queues its Redis reads on `batch` before returning (the caller sends the batch). */
  authorize(services: Services, credential: Credential, batch: RedisBatch): Promise<Principal>;
}

/** A Redis read a route needs anyway, queued on the authorization's batch so both travel in one request. */
export type Prefetch = (services: Services, identity: { tenantId: string; userId: string }, batch: RedisBatch) => Promise<unknown>;

/**
 * Reads a bearer token when one is sent: a JWT, or an API key (recognised by its marker), then has the owning
 * tier authorize it. A bad token is remembered rather than thrown, so public routes still answer; anything that
 * needs a caller reports why the token was refused. `prefetch` (by path) queues a route's own Redis read on the
 * authorization's batch, so one request carries both; it is used only once authorized.
 */
export const authenticate = (callers: CallerResolver, prefetch: Record<string, Prefetch> = {}): MiddlewareHandler =>
  async function authenticate(c, next) {
    try {
      const token = bearerToken(c.req.header("authorization"));
      if (token) {
        const credential: Credential = token.startsWith(callers.marker)
          ? await callers.apiKeyCredential(token)
          : { kind: "token", claims: await verifyToken(token, c.get("env")) };
        const services = c.get("services");
        const batch = redisBatch(services.redis());
        const authorized = callers.authorize(services, credential, batch);
        const early = prefetch[c.req.path];
        if (early && credential.kind === "token") {
          const read = early(services, credential.claims, batch);
          read.catch(() => undefined);
          c.set("prefetched", read);
        }
        batch.send();
        c.set("principal", await authorized);
      }
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      c.set("authError", error);
    }
    await next();
  };

/** For plain HTTP routes: a caller with at least `role`, or a 401/403 with a clear code. */
export const requireCaller = (role: Role = "member"): MiddlewareHandler =>
  async function requireCaller(c, next) {
    const principal = c.get("principal");
    if (!principal) {
      throw c.get("authError") ?? new AppError("AUTH_TOKEN_MISSING", "Authentication required: send 'Authorization: Bearer <token>'");
    }
    if (!hasRole(principal, role)) throw new AppError("FORBIDDEN", `This action requires the ${role} role`);
    if (principal.readOnly && !["GET", "HEAD"].includes(c.req.method)) throw new AppError("FORBIDDEN", "This API key is read-only");
    await next();
  };
