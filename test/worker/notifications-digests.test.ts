// Email digests: a user's notifications of one window go out as one email when the window closes (the 5-minute
// cron), through the outbox like any delivery, so a failing digest is retried and delivers each notification once.
import { describe, expect, it } from "vitest";
import { clockedWorker, settableClock } from "../support/clock";
import { createTenant, type TestTenant } from "../support/factories";
import { asSystem, emailsTo, setEmailMode } from "../support/notifications";
import { queueNames } from "../support/runtime";

const minutes = (n: number) => n * 60_000;

/** A Worker on a clock the test moves, its queues held: the test runs the cron and the deliveries itself. */
function digestWorld(start = new Date()) {
  const clock = settableClock(start);
  const w = clockedWorker(clock);
  return {
    clock,
    w,
    admin: (t: TestTenant) => w.client(t.admin.token).notifications,
    member: (t: TestTenant) => w.client(t.member.token).notifications,
    email: (t: TestTenant, title: string, type = "report.ready") =>
      w.client(t.admin.token).notifications.create.mutate({ userId: t.member.id, type, title, message: `About ${title} <i>now</i>`, channel: "email" }),
    closeWindows: () => w.runTask("notifications.closeDigests"),
    /**
     * Delivers what the normal queue holds (other tiers' cron jobs too) and says how many were this tenant's
     * notification deliveries.
     */
    async deliver(t: TestTenant) {
      w.held.JOBS_NORMAL.release();
      const mine = w.held.JOBS_NORMAL.held.filter((m) => m.type === "SEND_NOTIFICATION" && m.tenantId === t.id).length;
      await w.deliver("JOBS_NORMAL", queueNames.normal);
      return mine;
    },
  };
}

async function digestOutbox(t: TestTenant) {
  const [rows = []] = await asSystem((sql) => [sql`select id, status, attempts from notification_outbox where tenant_id = ${t.id} and digest order by created_at`], t.id);
  return rows;
}

describe("email digests", () => {
  it("5 notifications of one window arrive as one email when the window closes, and not before", async () => {
    const t = await createTenant();
    const world = digestWorld();
    expect(await world.member(t).preferences.setDigest.mutate({ channel: "email", windowMinutes: 60 })).toEqual([
      expect.objectContaining({ channel: "email", windowMinutes: 60 }),
    ]);
    const created = [];
    for (let i = 1; i <= 5; i++) created.push(await world.email(t, `Report ${i}`));
    // Held: no email owed yet, the in-app rows are there.
    expect(await world.deliver(t)).toBe(0);
    expect((await world.member(t).list.query({ limit: 10 })).items).toHaveLength(5);
    const held = await world.admin(t).deliveries.query({ id: created[0]!.id });
    expect(held.digest).toMatchObject({ outboxId: null });
    await world.closeWindows();
    expect(await digestOutbox(t)).toEqual([]); // the window has not ended

    world.clock.set(new Date(Date.parse(held.digest!.windowEnd) + 1000));
    await world.closeWindows();
    expect(await world.deliver(t)).toBe(1);
    const sent = await emailsTo(t.member.email);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.subject).toBe("5 new notifications");
    for (let i = 1; i <= 5; i++) expect(sent[0]!.text).toContain(`Report ${i}`);
    expect(sent[0]!.html).toContain("About Report 1 &lt;i&gt;now&lt;/i&gt;");
    // Every notification of the digest shows the digest's attempt in its history.
    for (const n of created) {
      const history = await world.admin(t).deliveries.query({ id: n.id });
      expect(history.attempts).toEqual([expect.objectContaining({ channel: "email", outcome: "sent", attempt: 1 })]);
    }
    // Closing again finds nothing: no second digest.
    await world.closeWindows();
    expect(await world.deliver(t)).toBe(0);
    expect(await emailsTo(t.member.email)).toHaveLength(1);
  });

  it("a failing digest is retried and delivers every notification once; a later window is its own email", async () => {
    const t = await createTenant();
    const world = digestWorld();
    await world.member(t).preferences.setDigest.mutate({ channel: "email", windowMinutes: 15 });
    const first = await world.email(t, "Alpha");
    await world.email(t, "Beta");
    await setEmailMode(t.member.email, "fail");
    const windowEnd = Date.parse((await world.admin(t).deliveries.query({ id: first.id })).digest!.windowEnd);
    world.clock.set(new Date(windowEnd + 1000));
    await world.closeWindows();
    expect(await world.deliver(t)).toBe(1);
    expect(await emailsTo(t.member.email)).toHaveLength(0);
    const failed = await world.admin(t).deliveries.query({ id: first.id });
    expect(failed.attempts).toEqual([expect.objectContaining({ outcome: "failed", attempt: 1 })]);
    expect(failed.pending).toHaveLength(1);

    // A notification created now belongs to the next window, not to the failing digest.
    const later = await world.email(t, "Gamma");
    await setEmailMode(t.member.email, "ok");
    world.clock.advance(minutes(16));
    await world.closeWindows(); // closes Gamma's window too
    // The retry of the first digest (its backoff is due) and the second digest.
    expect(await world.deliver(t)).toBe(2);
    const sent = await emailsTo(t.member.email);
    expect(sent.map((e) => e.subject).sort()).toEqual(["1 new notification", "2 new notifications"]);
    const two = sent.find((e) => e.subject === "2 new notifications")!;
    expect(two.text).toContain("Alpha");
    expect(two.text).toContain("Beta");
    expect(two.text).not.toContain("Gamma");
    expect(sent.find((e) => e.subject === "1 new notification")!.text).toContain("Gamma");
    expect((await world.admin(t).deliveries.query({ id: first.id })).attempts.map((a) => [a.outcome, a.attempt])).toEqual([
      ["failed", 1],
      ["sent", 2],
    ]);
    expect((await world.admin(t).deliveries.query({ id: later.id })).attempts.map((a) => a.outcome)).toEqual(["sent"]);
    expect((await digestOutbox(t)).map((o) => o.status)).toEqual(["sent", "sent"]);
    // Nothing more to send, whatever runs again.
    await world.closeWindows();
    world.clock.advance(minutes(60));
    expect(await world.deliver(t)).toBe(0);
    expect(await emailsTo(t.member.email)).toHaveLength(2);
  });

  it("security notices are never held; turning the digest off sends the next one at once", async () => {
    const t = await createTenant();
    const world = digestWorld();
    await world.member(t).preferences.setDigest.mutate({ channel: "email", windowMinutes: 60 });
    await world.email(t, "Sign-in", "security.login");
    expect(await world.deliver(t)).toBe(1);
    expect((await emailsTo(t.member.email)).map((e) => e.subject)).toEqual(["Security notice: Sign-in"]);
    expect(await world.member(t).preferences.setDigest.mutate({ channel: "email", windowMinutes: null })).toEqual([]);
    await world.email(t, "Plain");
    expect(await world.deliver(t)).toBe(1);
    expect((await emailsTo(t.member.email)).map((e) => e.subject)).toEqual(["Security notice: Sign-in", "Plain"]);
  });
});
