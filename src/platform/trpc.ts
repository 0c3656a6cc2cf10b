// tRPC setup: error formatting (stable codes, request id, nothing internal) and the procedure builders.
import { initTRPC, TRPCError } from "@trpc/server";
import { tryGetContext } from "hono/context-storage";
import { ZodError } from "zod";
import type { Context as HonoContext } from "hono";
import { hasRole, type Principal, type Role } from "./auth";
import { callerLimits, consumeApiLimits } from "./api-limits";
import type { TenantScope } from "./db";
import { AppError, type ErrorCode, type ErrorData } from "./errors";
import type { Services } from "./services";
import type { ForensicCategory } from "./telemetry";

/** What every procedure receives: the services of this request, and the caller. */
export interface Context extends Services {
  principal: Principal | null;
  /** Why the presented token was refused, surfaced only by procedures that need a caller. */
  authError: AppError | null;
  /** The request's URL: where links the caller follows back to this Worker start. */
  requestUrl: string | null;
}

/** The procedure context of a Hono request: its services (built once by the services middleware) and its caller. */
export function contextFromHono(c: HonoContext): Context {
  return { ...c.get("services"), principal: c.get("principal") ?? null, authError: c.get("authError") ?? null, requestUrl: c.req.url };
}

const batchTooLargeMessage = "Batch call exceeds maximum size";

/** tRPC's own failures (bad JSON, unknown procedure, wrong method) get our stable codes too. */
function appCodeOf(error: TRPCError): ErrorCode {
  if (error.cause instanceof AppError) return error.cause.code;
  if (error.cause instanceof ZodError) return "VALIDATION_FAILED";
  if (error.cause instanceof SyntaxError) return "MALFORMED_JSON";
  switch (error.code) {
    case "PARSE_ERROR":
      return "MALFORMED_JSON";
    case "BAD_REQUEST":
      // The fetch adapter's own refusal of a batch above maxBatchSize (TRPC_MAX_BATCH).
      return error.message === batchTooLargeMessage ? "BATCH_TOO_LARGE" : "BAD_REQUEST";
    case "NOT_FOUND":
      return error.message.startsWith("No procedure found") ? "PROCEDURE_NOT_FOUND" : "NOT_FOUND";
    case "METHOD_NOT_SUPPORTED":
      return "METHOD_NOT_SUPPORTED";
    case "UNAUTHORIZED":
      return "AUTH_TOKEN_MISSING";
    case "FORBIDDEN":
      return "FORBIDDEN";
    case "PAYLOAD_TOO_LARGE":
      return "PAYLOAD_TOO_LARGE";
    case "UNSUPPORTED_MEDIA_TYPE":
      return "UNSUPPORTED_MEDIA_TYPE";
    case "TOO_MANY_REQUESTS":
      return "RATE_LIMITED";
    case "SERVICE_UNAVAILABLE":
      return "SERVICE_UNAVAILABLE";
    default:
      return "INTERNAL";
  }
}

/** One readable line for humans; the structured list stays in data.details for programs. */
function describeIssues(error: ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : "";
  return `Invalid input: ${parts.join("; ")}${more}`;
}

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error, ctx, path }) {
    const code = appCodeOf(error);
    const internal = code === "INTERNAL";
    const data: ErrorData = {
      code,
      httpStatus: shape.data.httpStatus,
      // Errors raised before tRPC builds a context (e.g. a bad content type) still get the id: transport, not a service.
      requestId: ctx?.requestId ?? tryGetContext()?.get("requestId") ?? null,
      path: path ?? null,
    };
    if (error.cause instanceof AppError) {
      if (error.cause.tier) data.tier = error.cause.tier;
      if (error.cause.details !== undefined) data.details = error.cause.details;
    } else if (error.cause instanceof ZodError) {
      data.details = error.cause.issues.map((i) => ({ path: i.path.join("."), message: i.message, code: i.code }));
    }
    const message = internal
      ? "Internal server error"
      : code === "BATCH_TOO_LARGE"
        ? `A batch may carry at most ${tryGetContext()?.get("env")?.TRPC_MAX_BATCH ?? "the configured number of"} calls (TRPC_MAX_BATCH)`
        : code === "MALFORMED_JSON"
        ? "The request body or input is not valid JSON"
        : error.cause instanceof ZodError
          ? describeIssues(error.cause)
          : error.message;
    return {
      code: shape.code,
      message,
      data,
    };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Domain errors thrown by services become TRPCErrors with the matching code, once, here. */
const domainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof AppError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: cause.trpcCode, message: cause.message, cause });
  }
  return result;
});

/** NUL and unpaired UTF-16 surrogates: Postgres text cannot hold the first, UTF-8 cannot carry the second exactly. */
const unstorable = /[\u0000\p{Cs}]/u;

/**
 * The JSON path of the first string (value or key) in the input that cannot be stored exactly, or null. Walks
 * with its own stack, so no depth of nesting hides a string from it (the body's size bounds the work).
 */
function firstUnstorable(input: unknown): string[] | null {
  // Each node links to its parent, so the walk costs one entry per value however deep the nesting is.
  interface Node {
    value: unknown;
    key: string | null;
    parent: Node | null;
  }
  const pathOf = (node: Node | null, last?: string): string[] => {
    const path = last === undefined ? [] : [last];
    for (let at = node; at && at.key !== null; at = at.parent) path.push(at.key);
    return path.reverse();
  };
  const pending: Node[] = [{ value: input, key: null, parent: null }];
  for (let node = pending.pop(); node; node = pending.pop()) {
    const { value } = node;
    if (typeof value === "string") {
      if (unstorable.test(value)) return pathOf(node);
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    const entries = Object.entries(value);
    // Pushed in reverse, so strings are met in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i]!;
      if (unstorable.test(key)) return pathOf(node, key);
      pending.push({ value: item, key, parent: node });
    }
  }
  return null;
}

/**
 * Every string a procedure receives is stored or compared as it came, so one that cannot be stored exactly is
 * refused at the edge with VALIDATION_FAILED, instead of surfacing as a driver error or being stored altered.
 */
const storableInput = t.middleware(async ({ getRawInput, next }) => {
  const path = firstUnstorable(await getRawInput());
  if (path) {
    throw new AppError("VALIDATION_FAILED", `Invalid input at '${path.join(".") || "(root)"}': NUL characters and unpaired surrogates are not accepted`, {
      details: [{ path: path.join("."), message: "contains a NUL character or an unpaired UTF-16 surrogate", code: "invalid_string" }],
    });
  }
  return next();
});

/**
 * Every procedure's input is an object, so a call without one (a GET with no `input`, a body-less POST) means
 * "no fields": it is validated as `{}`, and a procedure whose fields are all optional answers instead of a 400.
 */
const absentInputIsEmpty = t.middleware(async ({ getRawInput, next }) =>
  (await getRawInput()) === undefined ? next({ getRawInput: async () => ({}) }) : next(),
);

/** Each call, batched or not, counts once against the caller's API limits (src/platform/api-limits.ts). */
const apiRateLimited = t.middleware(({ ctx, next }) => {
  consumeApiLimits(ctx, callerLimits(ctx, ctx.principal));
  return next();
});

/** How a refusal is filed in the forensic log: an authentication failure, or a permission refused to a known caller. */
const refusals: Partial<Record<ErrorCode, ForensicCategory>> = {
  AUTH_TOKEN_MISSING: "auth_failure",
  AUTH_TOKEN_INVALID: "auth_failure",
  AUTH_TOKEN_EXPIRED: "auth_failure",
  AUTH_CLAIMS_INVALID: "auth_failure",
  FORBIDDEN: "permission_refused",
  NOT_A_MEMBER: "permission_refused",
  TENANT_SUSPENDED: "permission_refused",
  TENANT_CLOSED: "permission_refused",
};

/**
 * The security and forensic log (external logging, out of band): refusals, API-key use and operators' changes, with
 * who, from where and what. Records are buffered and sent after the response (src/platform/telemetry.ts).
 */
const forensicLog = t.middleware(async ({ ctx, path, type, next }) => {
  const result = await next();
  const { principal } = ctx;
  const who = {
    path,
    type,
    tenantId: principal?.tenantId ?? null,
    userId: principal?.userId ?? null,
    role: principal?.role ?? null,
    ip: ctx.origin.ip,
    userAgent: ctx.origin.userAgent,
  };
  if (!result.ok) {
    const code = appCodeOf(result.error);
    const category = refusals[code];
    if (category) ctx.telemetry.log(category, { ...who, code });
  } else if (principal?.apiKey) {
    ctx.telemetry.log("api_key_used", { ...who, apiKeyId: principal.userId, readOnly: principal.readOnly ?? false });
  }
  if (result.ok && principal?.role === "operator" && type === "mutation") ctx.telemetry.log("operator_action", who);
  return result;
});

export const publicProcedure = t.procedure.use(forensicLog).use(domainErrors).use(apiRateLimited).use(storableInput).use(absentInputIsEmpty);

export const authedProcedure = publicProcedure.use(({ ctx, type, next }) => {
  if (!ctx.principal) {
    throw ctx.authError ?? new AppError("AUTH_TOKEN_MISSING", "Authentication required: send 'Authorization: Bearer <token>'");
  }
  const principal: Principal = ctx.principal;
  if (principal.readOnly && type !== "query") throw new AppError("FORBIDDEN", "This API key is read-only");
  const scope: TenantScope = { tenantId: principal.tenantId, userId: principal.userId, role: principal.role };
  return next({ ctx: { ...ctx, principal, scope } });
});

const requireRole = (role: Role) =>
  authedProcedure.use(({ ctx, next }) => {
    if (!hasRole(ctx.principal, role)) {
      throw new AppError("FORBIDDEN", `This action requires the ${role} role`);
    }
    return next();
  });

export const adminProcedure = requireRole("admin");
export const operatorProcedure = requireRole("operator");
