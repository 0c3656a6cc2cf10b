// The live badge: a WebSocket opened with a single-use ticket receives the exact unread count after every change.
import { describe, expect, it } from "vitest";
import { inSeconds, notificationsTenant, sleep, unreadInDatabase, type NotificationsTenant } from "../support/notifications";
import { request, trpcClient } from "../support/worker";

interface Badge {
  /** Every count pushed so far, in order. */
  counts: number[];
  /** Resolves once the latest pushed count equals `expected` (or rejects after `ms`). */
  waitFor(expected: number, ms?: number): Promise<void>;
  /**
   * Resolves once the latest pushed count equals the database's count, read again after every push and every 100 ms
   * (a notification that expires meanwhile moves the database's count, and its own push follows); rejects after `ms`.
   */
  waitForDatabase(read: () => Promise<number>, ms?: number): Promise<void>;
  close(): void;
}

async function openBadge(token: string): Promise<Badge> {
  const { ticket } = await trpcClient(token, { batch: false }).notifications.badgeTicket.mutate();
  const response = await request(`/v1/notifications/live?ticket=${encodeURIComponent(ticket)}`, { headers: { upgrade: "websocket", origin: "https://other.example.test" } });
  expect(response.status).toBe(101);
  const ws = response.webSocket!;
  ws.accept();
  const counts: number[] = [];
  const waiters = new Set<() => void>();
  ws.addEventListener("message", (event) => {
    counts.push((JSON.parse(String(event.data)) as { unread: number }).unread);
    for (const w of waiters) w();
  });
  return {
    counts,
    waitFor(expected, ms = 3000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (counts.at(-1) === expected) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`badge shows ${counts.at(-1)}, expected ${expected} (pushed: ${counts.slice(-5).join(",")})`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    async waitForDatabase(read, ms = 3000) {
      const deadline = Date.now() + ms;
      let expected = await read();
      while (counts.at(-1) !== expected) {
        if (Date.now() > deadline) throw new Error(`badge shows ${counts.at(-1)}, the database ${expected} (pushed: ${counts.slice(-5).join(",")})`);
        await sleep(100);
        expected = await read();
      }
    },
    close: () => ws.close(1000, "done"),
  };
}

const create = (t: NotificationsTenant, userId: string | null, expiresAt?: string, type = "x") =>
  trpcClient(t.admin.token, { batch: false }).notifications.create.mutate({ userId, type, title: "x", message: "x", ...(expiresAt ? { expiresAt } : {}) });

describe("the live badge", () => {
  it("opens with a ticket and shows each change within a second: create, tenant-wide create, read", async () => {
    const t = await notificationsTenant();
    await create(t, t.member.id);
    const badge = await openBadge(t.member.token);
    await badge.waitFor(1);
    const started = Date.now();
    const mine = await create(t, t.member.id);
    await badge.waitFor(2, 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    await create(t, null);
    await badge.waitFor(3, 1000);
    await create(t, t.other.id); // someone else's: no change for this user
    await trpcClient(t.member.token).notifications.markRead.mutate({ ids: [mine.id] });
    await badge.waitFor(2, 1000);
    await trpcClient(t.member.token).notifications.markAllRead.mutate();
    await badge.waitFor(0, 1000);
    expect(badge.counts).not.toContain(4);
    badge.close();
  });

  it("a replayed, unknown or missing ticket is refused; a ticket is its minter's only", async () => {
    const t = await notificationsTenant();
    const { ticket } = await trpcClient(t.member.token).notifications.badgeTicket.mutate();
    const open = (query: string) => request(`/v1/notifications/live${query}`, { headers: { upgrade: "websocket" } });
    const first = await open(`?ticket=${encodeURIComponent(ticket)}`);
    expect(first.status).toBe(101);
    first.webSocket!.accept();
    first.webSocket!.close(1000, "done");
    const replay = await open(`?ticket=${encodeURIComponent(ticket)}`);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe("AUTH_TOKEN_INVALID");
    expect((await open(`?ticket=${"A".repeat(43)}`)).status).toBe(401);
    expect((await open("")).status).toBe(401);
    // Minting needs a caller; the route itself accepts no bearer token in place of a ticket.
    await expect(trpcClient().notifications.badgeTicket.mutate()).rejects.toMatchObject({ data: { code: "AUTH_TOKEN_MISSING" } });
    const withHeader = await request("/v1/notifications/live", { headers: { upgrade: "websocket", authorization: `Bearer ${t.member.token}` } });
    expect(withHeader.status).toBe(401);
  });

  it("an expiry lowers the count without any write", async () => {
    const t = await notificationsTenant();
    await create(t, t.member.id, inSeconds(2));
    const badge = await openBadge(t.member.token);
    await badge.waitFor(1);
    await badge.waitFor(0, 5000);
    expect(await unreadInDatabase(t.id, t.member.id)).toBe(0);
    badge.close();
  });

  it("after each of 1,000 random create, read, seen, archive, bulk, delete and expire operations (the tenant switching between counting unread and unseen), the pushed count equals the database's", async () => {
    const t = await notificationsTenant();
    const member = trpcClient(t.member.token, { batch: false }).notifications;
    const adminNotifications = trpcClient(t.admin.token, { batch: false }).notifications;
    const badge = await openBadge(t.member.token);
    await badge.waitFor(0);
    const live: string[] = [];
    const createdAt = new Map<string, string>();
    let changes = 0;
    let seed = 19;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 1000; i++) {
      const roll = random();
      if (roll < 0.4 || live.length === 0) {
        // Create: own, tenant-wide, someone else's, or one that expires in a second. Under the per-recipient limit.
        const kind = random();
        const userId = kind < 0.5 ? t.member.id : kind < 0.8 ? null : t.other.id;
        const n = await create(t, userId, random() < 0.1 ? inSeconds(1) : undefined, random() < 0.5 ? "x" : "y").catch((e: { data?: { code?: string } }) => {
          if (e.data?.code === "RATE_LIMITED") return null;
          throw e;
        });
        if (n && userId !== t.other.id) {
          live.push(n.id);
          createdAt.set(n.id, n.createdAt);
          changes++;
        }
      } else if (roll < 0.44) {
        // A bulk action by filter: all of a type, or all older than one of them (both types are in play).
        const action = (["read", "unread", "seen", "archive", "unarchive"] as const)[Math.floor(random() * 5)]!;
        const pivot = createdAt.get(live[Math.floor(random() * live.length)]!)!;
        await member.bulk.mutate(random() < 0.5 ? { action, type: random() < 0.5 ? "x" : "y" } : { action, olderThan: pivot });
      } else if (roll < 0.46) {
        await adminNotifications.settings.set.mutate({ badgeCounts: random() < 0.5 ? "unseen" : "unread" });
      } else {
        const id = live[Math.floor(random() * live.length)]!;
        const op = random();
        const call =
          op < 0.3
            ? member.markRead.mutate({ ids: [id] })
            : op < 0.45
              ? member.markUnread.mutate({ ids: [id] })
              : op < 0.6
                ? member.markSeen.mutate({ ids: [id] })
                : op < 0.7
                  ? member.archive.mutate({ ids: [id] })
                  : op < 0.8
                    ? member.unarchive.mutate({ ids: [id] })
                    : member.delete.mutate({ ids: [id] });
        await call.catch((e: { data?: { code?: string } }) => {
          if (e.data?.code !== "NOT_FOUND") throw e; // expired meanwhile
        });
        if (op >= 0.8) live.splice(live.indexOf(id), 1);
      }
      await badge.waitForDatabase(() => unreadInDatabase(t.id, t.member.id));
    }
    expect(changes).toBeGreaterThan(40); // the per-recipient rate limit caps creates; enough still land
    expect(new Set(badge.counts).size).toBeGreaterThan(5);
    // The expiring ones left: each drop arrives on its own.
    await sleep(1500);
    await badge.waitForDatabase(() => unreadInDatabase(t.id, t.member.id));
    badge.close();
  }, 600_000);
});
