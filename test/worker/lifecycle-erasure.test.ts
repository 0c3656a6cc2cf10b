import { describe, expect, it } from "vitest";
import type { DbTier } from "../../src/platform/db";
import { queueNames } from "../support/runtime";
import { contentSetup, storedKeys, toBase64 } from "../support/content";
import { deliver } from "../support/jobs";
import { createLogger } from "../../src/platform/logger";
import { allowAuthEmail, authEmailLimits } from "../../src/platform/rate-limits";
import { asRole, operatorClient, redis, redisKeysMatching } from "../support/lifecycle";
import { setDatabaseFault } from "../support/stack";
import { createTenant } from "../support/factories";
import { pushSubscription } from "../support/notifications";
import { trpcClient } from "../support/worker";

const roleFor: Record<DbTier, "lifecycle" | "analytics"> = { oltp: "lifecycle", notifications: "lifecycle", olap: "analytics" };

/** Rows in any table of the database whose text mentions one of the needles (address or ids). */
async function residue(tier: DbTier, needles: string[]): Promise<Record<string, number>> {
  const [tables = []] = await asRole(tier, roleFor[tier], (sql) => [
    sql`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
  ]);
  const found: Record<string, number> = {};
  for (const { relname } of tables) {
    const [rows = []] = await asRole(tier, roleFor[tier], (sql) => [
      sql`select count(*)::int as n from ${sql.unsafe(`"${String(relname)}"`)} t
          where exists (select 1 from jsonb_array_elements_text(${JSON.stringify(needles)}::jsonb) m where position(lower(m.value) in lower(t::text)) > 0)`,
    ]);
    if (Number(rows[0]?.n) > 0) found[String(relname)] = Number(rows[0]?.n);
  }
  return found;
}

async function plantSubject() {
  const s = await contentSetup();
  const address = `subject-${crypto.randomUUID().slice(0, 8)}@example.org`;
  const lead = await s.client.leads.create.mutate({ email: address, firstName: "Erin" });
  const attachment = toBase64(new TextEncoder().encode(`%PDF contract for ${address}`));
  const email = await s.client.emails.create.mutate({
    leadId: lead.id,
    mailboxId: s.mailboxId,
    subject: `Hello ${address}`,
    body: { text: `Dear ${address}`, html: `<p>Dear ${address}</p>`, headers: { to: address } },
    attachments: [{ filename: "contract.pdf", mimeType: "application/pdf", content: attachment, disposition: "attachment" }],
  });
  await asRole("notifications", "system", (sql) => [
    sql`insert into notifications (tenant_id, user_id, type, title, message) values (${s.tenant.id}, ${s.tenant.admin.id}, 'lead', 'Reply', ${`${address} replied`})`,
    sql`insert into admin_system_events (event_type, severity, tenant_id, description, details) values ('bounce', 'low', ${s.tenant.id}, ${`bounce from ${address}`}, '{}'::jsonb)`,
  ], s.tenant.id);
  // The address's global auth-email counter, written by the real limiter (its own key layout).
  await allowAuthEmail(redis(), createLogger("warn"), "password-reset", address, authEmailLimits["password-reset"]);
  await asRole("olap", "analytics", (sql) => [
    sql`select olap_ensure_partitions('lead_analytics', current_date, current_date)`,
    sql`insert into lead_analytics (tenant_id, lead_id, day) values (${s.tenant.id}, ${lead.id}, current_date)`,
  ]);
  return { s, address, lead, email };
}

async function scanEverything(needles: string[], tenantId: string) {
  return {
    oltp: await residue("oltp", needles),
    notifications: await residue("notifications", needles),
    olap: await residue("olap", needles),
    r2: await storedKeys(tenantId),
    redis: await redisKeysMatching(needles[0]!),
  };
}

const eraseMessage = (tenantId: string, jobId: string, requestId: string) => ({
  jobId,
  type: "ERASE_SUBJECT" as const,
  tenantId,
  payload: { requestId },
  enqueuedAt: new Date().toISOString(),
});

describe("GDPR erasure", () => {
  it("exports the subject, then erases it from every tier with a receipt, leaving zero residue; a second erasure is a no-op", async () => {
    const { s, address, lead, email } = await plantSubject();
    const needles = [address, lead.id, email.id];
    const before = await scanEverything(needles, s.tenant.id);
    // The scan sees what was planted (so an empty scan afterwards means something).
    expect(Object.keys(before.oltp)).toEqual(expect.arrayContaining(["leads", "emails", "email_contents", "jobs"]));
    expect(Object.keys(before.notifications)).toEqual(expect.arrayContaining(["notifications", "admin_system_events"]));
    expect(before.olap).toMatchObject({ lead_analytics: 1 });
    expect(before.r2.length).toBeGreaterThanOrEqual(2);
    expect(before.redis).toHaveLength(1);

    const exported = await s.client.lifecycle.exportSubject.query({ subject: { email: address } });
    expect(exported.lead).toMatchObject({ email: address });
    expect((exported.emails as Array<{ content: { text: string } }>)[0]?.content.text).toBe(`Dear ${address}`);

    const { requestId, jobId } = await s.client.lifecycle.eraseSubject.mutate({ subject: { email: address } });
    await deliver(queueNames.normal, [eraseMessage(s.tenant.id, jobId, requestId)]);
    const receipt = await s.client.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.status).toBe("completed");
    // A tenant admin's erasure: the address's global auth-email counter is not the tenant's, so it stays (an operator's erasure takes it).
    expect(receipt.receipt).toMatchObject({ tiers: { oltp: { counts: { leads: 1, emails: 1 } }, content: { counts: { objects: 2 } }, olap: { counts: { leadAnalytics: 1 } }, redis: { counts: { keys: 0 } } } });

    const after = await scanEverything(needles, s.tenant.id);
    expect(after).toEqual({ oltp: {}, notifications: {}, olap: {}, r2: [], redis: before.redis });

    // Idempotent: the same delivery again, and a second request for the same address, change nothing and complete.
    await deliver(queueNames.normal, [eraseMessage(s.tenant.id, jobId, requestId)]);
    const second = await s.client.lifecycle.eraseSubject.mutate({ subject: { email: address } });
    await deliver(queueNames.normal, [eraseMessage(s.tenant.id, second.jobId, second.requestId)]);
    expect((await s.client.lifecycle.erasureReceipt.query({ requestId: second.requestId })).status).toBe("completed");
    expect(await scanEverything(needles, s.tenant.id)).toEqual(after);
  });

  it("a crash midway (notifications database down) leaves the request resumable; after recovery it completes", async () => {
    const { s, address, lead, email } = await plantSubject();
    const { requestId, jobId } = await s.client.lifecycle.eraseSubject.mutate({ subject: { email: address } });
    await setDatabaseFault("notifications", "down");
    try {
      await deliver(queueNames.normal, [eraseMessage(s.tenant.id, jobId, requestId)]);
    } finally {
      await setDatabaseFault("notifications", "none");
    }
    const midway = await s.client.lifecycle.erasureReceipt.query({ requestId });
    expect(midway.status).toBe("running");
    expect(Object.keys(midway.steps)).toContain("content");
    expect(Object.keys(midway.steps)).not.toContain("notifications");

    await asRole("oltp", "system", (sql) => [sql`update jobs set scheduled_at = now() where id = ${jobId}`]);
    await deliver(queueNames.normal, [eraseMessage(s.tenant.id, jobId, requestId)]);
    expect((await s.client.lifecycle.erasureReceipt.query({ requestId })).status).toBe("completed");
    expect(await scanEverything([address, lead.id, email.id], s.tenant.id)).toMatchObject({ oltp: {}, notifications: {}, olap: {}, r2: [] });
  });

  it("an operator's erasure is platform-wide: the address's platform system events and global auth-email counters go too", async () => {
    const { s, address, lead, email } = await plantSubject();
    await asRole("notifications", "system", (sql) => [
      sql`insert into admin_system_events (event_type, severity, tenant_id, description, details) values ('abuse', 'high', null, ${`password resets for ${address}`}, '{}'::jsonb)`,
    ]);
    const operator = await operatorClient();
    const { requestId, jobId } = await operator.lifecycle.eraseSubject.mutate({ subject: { email: address }, tenantId: s.tenant.id });
    await deliver(queueNames.normal, [eraseMessage(s.tenant.id, jobId, requestId)]);
    const receipt = await operator.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.receipt).toMatchObject({ tiers: { notifications: { counts: { systemEvents: 1, platformSystemEvents: 1 } }, redis: { counts: { keys: 1 } } } });
    expect(await scanEverything([address, lead.id, email.id], s.tenant.id)).toEqual({ oltp: {}, notifications: {}, olap: {}, r2: [], redis: [] });
  });

  it("erasing a user removes their notification preferences, digest settings and push subscriptions, and no one else's", async () => {
    const t = await createTenant();
    const admin = trpcClient(t.admin.token, { batch: false });
    const member = trpcClient(t.member.token, { batch: false }).notifications;
    const plant = async (n: typeof member) => {
      const browser = await pushSubscription();
      await n.push.subscribe.mutate({ endpoint: browser.endpoint, keys: browser.keys });
      await n.preferences.set.mutate({ settings: [{ type: "campaign.digest", channel: "email", enabled: false }] });
      await n.preferences.setDigest.mutate({ channel: "email", windowMinutes: 60 });
    };
    await plant(member);
    await plant(admin.notifications);
    const rowsOf = async (userId: string) => {
      const [counts = []] = await asRole("notifications", "system", (sql) => [
        sql`select (select count(*)::int from notification_preferences where user_id = ${userId}) as preferences,
                   (select count(*)::int from notification_digest_settings where user_id = ${userId}) as digests,
                   (select count(*)::int from notification_push_subscriptions where user_id = ${userId}) as push`,
      ], t.id);
      return counts[0];
    };
    expect(await rowsOf(t.member.id)).toEqual({ preferences: 1, digests: 1, push: 1 });

    const { requestId, jobId } = await admin.lifecycle.eraseSubject.mutate({ subject: { userId: t.member.id } });
    await deliver(queueNames.normal, [eraseMessage(t.id, jobId, requestId)]);
    const receipt = await admin.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.status).toBe("completed");
    expect(receipt.receipt).toMatchObject({ tiers: { notifications: { counts: { preferences: 1, pushSubscriptions: 1 } } } });
    expect(await rowsOf(t.member.id)).toEqual({ preferences: 0, digests: 0, push: 0 });
    expect(await rowsOf(t.admin.id)).toEqual({ preferences: 1, digests: 1, push: 1 });
  });

  it("members may not erase; another tenant's request is NOT_FOUND", async () => {
    const { s, address } = await plantSubject();
    const other = await contentSetup();
    await expect(other.client.lifecycle.eraseSubject.mutate({ subject: { email: address }, tenantId: s.tenant.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    const { requestId } = await s.client.lifecycle.eraseSubject.mutate({ subject: { email: address } });
    await expect(other.client.lifecycle.erasureReceipt.query({ requestId })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });
});
