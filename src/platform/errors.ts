// The one domain error type and its mapping to tRPC codes, HTTP statuses and client-facing bodies.
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server";

/** Tiers as clients see them in errors and in /health. */
export type Tier = "oltp" | "content" | "jobs" | "notifications" | "olap" | "redis";

/**
 * Stable machine codes. Clients branch on these, so they never change meaning;
 * the README documents each one.
 */
export const errorCodes = {
  BAD_REQUEST: { trpc: "BAD_REQUEST", status: 400 },
  VALIDATION_FAILED: { trpc: "BAD_REQUEST", status: 400 },
  MALFORMED_JSON: { trpc: "PARSE_ERROR", status: 400 },
  BATCH_TOO_LARGE: { trpc: "BAD_REQUEST", status: 400 },
  AUTH_TOKEN_MISSING: { trpc: "UNAUTHORIZED", status: 401 },
  AUTH_TOKEN_INVALID: { trpc: "UNAUTHORIZED", status: 401 },
  AUTH_TOKEN_EXPIRED: { trpc: "UNAUTHORIZED", status: 401 },
  AUTH_CLAIMS_INVALID: { trpc: "UNAUTHORIZED", status: 401 },
  WEBHOOK_SIGNATURE_INVALID: { trpc: "UNAUTHORIZED", status: 401 },
  FORBIDDEN: { trpc: "FORBIDDEN", status: 403 },
  NOT_A_MEMBER: { trpc: "FORBIDDEN", status: 403 },
  TENANT_SUSPENDED: { trpc: "FORBIDDEN", status: 403 },
  TENANT_CLOSED: { trpc: "FORBIDDEN", status: 403 },
  STORAGE_LIMIT_EXCEEDED: { trpc: "FORBIDDEN", status: 403 },
  LINK_INVALID: { trpc: "FORBIDDEN", status: 403 },
  LINK_EXPIRED: { trpc: "FORBIDDEN", status: 403 },
  NOT_FOUND: { trpc: "NOT_FOUND", status: 404 },
  ROUTE_NOT_FOUND: { trpc: "NOT_FOUND", status: 404 },
  PROCEDURE_NOT_FOUND: { trpc: "NOT_FOUND", status: 404 },
  METHOD_NOT_SUPPORTED: { trpc: "METHOD_NOT_SUPPORTED", status: 405 },
  CONFLICT: { trpc: "CONFLICT", status: 409 },
  DOMAIN_TAKEN: { trpc: "CONFLICT", status: 409 },
  PAYLOAD_TOO_LARGE: { trpc: "PAYLOAD_TOO_LARGE", status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { trpc: "UNSUPPORTED_MEDIA_TYPE", status: 415 },
  RATE_LIMITED: { trpc: "TOO_MANY_REQUESTS", status: 429 },
  SERVICE_UNAVAILABLE: { trpc: "SERVICE_UNAVAILABLE", status: 503 },
  TIMEOUT: { trpc: "TIMEOUT", status: 408 },
  ENV_INVALID: { trpc: "INTERNAL_SERVER_ERROR", status: 500 },
  INTERNAL: { trpc: "INTERNAL_SERVER_ERROR", status: 500 },
} as const satisfies Record<string, { trpc: TRPC_ERROR_CODE_KEY; status: number }>;

export type ErrorCode = keyof typeof errorCodes;

/** `error.data` of every failed tRPC call: a stable machine `code` (docs/api.md: error codes) and the request id. */
export interface ErrorData {
  code: ErrorCode;
  httpStatus: number;
  requestId: string | null;
  path: string | null;
  tier?: Tier;
  details?: unknown;
}

export interface AppErrorOptions {
  tier?: Tier;
  /** Safe, structured detail for the client (e.g. which fields failed). */
  details?: unknown;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly tier: Tier | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.tier = options.tier;
    this.details = options.details;
  }

  get status(): number {
    return errorCodes[this.code].status;
  }

  get trpcCode(): TRPC_ERROR_CODE_KEY {
    return errorCodes[this.code].trpc;
  }
}

/** A tier could not be reached in time: the caller gets 503 naming the tier. */
export function tierUnavailable(tier: Tier, cause?: unknown): AppError {
  return new AppError("SERVICE_UNAVAILABLE", `The ${tier} tier is unavailable; try again shortly`, { tier, cause });
}

/** Anything that is not an AppError is an internal error whose details stay in the logs. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError("INTERNAL", "Internal server error", { cause: error });
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; tier?: Tier; details?: unknown };
}

/** The JSON body every non-tRPC route answers an error with. */
export function errorBody(error: AppError, requestId: string): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      requestId,
      ...(error.tier ? { tier: error.tier } : {}),
      ...(error.details !== undefined ? { details: error.details } : {}),
    },
  };
}
