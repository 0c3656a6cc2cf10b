import { beforeAll, describe, expect, it } from "vitest";
import { parseEnv } from "../../src/platform/env";
import { tierStore } from "../../src/platform/db";
import { notificationsConfig } from "../../src/tiers/notifications/config";
import { raiseSystemEvent } from "../../src/tiers/notifications/services/system-events";
import { env } from "cloudflare:workers";
import { notificationsTenant, operator, type Caller, type NotificationsTenant } from "../support/notifications";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

const board = (caller: Caller) => trpcClient(caller.token, { batch: false }).admin.systemEvents;
const event = (patch: Record<string, unknown> = {}) => ({
  eventType: "mailbox.bounce_spike",
  severity: "high" as const,
  description: "Bounce rate above 8% on a mailbox",
  details: { mailbox: "m-1", rate: 0.09 },
  ...patch,
});

describe("the admin incident board", () => {
  let a: NotificationsTenant;
  let b: NotificationsTenant;
  let staff: Caller;
  beforeAll(async () => {
    [a, b, staff] = await Promise.all([notificationsTenant(), notificationsTenant(), operator()]);
  });

  it("a tenant admin records and lists their tenant's events, newest first, in one round trip", async () => {
    const first = await board(a.admin).create.mutate(event());
    const second = await board(a.admin).create.mutate(event({ severity: "low", eventType: "import.slow" }));
    expect(first.event).toMatchObject({ tenantId: a.id, severity: "high", isResolved: false, occurrences: 1 });
    await resetRoundTrips();
    const page = await board(a.admin).list.query({});
    expect((await postgresRoundTrips()).notifications).toBe(1);
    expect(page.items.map((e) => e.id)).toEqual([second.event.id, first.event.id]);
  });

  it("tenant admins never see another tenant's events; operators see every tenant and platform-wide ones", async () => {
    const ofB = await board(b.admin).create.mutate(event());
    const platform = await board(staff).create.mutate(event({ eventType: "tier.down", severity: "critical", tenantId: null }));
    expect(platform.event.tenantId).toBeNull();
    const seenByA = (await board(a.admin).list.query({ limit: 100 })).items.map((e) => e.id);
    expect(seenByA).not.toContain(ofB.event.id);
    expect(seenByA).not.toContain(platform.event.id);
    const seenByStaff = (await board(staff).list.query({ limit: 100 })).items.map((e) => e.id);
    expect(seenByStaff).toEqual(expect.arrayContaining([ofB.event.id, platform.event.id]));
    expect((await board(staff).list.query({ tenantId: null })).items.every((e) => e.tenantId === null)).toBe(true);
    expect((await board(staff).list.query({ tenantId: b.id })).items.map((e) => e.id)).toEqual([ofB.event.id]);
    await expect(board(a.admin).list.query({ tenantId: b.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(board(a.admin).create.mutate(event({ tenantId: b.id }))).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(board(a.member).list.query({})).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
  });

  it("filters by severity, type, resolution and time range, and pages with a cursor", async () => {
    const t = await notificationsTenant();
    const made = [];
    for (const severity of ["low", "medium", "high", "critical", "high"] as const) {
      made.push((await board(t.admin).create.mutate(event({ severity, eventType: `t.${severity}` }))).event);
    }
    await board(t.admin).resolve.mutate({ id: made[0]!.id });
    const high = await board(t.admin).list.query({ severity: ["high"] });
    expect(high.items.map((e) => e.id)).toEqual([made[4]!.id, made[2]!.id]);
    expect((await board(t.admin).list.query({ eventType: "t.critical" })).items.map((e) => e.id)).toEqual([made[3]!.id]);
    expect((await board(t.admin).list.query({ resolved: true })).items.map((e) => e.id)).toEqual([made[0]!.id]);
    expect((await board(t.admin).list.query({ resolved: false })).items).toHaveLength(4);
    const from = made[2]!.createdAt;
    expect((await board(t.admin).list.query({ from })).items.map((e) => e.id)).toEqual([made[4]!.id, made[3]!.id, made[2]!.id]);
    expect((await board(t.admin).list.query({ to: from })).items.map((e) => e.id)).toEqual([made[1]!.id, made[0]!.id]);
    const pages: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await board(t.admin).list.query({ limit: 2, cursor });
      pages.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(pages).toEqual(made.map((e) => e.id).reverse());
  });

  it("resolve and reopen set is_resolved, resolved_at and resolved_by, and are idempotent", async () => {
    const { event: created } = await board(a.admin).create.mutate(event());
    const resolved = await board(a.admin).resolve.mutate({ id: created.id });
    expect(resolved).toMatchObject({ isResolved: true, resolvedBy: a.admin.id });
    expect(resolved.resolvedAt).not.toBeNull();
    const again = await board(staff).resolve.mutate({ id: created.id });
    expect(again).toMatchObject({ isResolved: true, resolvedBy: a.admin.id, resolvedAt: resolved.resolvedAt });
    const reopened = await board(a.admin).reopen.mutate({ id: created.id });
    expect(reopened).toMatchObject({ isResolved: false, resolvedAt: null, resolvedBy: null });
    expect(await board(a.admin).reopen.mutate({ id: created.id })).toMatchObject({ isResolved: false });
  });

  it("another tenant's event id behaves as not found", async () => {
    const { event: ofB } = await board(b.admin).create.mutate(event());
    await expect(board(a.admin).resolve.mutate({ id: ofB.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    await expect(board(a.admin).reopen.mutate({ id: ofB.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    expect((await board(b.admin).list.query({})).items.find((e) => e.id === ofB.id)?.isResolved).toBe(false);
  });

  it("a raised condition is de-duplicated while its event is open, and starts a new one once resolved", async () => {
    const store = tierStore(parseEnv(env), "notifications");
    const dedupKey = `queue-dead-letter:${crypto.randomUUID()}`;
    const raise = () =>
      raiseSystemEvent(store, notificationsConfig, {
        eventType: "jobs.dead_letter",
        severity: "high",
        description: "Jobs are reaching the dead-letter queue",
        dedupKey,
      });
    const raised = await Promise.all(Array.from({ length: 20 }, raise));
    const ids = new Set(raised.map((r) => r.event.id));
    expect(ids.size).toBe(1);
    expect(raised.filter((r) => !r.deduplicated)).toHaveLength(1);
    const open = (await board(staff).list.query({ eventType: "jobs.dead_letter", tenantId: null, resolved: false })).items.filter(
      (e) => e.dedupKey === dedupKey,
    );
    expect(open).toHaveLength(1);
    expect(open[0]?.occurrences).toBe(20);
    await board(staff).resolve.mutate({ id: open[0]!.id });
    const next = await raise();
    expect(next.deduplicated).toBe(false);
    expect(next.event.id).not.toBe(open[0]!.id);
    await expect(board(staff).reopen.mutate({ id: open[0]!.id })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
  });

  describe("bad input answers a clear 4xx and writes nothing", () => {
    it.each([
      ["an unknown severity", { severity: "urgent" }, "VALIDATION_FAILED", 400],
      ["an empty description", { description: "  " }, "VALIDATION_FAILED", 400],
      ["details that are not an object", { details: [1, 2] }, "VALIDATION_FAILED", 400],
      ["oversize details", { details: { dump: "x".repeat(10_000) } }, "PAYLOAD_TOO_LARGE", 413],
      ["a malformed tenant id", { tenantId: "tenant-1" }, "VALIDATION_FAILED", 400],
    ])("create with %s", async (_what, patch, code, httpStatus) => {
      const t = await notificationsTenant();
      await expect(board(t.admin).create.mutate(event(patch) as never)).rejects.toMatchObject({ data: { code, httpStatus } });
      expect((await board(t.admin).list.query({})).items).toEqual([]);
    });

    it("malformed cursors, ids and ranges", async () => {
      await expect(board(a.admin).list.query({ cursor: "not-a-cursor" })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
      await expect(board(a.admin).list.query({ severity: ["urgent" as never] })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
      await expect(board(a.admin).resolve.mutate({ id: "42" })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
      const now = new Date().toISOString();
      await expect(board(a.admin).list.query({ from: now, to: now })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
    });
  });
});
