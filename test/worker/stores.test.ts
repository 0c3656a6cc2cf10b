import { TRPCClientError } from "@trpc/client";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { createTenant } from "../support/factories";
import { setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("store access", () => {
  afterEach(() => setDatabaseFault("oltp", "none"));

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
