import { TRPCClientError } from "@trpc/client";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { tenantTransaction } from "../../src/core/db";
import { parseEnv } from "../../src/core/env";
import { createTenant } from "../support/factories";
import { setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("store access", () => {
  afterEach(() => setDatabaseFault("oltp", "none"));

  it("an interactive transaction over the WebSocket Pool runs under the tenant's context", async () => {
    const tenant = await createTenant();
    const scope = { tenantId: tenant.id, userId: tenant.admin.id, role: "admin" as const };
    const seen = await tenantTransaction(parseEnv(env), "oltp", scope, async (tx) => {
      const users = await tx.execute(sql`select tenant_id from users`);
      const context = await tx.execute(sql`select current_setting('app.current_tenant_id') as tenant, current_user as role`);
      return { users: users.rows, context: context.rows[0] };
    });
    expect(seen.context).toEqual({ tenant: tenant.id, role: "app_user" });
    expect(seen.users).toHaveLength(2);
    expect(seen.users.every((u) => u.tenant_id === tenant.id)).toBe(true);
  });

  it("an interactive transaction that throws leaves nothing behind", async () => {
    const tenant = await createTenant();
    const scope = { tenantId: tenant.id, userId: tenant.admin.id, role: "admin" as const };
    const failed = tenantTransaction(parseEnv(env), "oltp", scope, async (tx) => {
      await tx.execute(sql`update tenants set name = 'half-written'`);
      throw new Error("business rule failed after the write");
    });
    await expect(failed).rejects.toThrow();
    const current = await trpcClient(tenant.member.token).tenants.current.query();
    expect(current.name).toBe(tenant.name);
  });

  it("a procedure whose database is down answers 503 SERVICE_UNAVAILABLE naming the tier, quickly", async () => {
    const tenant = await createTenant();
    await setDatabaseFault("oltp", "down");
    const started = Date.now();
    const error = await trpcClient(tenant.member.token).tenants.current.query().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<never>).data).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503, tier: "oltp" });
    expect((error as TRPCClientError<never>).message).not.toMatch(/127\.0\.0\.1|ECONN|fetch/i);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("a hanging database is cut off by the store timeout instead of holding the request", async () => {
    const tenant = await createTenant();
    await setDatabaseFault("oltp", "hang");
    const started = Date.now();
    const error = await trpcClient(tenant.member.token).tenants.current.query().catch((e: unknown) => e);
    expect((error as TRPCClientError<never>).data).toMatchObject({ code: "SERVICE_UNAVAILABLE", tier: "oltp" });
    expect(Date.now() - started).toBeLessThan(parseEnv(env).STORE_TIMEOUT_MS + 2000);
  });
});
