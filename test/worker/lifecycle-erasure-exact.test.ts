// Erasure's promises made exact (issue 18, Erasure): the export covers what mentions the subject, nothing made before
// the erasure still yields the address, the receipt says what is not searched, and the retention report covers R2 and Redis.
import { describe, expect, it } from "vitest";
import { retentionRules } from "../../src/lifecycle/retention";
import { contentSetup } from "../support/content";
import { deliver, ledgerRow } from "../support/jobs";
import { asRole, operatorClient, redis } from "../support/lifecycle";
import { queueNames } from "../support/runtime";
import { request } from "../support/worker";

const message = (tenantId: string, jobId: string, type: "ERASE_SUBJECT" | "EXPORT_LEADS" | "IMPORT_LEADS", payload: Record<string, unknown> = {}) => ({
  jobId,
  type,
  tenantId,
  payload,
  enqueuedAt: new Date().toISOString(),
});

/** Follows a download link as a browser would (no token). */
const download = (url: string) => request(new URL(url).pathname + new URL(url).search);

async function plant() {
  const s = await contentSetup();
  const address = `subject-${crypto.randomUUID().slice(0, 8)}@example.org`;
  const lead = await s.client.leads.create.mutate({ email: address, firstName: "Erin" });
  const email = await s.client.emails.create.mutate({ leadId: lead.id, mailboxId: s.mailboxId, subject: "Hello", body: { text: "Dear Erin" } });
  return { s, address, lead, email };
}

async function runToEnd(s: Awaited<ReturnType<typeof contentSetup>>, jobId: string, type: "EXPORT_LEADS" | "IMPORT_LEADS") {
  for (let delivery = 0; delivery < 20; delivery++) {
    await deliver(queueNames.low, [message(s.tenant.id, jobId, type)]);
    const job = await s.client.jobs.get.query({ id: jobId });
    if (job.status !== "pending" && job.status !== "running") return job;
  }
  throw new Error(`job ${jobId} did not finish`);
}

async function erase(s: Awaited<ReturnType<typeof contentSetup>>, address: string) {
  const { requestId, jobId } = await s.client.lifecycle.eraseSubject.mutate({ subject: { email: address } });
  await deliver(queueNames.normal, [message(s.tenant.id, jobId, "ERASE_SUBJECT", { requestId })]);
  const receipt = await s.client.lifecycle.erasureReceipt.query({ requestId });
  expect(receipt.status).toBe("completed");
  return receipt;
}

describe("erasure, exactly", () => {
  it("exportSubject includes the notifications and the tenant's system events that mention the subject, and no others", async () => {
    const { s, address } = await plant();
    await asRole("notifications", "system", (sql) => [
      sql`insert into notifications (tenant_id, user_id, type, title, message) values (${s.tenant.id}, ${s.tenant.admin.id}, 'lead', 'Reply', ${`${address} replied`})`,
      sql`insert into notifications (tenant_id, user_id, type, title, message) values (${s.tenant.id}, ${s.tenant.admin.id}, 'lead', 'Other', 'someone else replied')`,
      sql`insert into admin_system_events (event_type, severity, tenant_id, description, details) values ('bounce', 'low', ${s.tenant.id}, 'bounce', ${JSON.stringify({ address })}::jsonb)`,
      sql`insert into admin_system_events (event_type, severity, tenant_id, description, details) values ('bounce', 'low', ${s.tenant.id}, 'unrelated', '{}'::jsonb)`,
    ], s.tenant.id);
    const exported = await s.client.lifecycle.exportSubject.query({ subject: { email: address } });
    expect((exported.notifications as Array<{ message: string }>).map((n) => n.message)).toEqual([`${address} replied`]);
    expect((exported.systemEvents as Array<{ details: unknown }>).map((e) => e.details)).toEqual([{ address }]);
  });

  it("after erasure an export made before it no longer yields the address, jobs.get signs no link to it, and no ledger row names the lead or its emails", async () => {
    const { s, address, lead, email } = await plant();
    const imported = await s.client.jobs.importLeads.mutate({ fileName: "list.csv", csv: `email,first_name\n${address},Erin\nkim-${crypto.randomUUID().slice(0, 8)}@example.net,Kim` });
    expect(await runToEnd(s, imported.id, "IMPORT_LEADS")).toMatchObject({ status: "succeeded" });
    const exportJob = await s.client.jobs.exportLeads.mutate({});
    const before = await runToEnd(s, exportJob.id, "EXPORT_LEADS");
    expect(before.status).toBe("succeeded");
    const oldLink = before.download!.url;
    expect(await (await download(oldLink)).text()).toContain(address);
    // An export of a campaign holding only the subject: its cursor (`after`, the last lead id written) is the lead's.
    const campaign = await s.client.campaigns.create.mutate({ name: "Only Erin" });
    await s.client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [lead.id] });
    const onlyErin = await s.client.jobs.exportLeads.mutate({ campaignId: campaign.id });
    expect((await runToEnd(s, onlyErin.id, "EXPORT_LEADS")).status).toBe("succeeded");

    const receipt = await erase(s, address);

    const response = await download(oldLink);
    const body = response.ok ? await response.text() : "";
    expect(body).not.toContain(address);
    expect((await s.client.jobs.get.query({ id: exportJob.id })).download ?? null).toBeNull();
    expect(receipt.receipt).toMatchObject({ tiers: { files: { counts: { exports: 2, imports: 1 } } } });
    // Every ledger row left: none names the address, the lead or its email.
    const [rows = []] = await asRole("oltp", "lifecycle", (sql) => [
      sql`select id, type, status, payload, progress, last_error from jobs j where j.tenant_id = ${s.tenant.id}
            and (j::text ilike ${`%${address}%`} or j::text like ${`%${lead.id}%`} or j::text like ${`%${email.id}%`})`,
    ], s.tenant.id);
    expect(rows).toEqual([]);
    expect(await ledgerRow(email.id)).toBeUndefined();
  });

  it("the receipt says what erasure does not search (other people's emails that mention the address) and why", async () => {
    const { s, address } = await plant();
    const receipt = await erase(s, address);
    expect(receipt.receipt).toMatchObject({
      notSearched: [{ what: expect.stringContaining("other people's emails"), why: expect.any(String) }],
    });
  });

  it("retentionReport covers the R2 prefixes and Redis key families of the retention table, with what each holds", async () => {
    const { s, address } = await plant();
    await s.client.jobs.importLeads.mutate({ fileName: "r.csv", csv: `email\n${address}` });
    await redis().set(`notif:unread:${s.tenant.id}`, "1", { ex: 60 });
    const report = await (await operatorClient()).lifecycle.retentionReport.query();
    expect(report.map((r) => `${r.store} ${r.table}`).sort()).toEqual(retentionRules.map((r) => `${r.store} ${r.name}`).sort());
    const imports = report.find((r) => r.store === "r2" && r.table === "imports/<tenant>/")!;
    expect(imports.rows).toBeGreaterThanOrEqual(1);
    expect(imports.oldest).not.toBeNull();
    expect(report.find((r) => r.store === "r2" && r.table === "tenants/<tenant>/objects/")!.rows).toBeGreaterThanOrEqual(1);
    expect(report.find((r) => r.store === "redis" && r.table === "notif:unread:{tenant}")!.rows).toBeGreaterThanOrEqual(1);
  });
});
