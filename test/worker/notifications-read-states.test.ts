// Read states beyond read and deleted: seen (the badge counts unseen rows where the tenant chose so) and archived;
// bulk actions by filter. Each change pushes the new exact count to the user's open badge.
import { describe, expect, it } from "vitest";
import { notificationsTenant, unreadInDatabase, type NotificationsTenant } from "../support/notifications";
import { request, trpcClient } from "../support/worker";

/** The member's live badge (WebSocket with a ticket), as the browser opens it. */
async function openBadge(token: string) {
  const { ticket } = await trpcClient(token, { batch: false }).notifications.badgeTicket.mutate();
  const response = await request(`/v1/notifications/live?ticket=${encodeURIComponent(ticket)}`, { headers: { upgrade: "websocket" } });
  expect(response.status).toBe(101);
  const ws = response.webSocket!;
  ws.accept();
  const counts: number[] = [];
  ws.addEventListener("message", (event) => counts.push((JSON.parse(String(event.data)) as { unread: number }).unread));
  return {
    async shows(expected: number, ms = 3000) {
      const deadline = Date.now() + ms;
      while (counts.at(-1) !== expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(counts.at(-1)).toBe(expected);
    },
    close: () => ws.close(1000, "done"),
  };
}

const clients = (t: NotificationsTenant) => ({
  admin: trpcClient(t.admin.token, { batch: false }).notifications,
  member: trpcClient(t.member.token, { batch: false }).notifications,
});

/** The badge count the service answers, which must equal the database's, and the open badge shows it too. */
async function expectCount(t: NotificationsTenant, badge: Awaited<ReturnType<typeof openBadge>>, expected: number) {
  expect(await unreadInDatabase(t.id, t.member.id)).toBe(expected);
  await badge.shows(expected);
  expect((await clients(t).member.unreadCount.query()).unread).toBe(expected);
}

describe("read states", () => {
  it("seen rows count until the tenant's badge counts unseen ones; the switch reaches open badges", async () => {
    const t = await notificationsTenant();
    const { admin, member } = clients(t);
    const own = await admin.create.mutate({ userId: t.member.id, type: "x", title: "own", message: "x" });
    const wide = await admin.create.mutate({ userId: null, type: "x", title: "wide", message: "x" });
    await admin.create.mutate({ userId: t.member.id, type: "x", title: "third", message: "x" });
    const badge = await openBadge(t.member.token);
    await expectCount(t, badge, 3);
    expect(await member.markSeen.mutate({ ids: [own.id, wide.id] })).toEqual({ updated: 2, unread: 3 });
    await expectCount(t, badge, 3); // counting unread: seen rows still count
    await expect(member.settings.set.mutate({ badgeCounts: "unseen" })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    expect(await admin.settings.set.mutate({ badgeCounts: "unseen" })).toEqual({ badgeCounts: "unseen" });
    expect(await member.settings.get.query()).toEqual({ badgeCounts: "unseen" });
    await expectCount(t, badge, 1);
    // Marking unread makes a row unseen again; reading one marks it seen.
    await member.markUnread.mutate({ ids: [own.id] });
    await expectCount(t, badge, 2);
    const listed = await member.list.query({ limit: 10 });
    expect(listed.items.find((n) => n.id === wide.id)).toMatchObject({ isRead: false, seenAt: expect.any(String) });
    expect(listed.unread).toBe(2);
    await admin.settings.set.mutate({ badgeCounts: "unread" });
    await expectCount(t, badge, 3);
    badge.close();
  });

  it("archived rows leave the inbox and the badge, and come back when unarchived", async () => {
    const t = await notificationsTenant();
    const { admin, member } = clients(t);
    const own = await admin.create.mutate({ userId: t.member.id, type: "x", title: "own", message: "x" });
    const wide = await admin.create.mutate({ userId: null, type: "x", title: "wide", message: "x" });
    const badge = await openBadge(t.member.token);
    await expectCount(t, badge, 2);
    expect(await member.archive.mutate({ ids: [own.id, wide.id] })).toEqual({ updated: 2, unread: 0 });
    await expectCount(t, badge, 0);
    expect((await member.list.query({ limit: 10 })).items).toEqual([]);
    const archive = await member.list.query({ limit: 10, archived: true });
    expect(archive.items.map((n) => n.id).sort()).toEqual([own.id, wide.id].sort());
    expect(archive.items.every((n) => n.archivedAt !== null)).toBe(true);
    // Archiving again changes nothing; the other member's view of the tenant-wide row is untouched.
    expect((await member.archive.mutate({ ids: [own.id] })).updated).toBe(0);
    expect((await trpcClient(t.other.token).notifications.list.query({ limit: 10 })).items.map((n) => n.id)).toEqual([wide.id]);
    await member.unarchive.mutate({ ids: [wide.id] });
    await expectCount(t, badge, 1);
    // Someone else's id: nothing changes, NOT_FOUND.
    const foreign = await admin.create.mutate({ userId: t.other.id, type: "x", title: "theirs", message: "x" });
    await expect(member.archive.mutate({ ids: [own.id, foreign.id] })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
    badge.close();
  });

  it("bulk actions by type and by age change exactly the matching rows and push the new count", async () => {
    const t = await notificationsTenant();
    const { admin, member } = clients(t);
    const old1 = await admin.create.mutate({ userId: t.member.id, type: "billing", title: "old invoice", message: "x" });
    const old2 = await admin.create.mutate({ userId: null, type: "report", title: "old report", message: "x" });
    const pivot = await admin.create.mutate({ userId: t.member.id, type: "report", title: "new report", message: "x" });
    await admin.create.mutate({ userId: t.member.id, type: "billing", title: "new invoice", message: "x" });
    await admin.create.mutate({ userId: t.other.id, type: "billing", title: "someone else's", message: "x" });
    const badge = await openBadge(t.member.token);
    await expectCount(t, badge, 4);

    expect(await member.bulk.mutate({ action: "read", type: "billing" })).toEqual({ updated: 2, unread: 2 });
    await expectCount(t, badge, 2);
    // The other member's billing notification is untouched.
    expect((await trpcClient(t.other.token).notifications.unreadCount.query()).unread).toBe(2);

    expect(await member.bulk.mutate({ action: "archive", olderThan: pivot.createdAt })).toEqual({ updated: 2, unread: 1 });
    await expectCount(t, badge, 1);
    const archived = await member.list.query({ limit: 10, archived: true });
    expect(archived.items.map((n) => n.id).sort()).toEqual([old1.id, old2.id].sort());

    expect(await member.bulk.mutate({ action: "delete", type: "report", olderThan: pivot.createdAt })).toEqual({ updated: 1, unread: 1 });
    expect((await member.list.query({ limit: 10, archived: true })).items.map((n) => n.id)).toEqual([old1.id]);
    expect((await member.bulk.mutate({ action: "read", type: "nothing.like.this" })).updated).toBe(0);
    await expect(member.bulk.mutate({ action: "read", olderThan: "yesterday" })).rejects.toMatchObject({ data: { code: "VALIDATION_FAILED" } });
    badge.close();
  });
});
