import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { signTrackingToken } from "../../src/tiers/jobs/inbound/tracking";
import { clockedWorker, settableClock } from "../support/clock";
import { noonOf } from "../support/olap";
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

describe("a request's product fact costs no lookup of its own", () => {
  it("mark read, its after-response work included: 1 notifications round trip and 2 Redis (authorization; cache invalidation), none for the opt-out", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const member = trpcClient(tenant.member.token, { batch: false });
    const note = await admin.notifications.create.mutate({ userId: tenant.member.id, type: "test", title: "Hi", message: "Read me" });
    await member.notifications.list.query({});
    const reads = async () =>
      ((await (await fetch(`${env.TEST_TELEMETRY_CONTROL_URL}/capture`)).json()) as Array<{ event: string; properties: Record<string, unknown> }>).filter(
        (e) => e.event === "notification read" && e.properties.tenant_id === tenant.id,
      ).length;

    await resetRoundTrips();
    expect(await member.notifications.markRead.mutate({ ids: [note.id] })).toMatchObject({ updated: 1 });
    // The flush posts the fact after deciding the opt-out, so once it has arrived any lookup has been made;
    // the invalidation runs beside it.
    await vi.waitFor(async () => expect(await reads()).toBe(1), { timeout: 5000, interval: 50 });
    await vi.waitFor(async () => expect(await redisRoundTrips()).toBeGreaterThanOrEqual(2), { timeout: 5000, interval: 50 });
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 0, notifications: 1, olap: 0 });
    expect(await redisRoundTrips()).toBe(2);
  });
});

describe("inbound facts cost no Postgres round trip at the edge", () => {
  it("a signed provider webhook, an open pixel and a click redirect only queue their facts: 0 OLTP, 0 notifications, 0 OLAP", async () => {
    const secret = `whsec_${btoa("round-trip-secret-0123456789abcdef")}`;
    const clock = settableClock(noonOf(1));
    const worker = clockedWorker(clock, { WEBHOOK_SIGNING_SECRET: secret });
    const emailId = crypto.randomUUID();
    const body = JSON.stringify({ events: [{ id: `evt-${emailId}`, type: "delivered", emailId }] });
    const webhook = { "content-type": "application/json", "webhook-id": `msg-${emailId}`, "webhook-timestamp": String(Math.floor(clock.now().getTime() / 1000)) };
    const workerEnv = parseEnv(env);
    const open = await signTrackingToken(workerEnv, { k: "o", e: emailId });
    const click = await signTrackingToken(workerEnv, { k: "c", e: emailId, i: 0, u: "https://example.com/" });

    await resetRoundTrips();
    const responses = [
      await worker.request("/v1/webhooks/standard", { method: "POST", body, headers: { ...webhook, "webhook-signature": new Webhook(secret).sign(webhook["webhook-id"], clock.now(), body) } }),
      await worker.request(`/t/o/${open}.gif`),
      await worker.request(`/t/c/${click}`, { redirect: "manual" }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 302]);
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 0, notifications: 0, olap: 0 });
    expect(worker.held.JOBS_NORMAL.held.filter((m) => m.type === "RECORD_INBOUND_FACTS")).toHaveLength(3);
  });
});
