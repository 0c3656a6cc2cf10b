// Postgres access for the three Neon databases: clients per request, tenant-scoped and internal-role transactions, error mapping.
import { withSpan } from "./spans";
import { neon, neonConfig, type NeonQueryFunction } from "@neondatabase/serverless";
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import { drizzle as drizzleHttp, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import type { Role } from "./auth";
import type { Env } from "./env";
import { AppError, tierUnavailable, type Tier } from "./errors";

export type DbTier = Extract<Tier, "oltp" | "notifications" | "olap">;

const urlVar = {
  oltp: "OLTP_DATABASE_URL",
  notifications: "NOTIFICATIONS_DATABASE_URL",
  olap: "OLAP_DATABASE_URL",
} as const satisfies Record<DbTier, keyof Env>;

/** What a tenant-scoped statement runs as: set with set_config(..., true) first in its transaction. */
export interface TenantScope {
  tenantId: string;
  userId: string;
  role: Role;
}

/**
 * Points the Neon driver at the local endpoint when the environment says so. neonConfig is
 * module-global, but the value depends only on the environment, so setting it again is harmless.
 */
function configureNeon(env: Env): void {
  if (env.NEON_LOCAL_FETCH_ENDPOINT) neonConfig.fetchEndpoint = env.NEON_LOCAL_FETCH_ENDPOINT;
  if (env.NEON_LOCAL_WS_PROXY) {
    neonConfig.wsProxy = env.NEON_LOCAL_WS_PROXY;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineConnect = false;
  }
}

export interface TierStore {
  tier: DbTier;
  /** Raw tagged-template client over HTTP: one request per query or per transaction. */
  sql: NeonQueryFunction<false, false>;
  /** Drizzle over HTTP. */
  db: NeonHttpDatabase;
  connectionString: string;
  /**
   * Set when this context already found the tier unreachable and chose to carry on without it (authorization
   * falling back to a token's claims): later statements fail at once instead of waiting out a second timeout.
   */
  unavailable?: AppError;
}

/**
 * A store for one tier. Each HTTP query gets its own timeout signal: the driver spreads
 * `fetchOptions` into every fetch, so a getter yields a fresh AbortSignal per round trip.
 */
export function tierStore(env: Env, tier: DbTier, timeoutMs = env.STORE_TIMEOUT_MS): TierStore {
  configureNeon(env);
  const connectionString = env[urlVar[tier]];
  const fetchOptions = {
    get signal() {
      return AbortSignal.timeout(timeoutMs);
    },
  };
  const client = neon(connectionString, { fetchOptions });
  return { tier, sql: client, db: drizzleHttp({ client }), connectionString };
}

const setContext = (scope: TenantScope): SQL =>
  sql`select set_config('app.current_tenant_id', ${scope.tenantId}, true),
             set_config('app.current_user_id', ${scope.userId}, true),
             set_config('app.current_role', ${scope.role}, true)`;

export type NonEmptyBatch = [BatchItem<"pg">, ...BatchItem<"pg">[]];

/**
 * One HTTP round trip: `context` (the set_config statement), then the statements, as one transaction.
 * tenantBatch and internalBatch are the two contexts services use; the API-key lookup is the one other.
 */
export async function batchUnder<T extends NonEmptyBatch>(
  store: TierStore,
  context: SQL,
  statements: T,
  span: { tenantId?: string | null; role?: string } = {},
): Promise<BatchResponse<T>> {
  if (store.unavailable) throw store.unavailable;
  const attributes = {
    "db.system": "postgresql",
    "edp.tier": store.tier,
    "edp.statements": statements.length,
    ...(span.tenantId ? { "edp.tenant_id": span.tenantId } : {}),
    ...(span.role ? { "edp.role": span.role } : {}),
  };
  return withSpan(`${store.tier} round trip`, attributes, async () => {
    try {
      const [, ...results] = await store.db.batch([store.db.execute(context), ...statements]);
      return results as BatchResponse<T>;
    } catch (error) {
      throw mapDbError(store.tier, error);
    }
  });
}

/**
 * Runs statements as one non-interactive transaction whose first statement sets the tenant
 * context, so row-level security applies to all of them. Over HTTP this is exactly one
 * round trip, whatever the number of statements.
 */
export function tenantBatch<T extends NonEmptyBatch>(
  store: TierStore,
  scope: TenantScope,
  build: (db: NeonHttpDatabase) => T,
): Promise<BatchResponse<T>> {
  return batchUnder(store, setContext(scope), build(store.db), { tenantId: scope.tenantId, role: scope.role });
}

/**
 * Roles no token can carry: the platform's own work, admitted by each table's policies by name.
 * - system: the job runtime, outboxes, relays, raised events and retention of the notifications database;
 * - analytics: the OLAP ETL (read-only across tenants in OLTP);
 * - maintenance: cross-tenant pruning of OLTP rows past retention (email events, unindexed content);
 * - lifecycle: erasure, consistency checks and content retention, across tenants.
 */
export type InternalRole = "system" | "analytics" | "maintenance" | "lifecycle";

/**
 * Like tenantBatch, for code that acts for the platform rather than a caller: the role is an
 * internal one, and the tenant is set only when the work is one tenant's. The one way to run SQL
 * under an internal role: every tier's cron, job and relay goes through it.
 */
export function internalBatch<T extends NonEmptyBatch>(
  store: TierStore,
  role: InternalRole,
  tenantId: string | null,
  build: (db: NeonHttpDatabase) => T,
): Promise<BatchResponse<T>> {
  const context = sql`select set_config('app.current_tenant_id', ${tenantId ?? ""}, true),
                             set_config('app.current_user_id', '', true),
                             set_config('app.current_role', ${role}, true)`;
  return batchUnder(store, context, build(store.db), { tenantId, role });
}

/** Postgres SQLSTATE classes that mean "the database is not available", not "the query is wrong". */
const unavailableStates = /^(08|53|57P|58)/;

function findPgCode(error: unknown): { code?: string; fetchFailure: boolean } {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { code?: unknown; sourceError?: unknown; message?: unknown; name?: unknown; cause?: unknown };
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return { code: e.code, fetchFailure: false };
    if (e.sourceError !== undefined) return { fetchFailure: true };
    if (typeof e.message === "string" && /Error connecting to database|Server error \(HTTP status|fetch failed|timed out|aborted|ECONNREFUSED|WebSocket/i.test(e.message)) {
      return { fetchFailure: true };
    }
    if (e.name === "TimeoutError" || e.name === "AbortError") return { fetchFailure: true };
    current = e.cause;
  }
  return { fetchFailure: false };
}

/** `{ used, allowed }` from the storage-limit exception's DETAIL, when it parses. */
function storageDetails(error: unknown): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(String((error as { detail?: unknown }).detail ?? "")) as { used?: unknown; allowed?: unknown };
    return { used: Number(parsed.used), allowed: Number(parsed.allowed) };
  } catch {
    return undefined;
  }
}

/** Maps driver and Postgres failures to domain errors; the raw error stays attached as the cause. */
export function mapDbError(tier: DbTier, error: unknown): AppError {
  if (error instanceof AppError) return error;
  const { code, fetchFailure } = findPgCode(error);
  if (fetchFailure || (code && unavailableStates.test(code))) return tierUnavailable(tier, error);
  switch (code) {
    case "23505":
      return new AppError("CONFLICT", "A record with the same unique value already exists", { tier, cause: error });
    case "23503":
      return new AppError("CONFLICT", "The record refers to something that does not exist", { tier, cause: error });
    case "23514":
    case "23502":
    case "22001":
    case "22P02":
    case "22003":
      return new AppError("VALIDATION_FAILED", "The data does not satisfy the store's constraints", { tier, cause: error });
    case "42501":
      return new AppError("FORBIDDEN", "Not allowed for this tenant", { tier, cause: error });
    case "ED001":
      // Raised by content_assert_within_storage_limit (drizzle/oltp): the plan's content storage is used up.
      return new AppError("STORAGE_LIMIT_EXCEEDED", "The plan's content storage is used up; delete emails or change the plan", {
        tier,
        cause: error,
        details: storageDetails(error),
      });
    default:
      // Class 22 (data exception: a date out of range, a bad datetime format, an invalid escape, …) is the data a
      // caller sent; class 54 (program limit exceeded: too long for a tsvector, too deeply nested) is its size.
      if (code?.startsWith("22")) return new AppError("VALIDATION_FAILED", "A value is outside what the store accepts", { tier, cause: error });
      if (code?.startsWith("54")) return new AppError("PAYLOAD_TOO_LARGE", "A value is larger or deeper than the store accepts", { tier, cause: error });
      return new AppError("INTERNAL", "Internal server error", { tier, cause: error });
  }
}
