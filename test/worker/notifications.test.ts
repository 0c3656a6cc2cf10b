import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { createRedis } from "../../src/platform/redis";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import { invalidateUnread, lookupUnread, refillUnread } from "../../src/tiers/notifications/services/unread-cache";
import {
  asSystem,
  notificationsSql,
  inSeconds,
  notificationsTenant,
  sleep,
  unreadInDatabase,
  type NotificationsTenant,
} from "../support/notifications";
import { postgresRoundTrips, redisRoundTrips, resetRoundTrips, setDatabaseFault, setRedisFault } from "../support/stack";
import { request, trpcClient } from "../support/worker";

const client = (token: string) => trpcClient(token, { batch: false });
/** Cache invalidations and refills run after the response; give them a moment to land. */
const settle = () => sleep(150);

async function create(
  tenant: NotificationsTenant,
  input: Partial<Parameters<ReturnType<typeof client>["notifications"]["create"]["mutate"]>[0]> = {},
) {
  return client(tenant.admin.token).notifications.create.mutate({
    userId: tenant.member.id,
    type: "campaign.finished",
    title: "Campaign finished",
    message: "Your campaign has finished sending.",
    ...input,
  });
}

const unreadOverHttp = async (token: string) => {
  const response = await request("/v1/notifications/unread-count", { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { unread: number }).unread;
};

describe("the notification center", () => {
  let tenant: NotificationsTenant;
  beforeAll(async () => {
    tenant = await notificationsTenant();
  });

  it("lists the caller's own and tenant-wide notifications newest first, with the unread count", async () => {
    const t = await notificationsTenant();
    const first = await create(t, { title: "first" });
    const wide = await create(t, { userId: null, title: "tenant-wide" });
    const last = await create(t, { title: "last" });
    await create(t, { userId: t.other.id, title: "someone else's" });

    const page = await client(t.member.token).notifications.list.query({});
    expect(page.items.map((n) => n.id)).toEqual([last.id, wide.id, first.id]);
    expect(page.items.find((n) => n.id === wide.id)?.userId).toBeNull();
    expect(page.unread).toBe(3);
    const othersView = await client(t.other.token).notifications.list.query({});
    expect(othersView.items.map((n) => n.title)).toEqual(["someone else's", "tenant-wide"]);
  });

  it("pages with a cursor without gaps or repeats, and filters by unread and type", async () => {
    const t = await notificationsTenant();
    const created = [];
    for (let i = 0; i < 7; i++) {
      created.push(await create(t, { userId: i % 3 === 0 ? null : t.member.id, type: i % 2 ? "odd" : "even", title: `n${i}` }));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client(t.member.token).notifications.list.query({ limit: 3, cursor });
      seen.push(...page.items.map((n) => n.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(created.map((n) => n.id).reverse());

    await client(t.member.token).notifications.markRead.mutate({ ids: [created[0]!.id, created[1]!.id] });
    const unread = await client(t.member.token).notifications.list.query({ unreadOnly: true });
    expect(unread.items.map((n) => n.id)).toEqual(created.slice(2).map((n) => n.id).reverse());
    const odd = await client(t.member.token).notifications.list.query({ type: "odd" });
    expect(odd.items.map((n) => n.title)).toEqual(["n5", "n3", "n1"]);
  });

  it("excludes soft-deleted and expired notifications from lists and counts", async () => {
    const t = await notificationsTenant();
    const keep = await create(t, { title: "keep" });
    const gone = await create(t, { title: "gone" });
    const expiring = await create(t, { title: "expiring", expiresAt: inSeconds(1) });
    expect((await client(t.member.token).notifications.unreadCount.query()).unread).toBe(3);
    await client(t.member.token).notifications.delete.mutate({ ids: [gone.id] });
    await sleep(1100);
    const page = await client(t.member.token).notifications.list.query({});
    expect(page.items.map((n) => n.id)).toEqual([keep.id]);
    expect(page.unread).toBe(1);
    await settle();
    // The cached count had expired by itself at the notification's expires_at.
    expect((await client(t.member.token).notifications.unreadCount.query()).unread).toBe(1);
    expect(expiring.expiresAt).not.toBeNull();
  });

  it("markRead, markUnread and markAllRead set is_read and read_at, per user for tenant-wide rows", async () => {
    const t = await notificationsTenant();
    const own = await create(t);
    const wide = await create(t, { userId: null });
    const member = client(t.member.token).notifications;

    const read = await member.markRead.mutate({ ids: [own.id, wide.id] });
    expect(read).toEqual({ updated: 2, unread: 0 });
    const listed = await member.list.query({});
    expect(listed.items.every((n) => n.isRead && n.readAt !== null)).toBe(true);
    // The other member's copy of the tenant-wide notification is untouched.
    const others = await client(t.other.token).notifications.list.query({});
    expect(others.items.map((n) => [n.id, n.isRead])).toEqual([[wide.id, false]]);

    expect(await member.markRead.mutate({ ids: [own.id] })).toEqual({ updated: 0, unread: 0 });
    expect(await member.markUnread.mutate({ ids: [own.id, wide.id] })).toEqual({ updated: 2, unread: 2 });
    expect((await member.list.query({})).items.every((n) => !n.isRead && n.readAt === null)).toBe(true);
    expect(await member.markAllRead.mutate()).toEqual({ updated: 2, unread: 0 });
    expect(await member.markAllRead.mutate()).toEqual({ updated: 0, unread: 0 });
  });

  it("each read-state change and the list on login are one Postgres round trip", async () => {
    const t = await notificationsTenant();
    const n = await create(t);
    const member = client(t.member.token).notifications;
    // The member's first request reads its membership from OLTP (a cold access cache); the measured ones are warm.
    await member.unreadCount.query();
    for (const call of [
      () => member.list.query({}),
      () => member.markRead.mutate({ ids: [n.id] }),
      () => member.markUnread.mutate({ ids: [n.id] }),
      () => member.markAllRead.mutate(),
      () => member.delete.mutate({ ids: [n.id] }),
    ]) {
      await settle();
      await resetRoundTrips();
      await call();
      const counts = await postgresRoundTrips();
      expect(counts.notifications).toBe(1);
      expect((counts.oltp ?? 0) + (counts.olap ?? 0)).toBe(0);
    }
  });

  it("the unread count is served from Redis on a hit: 1 Redis round trip, 0 Postgres", async () => {
    const t = await notificationsTenant();
    await create(t);
    await create(t, { userId: null });
    await settle();
    await resetRoundTrips();
    expect(await unreadOverHttp(t.member.token)).toBe(2); // miss: Redis lookup, then Postgres
    expect((await postgresRoundTrips()).notifications).toBe(1);
    await settle();
    await resetRoundTrips();
    expect(await unreadOverHttp(t.member.token)).toBe(2);
    expect((await postgresRoundTrips()).notifications ?? 0).toBe(0);
    expect(await redisRoundTrips()).toBe(1);
  });

  it("the cache never drifts: after mixed creates, reads, deletes and expiries it equals SELECT count(*)", async () => {
    const t = await notificationsTenant();
    const admin = client(t.admin.token).notifications;
    const member = client(t.member.token).notifications;
    const check = async () => {
      await settle();
      const expected = await unreadInDatabase(t.id, t.member.id);
      expect(await unreadOverHttp(t.member.token)).toBe(expected);
      expect((await member.unreadCount.query()).unread).toBe(expected);
      return expected;
    };
    const a = await create(t);
    expect(await check()).toBe(1);
    const wide = await create(t, { userId: null });
    expect(await check()).toBe(2);
    await create(t, { expiresAt: inSeconds(1) });
    expect(await check()).toBe(3);
    await member.markRead.mutate({ ids: [a.id] });
    expect(await check()).toBe(2);
    await sleep(1000);
    expect(await check()).toBe(1);
    await member.delete.mutate({ ids: [wide.id] });
    expect(await check()).toBe(0);
    await admin.create.mutate({ userId: null, type: "billing", title: "Invoice", message: "Ready" });
    expect(await check()).toBe(1);
    await member.markUnread.mutate({ ids: [a.id] });
    expect(await check()).toBe(2);
    await member.markAllRead.mutate();
    expect(await check()).toBe(0);
  });

  it("a count refilled from a read that raced a write is never served", async () => {
    const redis = createRedis(parseEnv(env));
    const t = await notificationsTenant();
    const target = { tenantId: t.id, userId: t.member.id };
    // A reader misses and reads Postgres (count 0)...
    const miss = await lookupUnread(redis, t.id, t.member.id, Date.now());
    expect(miss.hit).toBe(false);
    // ...a write commits and invalidates before the reader's refill lands...
    await invalidateUnread(redis, notificationsConfig, [{ tenantId: t.id, userId: null }]);
    if (miss.hit) return;
    await refillUnread(redis, notificationsConfig, target, miss, 0, null, Date.now());
    // ...so the stale refill is not served; a refill tagged with current tokens is.
    const after = await lookupUnread(redis, t.id, t.member.id, Date.now());
    expect(after.hit).toBe(false);
    if (after.hit) return;
    await refillUnread(redis, notificationsConfig, target, after, 1, null, Date.now());
    expect(await lookupUnread(redis, t.id, t.member.id, Date.now())).toEqual({ hit: true, unread: 1 });
  });

  describe("while Redis is down", () => {
    afterEach(() => setRedisFault("none"));

    it("the unread count still answers correctly from Postgres", async () => {
      const t = await notificationsTenant();
      await create(t);
      await settle();
      await unreadOverHttp(t.member.token); // warm the cache with 1
      await settle();
      await setRedisFault("down");
      const n = await create(t, { userId: null }); // its invalidation is lost while Redis is down
      await resetRoundTrips();
      expect(await unreadOverHttp(t.member.token)).toBe(2);
      expect((await postgresRoundTrips()).notifications).toBe(1);
      expect((await client(t.member.token).notifications.markRead.mutate({ ids: [n.id] })).unread).toBe(1);
      expect((await client(t.member.token).notifications.unreadCount.query()).unread).toBe(1);
    });
  });

  describe("isolation", () => {
    it("another tenant's ids behave as not found, and change nothing", async () => {
      const other = await notificationsTenant();
      const foreign = await create(other);
      const mine = await create(tenant);
      for (const call of [
        () => client(tenant.member.token).notifications.markRead.mutate({ ids: [foreign.id] }),
        () => client(tenant.member.token).notifications.markUnread.mutate({ ids: [foreign.id] }),
        () => client(tenant.member.token).notifications.delete.mutate({ ids: [foreign.id] }),
        // A mix of one's own and a foreign id is refused as a whole: nothing half-written.
        () => client(tenant.member.token).notifications.markRead.mutate({ ids: [mine.id, foreign.id] }),
      ]) {
        await expect(call()).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
      }
      expect((await client(tenant.member.token).notifications.list.query({})).items.find((n) => n.id === mine.id)?.isRead).toBe(false);
      const victim = (await client(other.member.token).notifications.list.query({})).items;
      expect(victim.map((n) => [n.id, n.isRead])).toEqual([[foreign.id, false]]);
    });

    it("a member cannot change another member's notification", async () => {
      const t = await notificationsTenant();
      const theirs = await create(t, { userId: t.other.id });
      await expect(client(t.member.token).notifications.delete.mutate({ ids: [theirs.id] })).rejects.toMatchObject({
        data: { code: "NOT_FOUND" },
      });
      expect((await client(t.other.token).notifications.list.query({})).items.map((n) => n.id)).toEqual([theirs.id]);
    });

    it("row-level security alone hides other users' and tenants' rows from a member", async () => {
      const t = await notificationsTenant();
      const mine = await create(t);
      const wide = await create(t, { userId: null });
      await create(t, { userId: t.other.id });
      await create(await notificationsTenant());
      const sql = notificationsSql();
      const [, rows = []] = await sql.transaction([
        sql`select set_config('app.current_tenant_id', ${t.id}, true), set_config('app.current_user_id', ${t.member.id}, true),
                   set_config('app.current_role', 'member', true)`,
        sql`select id from notifications`,
      ]);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set([mine.id, wide.id]));
    });

    it("members cannot create notifications", async () => {
      await expect(
        client(tenant.member.token).notifications.create.mutate({ type: "x", title: "x", message: "x" }),
      ).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    });
  });

  describe("bad input answers a clear 4xx and writes nothing", () => {
    it.each([
      ["an unknown channel", { channel: "sms" }, "VALIDATION_FAILED"],
      ["an empty title", { title: "" }, "VALIDATION_FAILED"],
      ["an overlong type", { type: "x".repeat(51) }, "VALIDATION_FAILED"],
      ["a past expiry", { expiresAt: inSeconds(-60) }, "VALIDATION_FAILED"],
      ["a malformed expiry", { expiresAt: "tomorrow" }, "VALIDATION_FAILED"],
      ["oversize data", { data: { blob: "x".repeat(9000) } }, "PAYLOAD_TOO_LARGE"],
    ])("create with %s", async (_what, patch, code) => {
      const t = await notificationsTenant();
      await expect(create(t, patch as never)).rejects.toMatchObject({ data: { code } });
      expect((await client(t.member.token).notifications.list.query({})).items).toEqual([]);
    });

    it.each([
      ["not base64 JSON", "%%%"],
      ["a wrong shape", btoa(JSON.stringify({ t: "yesterday", id: 1 }))],
      ["an impossible date", btoa(JSON.stringify({ t: "2026-13-45T00:00:00.000000Z", id: crypto.randomUUID() }))],
    ])("a cursor that is %s", async (_what, cursor) => {
      await expect(client(tenant.member.token).notifications.list.query({ cursor })).rejects.toMatchObject({
        data: { code: "VALIDATION_FAILED", httpStatus: 400 },
      });
    });

    it("ids that are not uuids, or too many", async () => {
      const member = client(tenant.member.token).notifications;
      await expect(member.markRead.mutate({ ids: ["1"] })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
      await expect(member.markRead.mutate({ ids: [] })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
      const many = Array.from({ length: 101 }, () => crypto.randomUUID());
      await expect(member.delete.mutate({ ids: many })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
    });
  });

  describe("the browser route", () => {
    it("answers { unread } with CORS for an allowed origin, and 401 without a token", async () => {
      const t = await notificationsTenant();
      await create(t);
      const response = await request("/v1/notifications/unread-count", {
        headers: { authorization: `Bearer ${t.member.token}`, origin: "https://app.example.test" },
      });
      expect(await response.json()).toEqual({ unread: 1 });
      expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.test");
      // One user's exact count: never in a shared cache, and never reused by the browser without asking.
      expect(response.headers.get("cache-control")).toBe("private, max-age=0, must-revalidate");
      expect(response.headers.get("vary")?.toLowerCase()).toContain("authorization");
      const preflight = await request("/v1/notifications/unread-count", {
        method: "OPTIONS",
        headers: { origin: "https://app.example.test", "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
      const anonymous = await request("/v1/notifications/unread-count");
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("AUTH_TOKEN_MISSING");
    });
  });

  describe("failure isolation", () => {
    afterEach(async () => {
      await setDatabaseFault("olap", "none");
      await setDatabaseFault("oltp", "none");
      await setDatabaseFault("notifications", "none");
    });

    it("keeps serving while OLAP and OLTP are down", async () => {
      const t = await notificationsTenant();
      await setDatabaseFault("olap", "down");
      await setDatabaseFault("oltp", "down");
      const n = await create(t, { userId: null });
      const member = client(t.member.token).notifications;
      expect((await member.list.query({})).items.map((x) => x.id)).toEqual([n.id]);
      expect(await member.markRead.mutate({ ids: [n.id] })).toEqual({ updated: 1, unread: 0 });
      expect(await unreadOverHttp(t.member.token)).toBe(0);
    });

    it("answers SERVICE_UNAVAILABLE naming the tier when its own database is down", async () => {
      await setDatabaseFault("notifications", "down");
      await expect(client(tenant.member.token).notifications.list.query({})).rejects.toMatchObject({
        data: { code: "SERVICE_UNAVAILABLE", tier: "notifications" },
      });
    });
  });

  it("the seed's indexes serve list and unread count (no sequential scan)", async () => {
    const t = await notificationsTenant();
    await asSystem(
      (sql) => [
        sql`insert into notifications (tenant_id, user_id, type, title, message, created_at)
            select ${t.id}::uuid, case when g % 10 = 0 then ${t.member.id}::uuid else gen_random_uuid() end,
                   'seed', 't', 'm', now() - (g || ' seconds')::interval
            from generate_series(1, 3000) g`,
        sql`analyze notifications`,
      ],
      t.id,
    );
    const plans = await asSystem((sql) => [
      sql`set local enable_seqscan = off`,
      sql`explain select n.id from notifications n where n.user_id = ${t.member.id} and n.tenant_id = ${t.id}
          order by n.created_at desc limit 21`,
      sql`explain select count(*) from notifications n where n.user_id = ${t.member.id} and n.tenant_id = ${t.id} and n.is_read = false`,
    ]);
    const text = (rows: Record<string, unknown>[] | undefined) => (rows ?? []).map((r) => String(r["QUERY PLAN"])).join("\n");
    expect(text(plans[1])).toContain("idx_notifications_user_tenant_created");
    expect(text(plans[2])).toContain("idx_notifications_unread");
  });
});
