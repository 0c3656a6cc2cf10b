import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cronTasks } from "../../src/root";
import { clockedWorker, settableClock } from "../support/clock";
import { contentSetup, toBase64 } from "../support/content";
import { queueNames, testServices } from "../support/runtime";
import { appEnv, asRole, operatorClient, redisKeysMatching, residue } from "../support/lifecycle";
import { setDatabaseFault } from "../support/stack";
import { mintToken } from "../support/tokens";
import { trpcClient } from "../support/worker";

const day = 86_400_000;
const grace = appEnv().TENANT_CLOSE_GRACE_DAYS;
const bucket = () => env.CONTENT_BUCKET as R2Bucket;

/** Runs the closure cron task exactly as the pruning trigger would, at the given clock. */
async function runClosureCron(clock: { now(): Date }) {
  const task = cronTasks.find((t) => t.name === "lifecycle.closeTenants");
  if (!task) throw new Error("lifecycle.closeTenants is not registered");
  const services = testServices(clock);
  try {
    await task.run(services);
  } finally {
    await services.settle();
  }
}

/** A tenant with data in every store: OLTP rows, R2 blobs and an import CSV, notifications and system events, OLAP rows and audit entries, Redis keys. */
async function plantTenant() {
  const s = await contentSetup();
  const t = s.tenant;
  const address = `closure-${crypto.randomUUID().slice(0, 8)}@example.org`;
  const lead = await s.client.leads.create.mutate({ email: address, firstName: "Cleo" });
  const email = await s.client.emails.create.mutate({
    leadId: lead.id,
    mailboxId: s.mailboxId,
    subject: `Hello ${address}`,
    body: { text: `Dear ${address}`, html: `<p>Dear ${address}</p>` },
    attachments: [{ filename: "terms.pdf", mimeType: "application/pdf", content: toBase64(new TextEncoder().encode(`%PDF for ${address}`)), disposition: "attachment" }],
  });
  await bucket().put(`imports/${t.id}/${crypto.randomUUID()}.csv`, `email\n${address}\n`);
  await asRole("notifications", "system", (sql) => [
    sql`insert into notifications (tenant_id, user_id, type, title, message) values (${t.id}, ${t.member.id}, 'lead', 'Reply', ${`${address} replied`})`,
    sql`insert into admin_system_events (event_type, severity, tenant_id, description, details) values ('bounce', 'low', ${t.id}, ${`bounce from ${address}`}, '{}'::jsonb)`,
  ], t.id);
  await asRole("olap", "analytics", (sql) => [
    sql`select olap_ensure_partitions('lead_analytics', current_date, current_date)`,
    sql`insert into lead_analytics (tenant_id, lead_id, day) values (${t.id}, ${lead.id}, current_date)`,
    sql`select olap_ensure_partitions('admin_audit_log', current_date, current_date)`,
    sql`insert into admin_audit_log (id, occurred_at, tenant_id, actor_id, actor_role, actor_tenant_id, action, target_type, target_id, details)
        values (${crypto.randomUUID()}, now(), ${t.id}, ${t.admin.id}, 'admin', ${t.id}, 'user.invite', 'invitation', ${t.member.id}, ${JSON.stringify({ email: address })}::jsonb)`,
  ]);
  // The access cache and the unread count now hold keys naming the tenant.
  await trpcClient(t.member.token).notifications.unreadCount.query();
  const needles = [t.id, t.admin.id, t.member.id, t.admin.email, t.member.email, address, lead.id, email.id, s.mailboxId];
  return { s, t, address, lead, email, needles };
}

async function r2Keys(tenantId: string) {
  const keys: string[] = [];
  for (const prefix of [`tenants/${tenantId}/`, `imports/${tenantId}/`, `exports/${tenantId}/`]) {
    keys.push(...(await bucket().list({ prefix })).objects.map((o) => o.key));
  }
  return keys;
}

async function scanEverything(needles: string[], tenantId: string) {
  return {
    oltp: await residue("oltp", needles),
    notifications: await residue("notifications", needles),
    olap: await residue("olap", needles),
    r2: await r2Keys(tenantId),
    redis: await redisKeysMatching(tenantId),
  };
}

describe("closing a tenant", () => {
  it("is refused at once, reactivate restores it during the grace, and after the grace the cron erases it from every store with a receipt; another tenant is untouched", async () => {
    const { t, address, needles } = await plantTenant();
    const other = await plantTenant();
    const clock = settableClock(new Date());
    const cw = clockedWorker(clock);
    // Requests at the test's clock; after the clock has moved a month on, the same callers through the shared Worker.
    const operatorToken = await mintToken({ sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "operator" });
    const operator = cw.client(operatorToken);
    const admin = cw.client(t.admin.token);
    const operatorLater = await operatorClient();

    const before = await scanEverything(needles, t.id);
    // The scan sees what was planted, so an empty scan afterwards means something.
    expect(Object.keys(before.oltp)).toEqual(expect.arrayContaining(["tenants", "users", "leads", "emails", "email_contents", "jobs"]));
    expect(Object.keys(before.notifications)).toEqual(expect.arrayContaining(["notifications", "admin_system_events"]));
    expect(Object.keys(before.olap)).toEqual(expect.arrayContaining(["lead_analytics", "admin_audit_log"]));
    expect(before.r2.length).toBeGreaterThanOrEqual(3);
    expect(before.redis.length).toBeGreaterThanOrEqual(1);

    const closing = await operator.tenants.close.mutate({ id: t.id, reason: "contract ended" });
    expect(closing.status).toBe("closing");
    expect(new Date(closing.closeAfter!).getTime()).toBe(clock.now().getTime() + grace * day);
    await expect(admin.leads.list.query({})).rejects.toMatchObject({ data: { code: "TENANT_CLOSED" } });
    // Refused like a suspended tenant; the operator may still restore it.
    await expect(operator.tenants.suspend.mutate({ id: t.id })).rejects.toMatchObject({ data: { code: "CONFLICT" } });
    expect((await operator.tenants.reactivate.mutate({ id: t.id })).status).toBe("active");
    expect((await admin.leads.list.query({})).items.length).toBeGreaterThan(0);
    await operator.tenants.close.mutate({ id: t.id });

    // Before the grace ends the cron leaves the tenant alone.
    clock.advance(grace * day - 60_000);
    await runClosureCron(clock);
    expect((await operatorLater.tenants.get.query({ id: t.id })).status).toBe("closing");
    await expect(operatorLater.lifecycle.tenantClosure.query({ tenantId: t.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });

    // The audit entries of the close reach OLAP (they are pseudonymised with the rest).
    for (const queue of ["JOBS_HIGH", "JOBS_NORMAL", "JOBS_LOW"] as const) await cw.deliver(queue, queueNames[queue === "JOBS_HIGH" ? "high" : queue === "JOBS_NORMAL" ? "normal" : "low"]);

    clock.advance(2 * 60_000);
    await runClosureCron(clock);

    const receipt = await operatorLater.lifecycle.tenantClosure.query({ tenantId: t.id });
    expect(receipt.status).toBe("completed");
    expect(receipt.steps).toMatchObject({
      content: { counts: { objects: before.r2.length } },
      notifications: { counts: { notifications: 1, admin_system_events: 1 } },
      olap: { counts: { lead_analytics: 1 } },
      oltp: { counts: { leads: 2, users: 2, tenants: 1 } },
    });
    expect((receipt.steps as { olap: { counts: { auditEntriesPseudonymised: number } } }).olap.counts.auditEntriesPseudonymised).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(receipt)).not.toContain(address);
    expect(JSON.stringify(receipt)).not.toContain(t.id);

    expect(await scanEverything(needles, t.id)).toEqual({ oltp: {}, notifications: {}, olap: {}, r2: [], redis: [] });
    // The compliance log keeps what was done, under the closure's id.
    const [kept = []] = await asRole("olap", "analytics", (sql) => [sql`select action, actor_role, actor_id, details from admin_audit_log where tenant_id = ${receipt.closureId} order by occurred_at`]);
    expect(kept.map((r) => r.action)).toEqual(expect.arrayContaining(["user.invite", "tenant.close"]));
    expect(kept.every((r) => JSON.stringify(r.details) === "{}")).toBe(true);
    expect(kept.every((r) => r.actor_role === "operator" || r.actor_id === "erased")).toBe(true);

    // The tenant's credentials are refused; the other tenant reads its data back.
    await expect(trpcClient(t.admin.token).leads.list.query({})).rejects.toMatchObject({ data: { code: "NOT_A_MEMBER" } });
    const otherClient = trpcClient(other.t.admin.token);
    expect((await otherClient.leads.list.query({})).items.map((l) => l.email)).toContain(other.address);
    expect((await otherClient.emails.get.query({ id: other.email.id })).id).toBe(other.email.id);
    expect(await residue("notifications", [other.address])).toMatchObject({ notifications: 1, admin_system_events: 1 });
    expect(await residue("olap", [other.lead.id])).toMatchObject({ lead_analytics: 1 });
    expect((await r2Keys(other.t.id)).length).toBe(3);

    // Idempotent: a later run changes nothing, and the receipt stays.
    clock.advance(day);
    await runClosureCron(clock);
    expect((await operatorLater.lifecycle.tenantClosure.query({ tenantId: t.id })).completedAt).toBe(receipt.completedAt);
  });

  it("a closure that fails half-way (notifications database down) resumes on the next run and completes", async () => {
    const { t, needles } = await plantTenant();
    const clock = settableClock(new Date());
    await clockedWorker(clock).client(await mintToken({ sub: crypto.randomUUID(), tenant_id: crypto.randomUUID(), role: "operator" })).tenants.close.mutate({ id: t.id });
    const operator = await operatorClient();
    clock.advance((grace + 1) * day);
    await setDatabaseFault("notifications", "down");
    try {
      await expect(runClosureCron(clock)).rejects.toThrow();
    } finally {
      await setDatabaseFault("notifications", "none");
    }
    const midway = await operator.lifecycle.tenantClosure.query({ tenantId: t.id });
    expect(midway.status).toBe("running");
    expect(Object.keys(midway.steps)).toEqual(["content"]);
    // Closed for good once the erasure has begun.
    await expect(operator.tenants.reactivate.mutate({ id: t.id })).rejects.toMatchObject({ data: { code: "CONFLICT" } });

    await runClosureCron(clock);
    expect((await operator.lifecycle.tenantClosure.query({ tenantId: t.id })).status).toBe("completed");
    expect(await scanEverything(needles, t.id)).toEqual({ oltp: {}, notifications: {}, olap: {}, r2: [], redis: [] });
  });

  it("only operators close tenants", async () => {
    const { t } = await plantTenant();
    const operator = await operatorClient();
    await expect(trpcClient(t.admin.token).tenants.close.mutate({ id: t.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(operator.tenants.close.mutate({ id: crypto.randomUUID() })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });
});
