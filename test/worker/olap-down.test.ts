import { afterEach, describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { operator } from "../support/notifications";
import { pendingJobs, utcDay } from "../support/olap";
import { fakeEmail, mailboxFor, rejection } from "../support/oltp";
import { setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("with the OLAP database down", () => {
  afterEach(() => setDatabaseFault("olap", "none"));

  it("every other router keeps serving, admin actions included, while every analytics read answers SERVICE_UNAVAILABLE naming olap", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const staff = trpcClient((await operator()).token, { batch: false });
    const { mailbox } = await mailboxFor(tenant.admin.token);
    const lead = await admin.leads.create.mutate({ email: fakeEmail() });
    const email = await admin.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "Hi", body: { text: "hello" } });

    await setDatabaseFault("olap", "down");
    const others: Array<[string, () => Promise<unknown>]> = [
      ["tenants.current", () => admin.tenants.current.query()],
      ["tenants.rename", () => admin.tenants.rename.mutate({ name: "During the outage" })],
      ["users.list", () => admin.users.list.query({})],
      ["users.add", () => admin.users.add.mutate({ email: fakeEmail() })],
      ["apiKeys.create", () => admin.apiKeys.create.mutate({ name: "outage" })],
      ["apiKeys.list", () => admin.apiKeys.list.query({})],
      ["domains.list", () => admin.domains.list.query({})],
      ["mailboxes.update", () => admin.mailboxes.update.mutate({ id: mailbox.id, status: "paused" })],
      ["campaigns.create", () => admin.campaigns.create.mutate({ name: "outage" })],
      ["leads.list", () => admin.leads.list.query({})],
      ["emails.get", () => admin.emails.get.query({ id: email.id })],
      ["content.get", () => admin.content.get.query({ emailId: email.id })],
      ["jobs.list", () => admin.jobs.list.query({})],
      ["notifications.list", () => admin.notifications.list.query({})],
      ["admin.systemEvents.list", () => admin.admin.systemEvents.list.query({ limit: 5 })],
      ["jobs.stats", () => staff.jobs.stats.query()],
    ];
    for (const [name, call] of others) {
      await expect(call(), name).resolves.toBeDefined();
    }
    // The admin actions' audit entries wait in the ledger for OLAP to return.
    expect((await pendingJobs("RECORD_AUDIT")).filter((j) => j.tenantId === tenant.id).length).toBeGreaterThanOrEqual(4);

    const range = { from: utcDay(-7), to: utcDay(0) };
    const id = crypto.randomUUID();
    const analytics: Array<[string, () => Promise<unknown>]> = [
      ["campaignPerformance", () => admin.analytics.campaignPerformance.query({ campaignId: id, ...range })],
      ["mailboxHealth", () => admin.analytics.mailboxHealth.query(range)],
      ["leadEngagement", () => admin.analytics.leadEngagement.query(range)],
      ["sequenceFunnel", () => admin.analytics.sequenceFunnel.query({ campaignId: id, ...range })],
      ["billingUsage", () => admin.analytics.billingUsage.query(range)],
      ["auditLog", () => admin.analytics.auditLog.query({})],
    ];
    for (const [name, call] of analytics) {
      expect(await rejection(call()), name).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503, tier: "olap" });
    }
    // A rebuild only enqueues its job (OLTP): it is accepted and runs once OLAP is back.
    await expect(staff.analytics.rebuild.mutate({ tenantId: tenant.id, ...range })).resolves.toMatchObject({ status: "pending" });
  });
});
