// A tenant's opt-out of product events: the tenant row holds it (tenants.product_events_opt_out), Redis caches it for
// the telemetry flush, which drops an opted-out tenant's facts before they leave the platform.
import { eq, sql } from "drizzle-orm";
import { internalBatch, tenantBatch, type TenantScope } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import type { Services } from "../../../platform/services";
import { withAccessChange } from "./access";
import { tenants } from "../schema";

/**
 * Two caches hold the choice. A request's flush reads it from the authorization's tenant entry (access.ts), which
 * the request read anyway, so a product fact costs no lookup of its own; the setter changes it as an access change
 * (a new epoch before the commit, the new entry after), so the next request anywhere sees it, and refuses while Redis
 * cannot acknowledge that. Contexts without an authorization (jobs, crons) look it up: cache-aside, one string key
 * per tenant ("1" opted out, "0" not), deleted before the commit and written after it; a reader that filled the key
 * from a read racing the change can leave the old value for at most `ttlSeconds`. Redis is never the source of
 * truth: a miss or an outage reads OLTP.
 */
export const productEventsCache = {
  ttlSeconds: 300,
  key: (tenantId: string) => `pe:optout:${tenantId}`,
};

export async function setProductEventsOptOut(services: Services, scope: TenantScope, optOut: boolean): Promise<{ productEventsOptOut: boolean }> {
  const key = productEventsCache.key(scope.tenantId);
  const redis = services.redis();
  const audit = services.audit.action(scope, "tenant.productEvents", { type: "tenant", id: scope.tenantId }, { optOut });
  const row = await withAccessChange(services, scope.tenantId, async () => {
    await redis.del(key).catch((error: unknown) => services.logger.warn("product-event opt-out cache not cleared", { error }));
    const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
      db
        .update(tenants)
        .set({ productEventsOptOut: optOut })
        .where(eq(tenants.id, scope.tenantId))
        .returning({ optOut: tenants.productEventsOptOut, status: tenants.status }),
      audit.insert(db),
    ]);
    const updated = rows[0];
    return { result: updated, changes: updated ? { tenantStatus: updated.status, productEventsOptOut: updated.optOut } : {} };
  });
  audit.sendAfterCommit();
  if (!row) throw new AppError("NOT_FOUND", "Tenant not found");
  // This request's own captures see the choice too.
  services.telemetry.optOutKnown(scope.tenantId, row.optOut);
  await redis
    .set(key, row.optOut ? "1" : "0", { ex: productEventsCache.ttlSeconds })
    .catch((error: unknown) => services.logger.warn("product-event opt-out cache not written", { error }));
  return { productEventsOptOut: row.optOut };
}

/**
 * Which of these tenants opted out, for the telemetry flush (never on a response path): one Redis MGET, and for the
 * keys it lacks (or all, with Redis down) one OLTP read per tenant, cached afterwards. A tenant whose choice cannot
 * be read at all is reported as opted out: its facts are dropped rather than sent against its wish.
 */
export function productEventsOptOutLookup(services: Services) {
  return async (tenantIds: string[]): Promise<Set<string>> => {
    const out = new Set<string>();
    if (tenantIds.length === 0) return out;
    const redis = services.redis();
    const cached = await redis.mget<Array<string | number | null>>(...tenantIds.map(productEventsCache.key)).catch(() => null);
    const missing: string[] = [];
    tenantIds.forEach((id, i) => {
      const value = cached?.[i];
      if (value === null || value === undefined) missing.push(id);
      else if (String(value) === "1") out.add(id);
    });
    await Promise.all(
      missing.map(async (tenantId) => {
        try {
          const [rows] = await internalBatch(services.store("oltp"), "system", tenantId, (db) => [
            db.execute<{ opt_out: boolean }>(sql`select product_events_opt_out as opt_out from tenants where id = ${tenantId}`),
          ]);
          // An unknown tenant (erased) has nobody to ask: nothing of it is sent.
          const optOut = rows.rows[0]?.opt_out ?? true;
          if (optOut) out.add(tenantId);
          await redis.set(productEventsCache.key(tenantId), optOut ? "1" : "0", { ex: productEventsCache.ttlSeconds }).catch(() => undefined);
        } catch (error) {
          services.logger.warn("product-event opt-out unknown: the tenant's facts are dropped", { tenantId, error });
          out.add(tenantId);
        }
      }),
    );
    return out;
  };
}
