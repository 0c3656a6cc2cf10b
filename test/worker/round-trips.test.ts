import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { postgresRoundTrips, redisRoundTrips, resetRoundTrips } from "../support/stack";
import { request, trpcClient } from "../support/worker";

/**
 * Every authenticated request is authorized against the caller's current membership (README, "Authorization"):
 * from the Redis access cache, so warm requests pay no Postgres round trip for it and one Redis round trip,
 * sent in the same pipeline as the request's own Redis reads where it has some (the unread badge). Each test
 * warms the cache with one request first; the cold request reads the membership from OLTP once.
 */
describe("round trips are the unit of cost", () => {
  it("a tenant-scoped read procedure costs exactly one round trip to its tier, none elsewhere, and one Redis round trip to authorize", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    await client.tenants.current.query();
    await resetRoundTrips();
    const current = await client.tenants.current.query();
    expect(current.id).toBe(tenant.id);
    const counts = await postgresRoundTrips();
    expect(counts.oltp ?? 0).toBe(1);
    expect(counts.notifications ?? 0).toBe(0);
    expect(counts.olap ?? 0).toBe(0);
    expect(await redisRoundTrips()).toBe(1);
  });

  it("a tenant-scoped write with its context is also one round trip", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.admin.token, { batch: false });
    await client.tenants.current.query();
    await resetRoundTrips();
    await client.tenants.rename.mutate({ name: "One trip" });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(await redisRoundTrips()).toBe(1);
  });

  it("the hot paths pay no Postgres round trip for authorization: lead list, notifications on login, the unread badge", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const badge = () => request("/v1/notifications/unread-count", { headers: { authorization: `Bearer ${tenant.member.token}` } });
    await client.leads.list.query({});
    await badge();

    await resetRoundTrips();
    await client.leads.list.query({});
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 1, notifications: 0, olap: 0 });
    expect(await redisRoundTrips()).toBe(1);

    await resetRoundTrips();
    await client.notifications.list.query({});
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 0, notifications: 1, olap: 0 });
    expect(await redisRoundTrips()).toBe(1);

    // The badge's cache read travels with the authorization's: still the one Redis round trip it always cost.
    await resetRoundTrips();
    expect(await (await badge()).json()).toEqual({ unread: 0 });
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 0, notifications: 0, olap: 0 });
    expect(await redisRoundTrips()).toBe(1);
  });
});
