// Issue 20, point 2: a tenant's admins opt it out of product events; from then on none of its facts reach the capture
// sink (the local stand-in, scripts/stack/telemetry-endpoint.ts `/_local/capture`), from a request or from a job, while
// another tenant's keep arriving; opting back in resumes them. The choice lives on the tenant row and is cached in Redis.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../src/platform/clock";
import { createRedis } from "../../src/platform/redis";
import { parseEnv } from "../../src/platform/env";
import { productEventsCache } from "../../src/tiers/oltp/services/product-events";
import { clockedWorker } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { queueNames } from "../support/runtime";
import { setRedisFault } from "../support/stack";

const control = (path: string, init?: RequestInit) => fetch(`${env.TEST_TELEMETRY_CONTROL_URL}${path}`, init);
interface Captured {
  event: string;
  properties: Record<string, unknown>;
}
const captured = async (tenant: TestTenant) =>
  ((await (await control("/capture")).json()) as Captured[]).filter((e) => e.properties.tenant_id === tenant.id).map((e) => e.event);

afterEach(() => setRedisFault("none"));

/** Product facts of both kinds: a request's (an admin creates a notification, the member reads it) and a job's (a lead import finishes). */
async function produceFacts(w: ReturnType<typeof clockedWorker>, tenant: TestTenant) {
  const admin = w.client(tenant.admin.token);
  const note = await admin.notifications.create.mutate({ userId: tenant.member.id, type: "test", title: "Hi", message: "Read me" });
  await w.client(tenant.member.token).notifications.markRead.mutate({ ids: [note.id] });
  await admin.jobs.importLeads.mutate({ fileName: "leads.csv", csv: `email\nlead-${crypto.randomUUID().slice(0, 8)}@example.test\n` });
  await w.deliver("JOBS_LOW", queueNames.low);
}

describe("product events: per-tenant opt-out", () => {
  it("an opted-out tenant's facts never arrive, from requests or jobs; another tenant's do; opting in resumes them", async () => {
    const w = clockedWorker(systemClock);
    const [a, b] = [await createTenant(), await createTenant()];
    await expect(w.client(a.member.token).tenants.setProductEvents.mutate({ optOut: true })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    expect(await w.client(a.admin.token).tenants.setProductEvents.mutate({ optOut: true })).toEqual({ productEventsOptOut: true });

    await produceFacts(w, a);
    await produceFacts(w, b);
    expect(await captured(b)).toEqual(expect.arrayContaining(["notification read", "import finished"]));
    expect(await captured(a)).toEqual([]);

    // Back in: the next facts arrive.
    await w.client(a.admin.token).tenants.setProductEvents.mutate({ optOut: false });
    await produceFacts(w, a);
    expect(await captured(a)).toEqual(expect.arrayContaining(["notification read", "import finished"]));
  });

  it("the choice is the tenant row's: with both caches emptied or Redis down it is read from OLTP and still honoured", async () => {
    const w = clockedWorker(systemClock);
    const tenant = await createTenant();
    await w.client(tenant.admin.token).tenants.setProductEvents.mutate({ optOut: true });
    const redis = createRedis(parseEnv(env));
    expect(await redis.get(productEventsCache.key(tenant.id))).toBe(1);
    // A request learns the choice from its authorization's tenant entry; a job looks it up by its own key. Both gone:
    await redis.del(productEventsCache.key(tenant.id), `auth:${tenant.id}`);
    await produceFacts(w, tenant);
    expect(await captured(tenant)).toEqual([]);
    // The job's flush refilled its key from OLTP, and the requests' authorizations their entry.
    expect(await redis.get(productEventsCache.key(tenant.id))).toBe(1);
    expect(await redis.hget(`auth:${tenant.id}`, "tenant")).toMatchObject({ status: "active", pe: true });

    await setRedisFault("down");
    const note = await w.client(tenant.admin.token).notifications.create.mutate({ userId: tenant.member.id, type: "test", title: "Hi", message: "Read me" });
    await w.client(tenant.member.token).notifications.markRead.mutate({ ids: [note.id] });
    await setRedisFault("none");
    expect(await captured(tenant)).toEqual([]);
  });

  it("a change reaches the next request at once, whatever the requests before it cached", async () => {
    const w = clockedWorker(systemClock);
    const tenant = await createTenant();
    const admin = w.client(tenant.admin.token);
    const member = w.client(tenant.member.token);
    const note = await admin.notifications.create.mutate({ userId: tenant.member.id, type: "test", title: "Hi", message: "Read me" });
    await member.notifications.markRead.mutate({ ids: [note.id] });
    await vi.waitFor(async () => expect(await captured(tenant)).toEqual(["notification read"]), { timeout: 5000, interval: 50 });

    await admin.tenants.setProductEvents.mutate({ optOut: true });
    await member.notifications.markUnread.mutate({ ids: [note.id] });
    await member.notifications.markRead.mutate({ ids: [note.id] });
    await admin.tenants.setProductEvents.mutate({ optOut: false });
    await member.notifications.markUnread.mutate({ ids: [note.id] });
    await member.notifications.markRead.mutate({ ids: [note.id] });
    await vi.waitFor(async () => expect(await captured(tenant)).toEqual(["notification read", "notification read"]), { timeout: 5000, interval: 50 });
  });

  it("with Redis unable to acknowledge it, a change is refused (503 naming redis) rather than left to a stale cache", async () => {
    const w = clockedWorker(systemClock);
    const tenant = await createTenant();
    await w.client(tenant.admin.token).tenants.current.query();
    await setRedisFault("down");
    await expect(w.client(tenant.admin.token).tenants.setProductEvents.mutate({ optOut: true })).rejects.toMatchObject({ data: { httpStatus: 503, code: "SERVICE_UNAVAILABLE", tier: "redis" } });
    await setRedisFault("none");
    expect(await w.client(tenant.admin.token).tenants.current.query()).toMatchObject({ productEventsOptOut: false });
  });
});
