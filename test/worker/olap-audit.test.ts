// Counts a tenant's audit entries from zero: its tenants are bare (createBareTenant), with no provisioning history.
import { afterEach, describe, expect, it } from "vitest";
import { createBareTenant } from "../support/factories";
import { operator } from "../support/notifications";
import { olapStore, pendingJobs, runPendingJobs } from "../support/olap";
import { campaignWithSteps, expectCode, mailboxFor } from "../support/oltp";
import { commitJobsWithoutSending, deliver, ledgerRow, waitFor } from "../support/jobs";
import { postgresRoundTrips, resetRoundTrips, setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";
import { queueNames } from "../support/runtime";
import { oltpSql } from "../support/factories";

type Client = ReturnType<typeof trpcClient>;

/** The tenant's audit log as its admin sees it, all pages. */
async function entriesOf(client: Client, filter: { action?: string } = {}) {
  const items: Awaited<ReturnType<Client["analytics"]["auditLog"]["query"]>>["items"] = [];
  let cursor: string | undefined;
  do {
    const page = await client.analytics.auditLog.query({ ...filter, limit: 100, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

/** Drains RECORD_AUDIT jobs, then waits until `count` entries of the tenant are visible. */
async function drainAndRead(client: Client, count: number, filter: { action?: string } = {}) {
  await runPendingJobs("RECORD_AUDIT");
  return waitFor(async () => {
    const items = await entriesOf(client, filter);
    return items.length >= count ? items : undefined;
  });
}

describe("audit entries of admin actions", () => {
  it("every admin action in OLTP writes one entry, with who, what, which object, when and from where", async () => {
    const tenant = await createBareTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const startedAt = Date.now();
    const user = await admin.users.add.mutate({ email: `new-${crypto.randomUUID().slice(0, 8)}@example.test`, role: "member" });
    await admin.users.setRole.mutate({ id: user.id, role: "admin" });
    await admin.users.remove.mutate({ id: user.id });
    const key = await admin.apiKeys.create.mutate({ name: "ci" });
    await admin.apiKeys.revoke.mutate({ id: key.id });
    const { domain, mailbox } = await mailboxFor(tenant.admin.token);
    await admin.mailboxes.update.mutate({ id: mailbox.id, status: "paused" });
    await admin.mailboxes.remove.mutate({ id: mailbox.id });
    await admin.domains.remove.mutate({ id: domain.id });
    const campaign = await campaignWithSteps(tenant.admin.token, 1);
    await admin.campaigns.transition.mutate({ id: campaign.id, action: "start" });
    await admin.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
    await admin.tenants.rename.mutate({ name: "Renamed" });

    const expected = [
      ["user.add", "user", user.id],
      ["user.setRole", "user", user.id],
      ["user.remove", "user", user.id],
      ["apiKey.create", "api_key", key.id],
      ["apiKey.revoke", "api_key", key.id],
      ["domain.add", "domain", domain.id],
      ["mailbox.add", "mailbox", mailbox.id],
      ["mailbox.update", "mailbox", mailbox.id],
      ["mailbox.remove", "mailbox", mailbox.id],
      ["domain.remove", "domain", domain.id],
      ["campaign.start", "campaign", campaign.id],
      ["campaign.pause", "campaign", campaign.id],
      ["tenant.rename", "tenant", tenant.id],
    ];
    const items = await drainAndRead(admin, expected.length);
    expect(items.map((e) => [e.action, e.target.type, e.target.id]).reverse()).toEqual(expected);
    const setRole = items.find((e) => e.action === "user.setRole")!;
    expect(setRole).toMatchObject({
      tenantId: tenant.id,
      actor: { id: tenant.admin.id, role: "admin", tenantId: tenant.id },
      details: { role: "admin" },
    });
    expect(Date.parse(setRole.occurredAt)).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(setRole.origin.requestId).toMatch(/.+/);
  });

  it("an action that changes nothing (unknown id, refused demotion) records nothing", async () => {
    const tenant = await createBareTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    await expectCode(admin.apiKeys.revoke.mutate({ id: crypto.randomUUID() }), "NOT_FOUND");
    await expectCode(admin.mailboxes.remove.mutate({ id: crypto.randomUUID() }), "NOT_FOUND");
    await expectCode(admin.users.setRole.mutate({ id: tenant.admin.id, role: "member" }), "CONFLICT");
    await admin.tenants.rename.mutate({ name: "Marker" });
    const items = await drainAndRead(admin, 1);
    expect(items.map((e) => e.action)).toEqual(["tenant.rename"]);
  });

  it("an operator's redrive is recorded against each redriven job's tenant", async () => {
    const tenant = await createBareTenant();
    const staff = await operator();
    const [message] = await commitJobsWithoutSending(tenant.id, tenant.admin.id, [{ type: "NOOP", payload: {} }]);
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`update jobs set status = 'dead', attempts = 3 where id = ${message!.jobId}`,
    ]);
    const result = await trpcClient(staff.token, { batch: false }).jobs.redrive.mutate({ ids: [message!.jobId, crypto.randomUUID()] });
    expect(result.redriven).toEqual([message!.jobId]);
    const items = await drainAndRead(trpcClient(tenant.admin.token, { batch: false }), 1, { action: "job.redrive" });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ tenantId: tenant.id, target: { type: "job", id: message!.jobId }, actor: { id: staff.id, role: "operator" } });
  });

  it("a delivery's audit jobs reach OLAP together in one round trip, once each however often delivered; with OLAP down all wait", async () => {
    const tenant = await createBareTenant();
    const staff = await operator();
    const dead = await commitJobsWithoutSending(tenant.id, tenant.admin.id, Array.from({ length: 6 }, () => ({ type: "NOOP", payload: {} })));
    const sql = oltpSql();
    const ids = dead.map((m) => m.jobId);
    await sql.transaction([sql`select set_config('app.current_role', 'system', true)`, sql`update jobs set status = 'dead', attempts = 3 where id = any(${ids})`]);
    await trpcClient(staff.token, { batch: false }).jobs.redrive.mutate({ ids });
    const audits = (await pendingJobs("RECORD_AUDIT")).filter((job) => ids.includes(String(job.payload.targetId)));
    expect(audits).toHaveLength(6);

    await setDatabaseFault("olap", "down");
    try {
      const outcome = await deliver(queueNames.normal, audits);
      expect(outcome.retries).toHaveLength(0);
      for (const job of audits) expect(await ledgerRow(job.jobId)).toMatchObject({ status: "pending", attempts: 0 });
    } finally {
      await setDatabaseFault("olap", "none");
    }

    await resetRoundTrips();
    await deliver(queueNames.normal, audits);
    expect((await postgresRoundTrips()).olap ?? 0).toBe(1);
    for (const job of audits) expect(await ledgerRow(job.jobId)).toMatchObject({ status: "succeeded" });
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const entries = await entriesOf(admin, { action: "job.redrive" });
    expect(entries.map((e) => e.target.id).sort()).toEqual([...ids].sort());

    // Delivered again (at least once): no second entry.
    await sql.transaction([sql`select set_config('app.current_role', 'system', true)`, sql`update jobs set status = 'pending' where id = any(${audits.map((j) => j.jobId)})`]);
    await deliver(queueNames.normal, audits);
    expect(await entriesOf(admin, { action: "job.redrive" })).toHaveLength(6);
  });

  it("resolving and reopening a system event are recorded through the queue, without the OLTP ledger", async () => {
    const tenant = await createBareTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const { event } = await admin.admin.systemEvents.create.mutate({ eventType: "audit.test", severity: "low", description: "x" });
    await setDatabaseFault("oltp", "down");
    try {
      await admin.admin.systemEvents.resolve.mutate({ id: event.id });
      await admin.admin.systemEvents.reopen.mutate({ id: event.id });
    } finally {
      await setDatabaseFault("oltp", "none");
    }
    const items = await waitFor(async () => {
      const found = await entriesOf(admin);
      return found.length >= 2 ? found : undefined;
    }, 30_000);
    expect(items.map((e) => [e.action, e.target.id]).reverse()).toEqual([
      ["systemEvent.resolve", event.id],
      ["systemEvent.reopen", event.id],
    ]);
  });
});

describe("the audit log's guarantees", () => {
  afterEach(() => setDatabaseFault("olap", "none"));

  it("with OLAP down the action succeeds and its entry waits in the ledger, then arrives after recovery", async () => {
    const tenant = await createBareTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    await setDatabaseFault("olap", "down");
    const key = await admin.apiKeys.create.mutate({ name: "during outage" });
    const [job] = (await pendingJobs("RECORD_AUDIT")).filter((j) => j.payload.targetId === key.id);
    expect(job).toBeDefined();
    const outcome = await deliver(queueNames.normal, [job!]);
    expect(outcome.retries).toHaveLength(0);
    expect(await ledgerRow(job!.jobId)).toMatchObject({ status: "pending", attempts: 0 });

    await setDatabaseFault("olap", "none");
    await deliver(queueNames.normal, [job!]);
    expect(await ledgerRow(job!.jobId)).toMatchObject({ status: "succeeded" });
    const items = await entriesOf(admin);
    expect(items.map((e) => [e.action, e.target.id])).toEqual([["apiKey.create", key.id]]);
    // Delivered again (at least once): still one entry.
    const sql = oltpSql();
    await sql.transaction([sql`select set_config('app.current_role', 'system', true)`, sql`update jobs set status = 'pending' where id = ${job!.jobId}`]);
    await deliver(queueNames.normal, [job!]);
    expect(await entriesOf(admin)).toHaveLength(1);
  });

  it("is append-only for the application role: update and delete are refused even to the writer", async () => {
    const store = olapStore();
    const writer = (statement: ReturnType<typeof store.sql>) =>
      store.sql.transaction([store.sql`select set_config('app.current_role', 'analytics', true)`, statement]);
    await expect(writer(store.sql`update admin_audit_log set action = 'forged'`)).rejects.toMatchObject({ code: "42501" });
    await expect(writer(store.sql`delete from admin_audit_log`)).rejects.toMatchObject({ code: "42501" });
    await expect(writer(store.sql`truncate admin_audit_log`)).rejects.toMatchObject({ code: "42501" });
    // The same role may insert: the refusals above are about the verbs, not the role.
    await writer(
      store.sql`insert into admin_audit_log (id, occurred_at, actor_id, actor_role, action, target_type) values (${crypto.randomUUID()}, now(), 'x', 'admin', 'probe', 'none')`,
    );
  });

  it("tenant admins read their own tenant's entries, members none, operators every tenant's; pages follow the cursor; one OLAP round trip", async () => {
    const a = await createBareTenant();
    const b = await createBareTenant();
    const adminA = trpcClient(a.admin.token, { batch: false });
    for (const name of ["one", "two", "three"]) await adminA.tenants.rename.mutate({ name });
    await trpcClient(b.admin.token, { batch: false }).tenants.rename.mutate({ name: "b" });
    await drainAndRead(adminA, 3);

    await resetRoundTrips();
    const first = await adminA.analytics.auditLog.query({ limit: 2 });
    const counts = await postgresRoundTrips();
    expect({ oltp: counts.oltp ?? 0, olap: counts.olap ?? 0 }).toEqual({ oltp: 0, olap: 1 });
    expect(first.items.map((e) => e.details.name)).toEqual(["three", "two"]);
    const second = await adminA.analytics.auditLog.query({ limit: 2, cursor: first.nextCursor! });
    expect(second.items.map((e) => e.details.name)).toEqual(["one"]);
    expect(second.nextCursor).toBeNull();

    await expectCode(adminA.analytics.auditLog.query({ limit: 10, tenantId: b.id }), "FORBIDDEN");
    await expectCode(trpcClient(a.member.token, { batch: false }).analytics.auditLog.query({ limit: 10 }), "FORBIDDEN");
    await expectCode(adminA.analytics.auditLog.query({ limit: 10, cursor: "not-a-cursor" }), "VALIDATION_FAILED");

    const staff = trpcClient((await operator()).token, { batch: false });
    const ofB = await staff.analytics.auditLog.query({ limit: 10, tenantId: b.id });
    expect(ofB.items.map((e) => e.details.name)).toEqual(["b"]);
    const all = await staff.analytics.auditLog.query({ limit: 100 });
    expect(all.items.some((e) => e.tenantId === a.id) && all.items.some((e) => e.tenantId === b.id)).toBe(true);
  });
});
