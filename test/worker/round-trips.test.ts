import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { postgresRoundTrips, redisRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("round trips are the unit of cost", () => {
  it("a tenant-scoped read procedure costs exactly one round trip to its tier and none elsewhere", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    await resetRoundTrips();
    const current = await client.tenants.current.query();
    expect(current.id).toBe(tenant.id);
    const counts = await postgresRoundTrips();
    expect(counts.oltp ?? 0).toBe(1);
    expect(counts.notifications ?? 0).toBe(0);
    expect(counts.olap ?? 0).toBe(0);
    expect(await redisRoundTrips()).toBe(0);
  });

  it("a tenant-scoped write with its context is also one round trip", async () => {
    const tenant = await createTenant();
    await resetRoundTrips();
    await trpcClient(tenant.admin.token, { batch: false }).tenants.rename.mutate({ name: "One trip" });
    expect((await postgresRoundTrips()).oltp).toBe(1);
  });
});
