// Issue 18, "Imports and exports": row errors name the line a row starts on, a stray quote fails only its row, a
// semicolon file is read, an oversized file is the documented 413, the summary breaks out created / updated /
// duplicate / invalid, exports carry suppression and neutralise formulas, the tenant can count its leads, operators
// narrow jobs.stats and list one tenant's jobs, members never read audit payloads, and search finds an address.
import { parse } from "csv-parse/sync";
import { beforeAll, describe, expect, it } from "vitest";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { neutraliseFormula } from "../../src/tiers/jobs/services/export-leads";
import { contentSetup, deliverIndexing, untilQuiet } from "../support/content";
import { createTenant, type TestTenant } from "../support/factories";
import { deliver } from "../support/jobs";
import { operator, type Caller } from "../support/notifications";
import { queueNames } from "../support/runtime";
import { request, trpcClient } from "../support/worker";

const client = (token: string) => trpcClient(token, { batch: false });

/** Uploads the file through jobs.importLeads and runs its job as the low queue would; the finished job. */
async function importCsv(tenant: TestTenant, csv: string) {
  const job = await client(tenant.admin.token).jobs.importLeads.mutate({ fileName: "leads.csv", csv });
  for (let delivery = 0; delivery < 20; delivery++) {
    await deliver(queueNames.low, [{ jobId: job.id, type: "IMPORT_LEADS", tenantId: tenant.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const now = await client(tenant.admin.token).jobs.get.query({ id: job.id });
    if (now.status !== "pending" && now.status !== "running") return { ...now, uploaded: job };
  }
  throw new Error("the import did not finish");
}

async function exportRows(tenant: TestTenant): Promise<Array<Record<string, string>>> {
  const job = await client(tenant.admin.token).jobs.exportLeads.mutate({});
  for (let delivery = 0; delivery < 20; delivery++) {
    await deliver(queueNames.low, [{ jobId: job.id, type: "EXPORT_LEADS", tenantId: tenant.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const now = await client(tenant.admin.token).jobs.get.query({ id: job.id });
    if (now.download) {
      const url = new URL(now.download.url);
      return parse(await (await request(url.pathname + url.search)).text(), { columns: true });
    }
  }
  throw new Error("the export did not finish");
}

const lines = (progress: unknown) => (progress as { rowErrors: Array<{ line: number }> }).rowErrors.map((e) => e.line);

describe("lead imports", () => {
  let tenant: TestTenant;
  beforeAll(async () => {
    tenant = await createTenant();
  });

  it("row errors name the line the row starts on, with a BOM, CRLF line ends and quoted newlines", async () => {
    const csv = [
      "\uFEFFemail,first_name,company", // line 1
      "a1@example.test,A,\"Multi\r\nline\"", // 2-3
      "b1@example.test,B,Plain", // 4
      "", // 5
      "broken-6,C,Six", // 6
      "c1@example.test,D,\"Two\r\nmore\r\nlines\"", // 7-9
      "broken-10,E,Ten", // 10
      "d1@example.test,F,\"x\ny\"", // 11-12
      "e1@example.test,G,", // 13
      "", // 14
      "broken-15,H,Fifteen", // 15
    ].join("\r\n");
    const done = await importCsv(tenant, csv);
    expect(done.status).toBe("succeeded");
    expect(lines(done.progress)).toEqual([6, 10, 15]);
    expect(done.progress).toMatchObject({ created: 5, invalid: 3, rowsTotal: 8 });
  });

  it("a stray quote fails only its own row: the other rows import and that row is reported by line", async () => {
    const csv = ["email,first_name", "q1@example.test,Ada", 'q2@example.test,Bo"b', "q3@example.test,Cy", 'q4@example.test,"Dee', "q5@example.test,Eve"].join("\n");
    const done = await importCsv(tenant, csv);
    expect(done.status).toBe("succeeded");
    expect(lines(done.progress)).toEqual([3, 5]);
    expect((done.progress as { rowErrors: Array<{ message: string }> }).rowErrors[0]!.message).toMatch(/not valid CSV.*quote/i);
    const emails = (await client(tenant.admin.token).leads.list.query({ search: "q", limit: 10 })).items.map((l) => l.email).sort();
    expect(emails).toEqual(["q1@example.test", "q3@example.test", "q5@example.test"]);
  });

  it("a semicolon-separated file (as Excel writes in many locales) is read by its delimiter", async () => {
    const done = await importCsv(tenant, ["Email;First Name;Company", "semi1@example.test;Sam;\"Acme; Ltd\"", "semi2@example.test;Sue;"].join("\n"));
    expect(done).toMatchObject({ status: "succeeded", progress: { created: 2, invalid: 0 } });
    const lead = (await client(tenant.admin.token).leads.list.query({ search: "semi1", limit: 1 })).items[0];
    expect(lead).toMatchObject({ firstName: "Sam", company: "Acme; Ltd" });
  });

  it("a file without an email column under any delimiter is refused on upload, by name", async () => {
    await expect(client(tenant.admin.token).jobs.importLeads.mutate({ fileName: "pipes.csv", csv: "name|company\nx|y\n" })).rejects.toMatchObject({
      data: { code: "VALIDATION_FAILED", httpStatus: 400 },
      message: expect.stringMatching(/no 'email' column.*commas, semicolons or tabs/),
    });
  });

  it("a file over the limit is the documented 413 PAYLOAD_TOO_LARGE", async () => {
    const csv = `email\n${"x".repeat(jobsConfig.import.maxFileBytes)}`;
    await expect(client(tenant.admin.token).jobs.importLeads.mutate({ fileName: "big.csv", csv })).rejects.toMatchObject({
      data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 },
    });
  });

  it("the summary breaks out created, updated, duplicate and invalid; a repeated address is one lead", async () => {
    const fresh = await createTenant();
    await client(fresh.admin.token).leads.create.mutate({ email: "old@example.test" });
    const csv = [
      "email,first_name",
      "new1@example.test,N1",
      "old@example.test,Old",
      "new1@example.test,Again",
      "NEW1@example.test,Third",
      "not-an-email,X",
      "new2@example.test,N2",
    ].join("\n");
    const done = await importCsv(fresh, csv);
    // The upload's answer already carries the row total, before any delivery.
    expect(done.uploaded.progress).toMatchObject({ rowsTotal: 6, rowsDone: 0 });
    expect(done.progress).toMatchObject({ rowsTotal: 6, created: 2, updated: 1, duplicate: 2, invalid: 1, imported: 3, errorCount: 1 });
    expect(await client(fresh.admin.token).leads.count.query()).toEqual({ count: 3 });
  });
});

describe("lead exports and counts", () => {
  it("an export carries each lead's suppression (unsubscribed, bounced) and neutralises formula cells", async () => {
    const tenant = await createTenant();
    const admin = client(tenant.admin.token);
    const plain = await admin.leads.create.mutate({ email: "plain@example.test", firstName: "=HYPERLINK(\"http://evil\")", company: "@SUM(A1)" });
    const gone = await admin.leads.create.mutate({ email: "gone@example.test", lastName: "-2+3", company: "+cmd" });
    const { mailbox } = await (await import("../support/oltp")).mailboxFor(tenant.admin.token);
    const email = await admin.emails.create.mutate({ leadId: gone.id, mailboxId: mailbox.id, subject: "Hi", contentStorageKey: `bodies/${crypto.randomUUID()}` });
    await admin.emails.recordEvent.mutate({ emailId: email.id, type: "bounced" });
    await admin.emails.recordEvent.mutate({ emailId: email.id, type: "unsubscribed" });
    const rows = await exportRows(tenant);
    const byEmail = Object.fromEntries(rows.map((r) => [r.email, r]));
    expect(byEmail["plain@example.test"]).toMatchObject({ unsubscribed_at: "", bounced_at: "", first_name: "'=HYPERLINK(\"http://evil\")", company: "'@SUM(A1)" });
    expect(byEmail["gone@example.test"]).toMatchObject({ last_name: "'-2+3", company: "'+cmd" });
    // Names are trimmed on the way in, so a leading tab or CR reaches the export only through the rule itself.
    expect(["\tx", "\rx", "x=1"].map(neutraliseFormula)).toEqual(["'\tx", "'\rx", "x=1"]);
    expect(byEmail["gone@example.test"]!.unsubscribed_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(byEmail["gone@example.test"]!.bounced_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(plain.id).toBe(byEmail["plain@example.test"]!.id);

    // The exported file imported into another tenant gives the cells back as they were, without the quote.
    const other = await createTenant();
    const header = Object.keys(rows[0]!);
    const csv = [header.join(","), ...rows.map((r) => header.map((h) => `"${String(r[h]).replaceAll('"', '""')}"`).join(","))].join("\n");
    expect((await importCsv(other, csv)).progress).toMatchObject({ created: 2, invalid: 0 });
    const back = (await client(other.admin.token).leads.list.query({ limit: 10 })).items;
    expect(back.find((l) => l.email === "plain@example.test")).toMatchObject({ firstName: "=HYPERLINK(\"http://evil\")", company: "@SUM(A1)" });
    expect(back.find((l) => l.email === "gone@example.test")).toMatchObject({ lastName: "-2+3", company: "+cmd" });
  });

  it("the tenant learns how many leads it has, or match a filter, in one call", async () => {
    const tenant = await createTenant();
    const admin = client(tenant.admin.token);
    for (let i = 0; i < 3; i++) await admin.leads.create.mutate({ email: `count-${i}@example.test`, status: i === 0 ? "replied" : "new" });
    const member = client(tenant.member.token);
    expect(await member.leads.count.query()).toEqual({ count: 3 });
    expect(await member.leads.count.query({ status: "replied" })).toEqual({ count: 1 });
    expect(await client((await createTenant()).admin.token).leads.count.query()).toEqual({ count: 0 });
  });
});

describe("jobs for operators and members", () => {
  let a: TestTenant;
  let b: TestTenant;
  let staff: Caller;
  beforeAll(async () => {
    [a, b, staff] = await Promise.all([createTenant(), createTenant(), operator()]);
    await client(a.admin.token).jobs.importLeads.mutate({ fileName: "a.csv", csv: "email\na@example.test" });
    await client(b.admin.token).jobs.importLeads.mutate({ fileName: "b.csv", csv: "email\nb@example.test" });
    await client(b.admin.token).jobs.importLeads.mutate({ fileName: "b2.csv", csv: "email\nb2@example.test" });
  });

  it("operators narrow jobs.stats to one tenant and list one tenant's jobs of any type and status", async () => {
    const stats = await client(staff.token).jobs.stats.query({ tenantId: b.id });
    expect(stats.counts.filter((c) => c.type === "IMPORT_LEADS").reduce((n, c) => n + c.count, 0)).toBe(2);
    const listed = await client(staff.token).jobs.listTenant.query({ tenantId: a.id, type: "IMPORT_LEADS" });
    expect(listed.items.map((j) => j.tenantId)).toEqual([a.id]);
    await expect(client(a.admin.token).jobs.listTenant.query({ tenantId: b.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
  });

  it("members never read RECORD_AUDIT payloads through jobs.list or jobs.get; admins do", async () => {
    await client(a.admin.token).apiKeys.create.mutate({ name: "audited" });
    const asMember = (await client(a.member.token).jobs.list.query({ type: "RECORD_AUDIT" })).items;
    expect(asMember.length).toBeGreaterThan(0);
    for (const job of asMember) expect(job.payload).toEqual({});
    expect((await client(a.member.token).jobs.get.query({ id: asMember[0]!.id })).payload).toEqual({});
    const asAdmin = await client(a.admin.token).jobs.get.query({ id: asMember[0]!.id });
    expect(asAdmin.payload).toMatchObject({ action: expect.any(String), actorId: a.admin.id });
  });
});

describe("content search", () => {
  it("an email address finds the emails that mention it", async () => {
    const s = await contentSetup();
    const mention = await s.client.emails.create.mutate({
      leadId: s.leadId, mailboxId: s.mailboxId, subject: "Intro", body: { text: "Write to grace.hopper@navy.example.mil for the compiler.", html: "", headers: {} },
    });
    const other = await s.client.emails.create.mutate({
      leadId: s.leadId, mailboxId: s.mailboxId, subject: "Navy", body: { text: "The navy example was fine.", html: "", headers: {} },
    });
    await deliverIndexing(s.tenant.id, [mention.id, other.id]);
    await untilQuiet();
    expect((await s.client.content.search.query({ query: "grace.hopper@navy.example.mil" })).map((h) => h.emailId)).toEqual([mention.id]);
    expect((await s.client.content.search.query({ query: "compiler GRACE.HOPPER@navy.example.mil" })).map((h) => h.emailId)).toEqual([mention.id]);
    expect((await s.client.content.search.query({ query: "navy" })).map((h) => h.emailId)).toContain(other.id);
  });
});
