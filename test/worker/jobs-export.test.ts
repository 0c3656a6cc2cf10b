import { parse } from "csv-parse/sync";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { jobRuntimeConfig } from "../../src/platform/jobs/config";
import { parseEnv } from "../../src/platform/env";
import { cronTasks } from "../support/runtime";
import { pruneFilesOlderThan } from "../../src/tiers/jobs/services/export-leads";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { queueNames, type JobMessage } from "../support/runtime";
import { exportStorageKey, signExportLink } from "../../src/tiers/jobs/services/export-links";
import { createTenant, type TestTenant } from "../support/factories";
import { deliver } from "../support/jobs";
import { expectCode } from "../support/oltp";
import { origin, request, trpcClient } from "../support/worker";

const client = (token: string) => trpcClient(token, { batch: false });
const message = (jobId: string, tenantId: string, type: JobMessage["type"]): JobMessage => ({
  jobId,
  type,
  tenantId,
  payload: {},
  enqueuedAt: new Date().toISOString(),
});

/** Delivers a low-priority job until it is finished, as the queue would (each chunk is one delivery). */
async function runToEnd(tenant: TestTenant, jobId: string, type: JobMessage["type"]) {
  for (let delivery = 0; delivery < 50; delivery++) {
    await deliver(queueNames.low, [message(jobId, tenant.id, type)]);
    const job = await client(tenant.admin.token).jobs.get.query({ id: jobId });
    if (job.status !== "pending" && job.status !== "running") return job;
  }
  throw new Error(`job ${jobId} did not finish`);
}

/** Fetches a download link through the Worker as a browser following it would (no token). */
const download = (url: string) => request(new URL(url).pathname + new URL(url).search);

const errorCode = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;

describe("EXPORT_LEADS", () => {
  let a: TestTenant;
  let b: TestTenant;
  const saved = { ...jobsConfig.export };
  beforeAll(async () => {
    [a, b] = await Promise.all([createTenant(), createTenant()]);
    const csv = [
      "email,first_name,last_name,company,plan",
      'ada@example.test,Ada,Lovelace,"Analytical Engines, Ltd.",gold',
      'grace@example.test,Grace,Hopper,"The ""Navy""",',
      "linus@example.test,Linus,,Kernel,silver",
      "emile@example.test,Émile,Zola,Presse,",
      "zoe@example.test,Zoë,,,bronze",
    ].join("\n");
    const imported = await client(a.admin.token).jobs.importLeads.mutate({ fileName: "seed.csv", csv });
    expect(await runToEnd(a, imported.id, "IMPORT_LEADS")).toMatchObject({ status: "succeeded", progress: { imported: 5 } });
    await client(b.admin.token).leads.create.mutate({ email: "b-only@example.test" });
  });
  afterEach(() => {
    Object.assign(jobsConfig.export, saved);
  });

  it("exports the tenant's leads as CSV to R2 and jobs.get gives a signed link that downloads exactly those rows", async () => {
    const job = await client(a.admin.token).jobs.exportLeads.mutate({});
    expect(job).toMatchObject({ type: "EXPORT_LEADS", status: "pending", priority: "low" });
    const done = await runToEnd(a, job.id, "EXPORT_LEADS");
    expect(done).toMatchObject({ status: "succeeded", progress: { rowsDone: 5, storageKey: exportStorageKey(a.id, job.id) } });
    expect(done.download).toMatchObject({ url: expect.stringMatching(new RegExp(`^${origin}/v1/exports/${a.id}/${job.id}\\.csv\\?expires=\\d+&sig=`)) });
    expect(Date.parse(done.download!.expiresAt) - Date.now()).toBeLessThanOrEqual(jobsConfig.export.linkTtlSeconds * 1000);

    const response = await download(done.download!.url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const rows = parse(await response.text(), { columns: true }) as Array<Record<string, string>>;
    const leads = (await client(a.admin.token).leads.list.query({ limit: 100 })).items;
    expect(rows).toHaveLength(leads.length);
    const expected = leads
      .map((l) => ({
        id: l.id,
        email: l.email,
        first_name: l.firstName ?? "",
        last_name: l.lastName ?? "",
        company: l.company ?? "",
        status: l.status,
        custom_fields: l.customFields,
        unsubscribed_at: "",
        bounced_at: "",
      }))
      .sort((x, y) => (x.id < y.id ? -1 : 1));
    expect(rows.map(({ created_at, custom_fields, ...row }) => ({ ...row, custom_fields: JSON.parse(custom_fields!) }))).toEqual(expected);
    expect(rows.find((r) => r.email === "ada@example.test")).toMatchObject({ company: "Analytical Engines, Ltd.", custom_fields: '{"plan":"gold"}' });
    expect(rows.some((r) => r.email === "b-only@example.test")).toBe(false);
  });

  it("a large export is written in parts, one per delivery, resumed from the saved place and joined into one file", async () => {
    Object.assign(jobsConfig.export, { rowsPerPage: 1, rowsPerInvocation: 2 });
    // Each delivery stops after one part here (no time to continue in it), as one whose time ran out does.
    const within = jobRuntimeConfig.continueWithinSeconds;
    jobRuntimeConfig.continueWithinSeconds = 0;
    onTestFinished(() => {
      jobRuntimeConfig.continueWithinSeconds = within;
    });
    const job = await client(a.admin.token).jobs.exportLeads.mutate({});
    await deliver(queueNames.low, [message(job.id, a.id, "EXPORT_LEADS")]);
    const halfway = await client(a.admin.token).jobs.get.query({ id: job.id });
    expect(halfway).toMatchObject({ status: "pending", attempts: 0, progress: { rowsDone: 2, partBytes: [expect.any(Number)] }, download: null });
    const done = await runToEnd(a, job.id, "EXPORT_LEADS");
    expect(done.progress).toMatchObject({ rowsDone: 5, partBytes: [expect.any(Number), expect.any(Number), expect.any(Number)] });
    const text = await (await download(done.download!.url)).text();
    const rows = parse(text, { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((r) => r.email).sort()).toEqual(["ada@example.test", "emile@example.test", "grace@example.test", "linus@example.test", "zoe@example.test"]);
    expect(text.match(/^id,email/gm)).toHaveLength(1);
    // The parts are gone once joined: only the one file remains under the job's prefix.
    const listed = await env.CONTENT_BUCKET.list({ prefix: `exports/${a.id}/${job.id}` });
    expect(listed.objects.map((o) => o.key)).toEqual([exportStorageKey(a.id, job.id)]);
  });

  it("filters by status and by campaign", async () => {
    const admin = client(a.admin.token);
    const leads = (await admin.leads.list.query({ limit: 100 })).items;
    const ada = leads.find((l) => l.email === "ada@example.test")!;
    const grace = leads.find((l) => l.email === "grace@example.test")!;
    await admin.leads.update.mutate({ id: ada.id, status: "interested" });
    const campaign = await admin.campaigns.create.mutate({ name: "Export filter" });
    await admin.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [grace.id, ada.id] });

    const byStatus = await runToEnd(a, (await admin.jobs.exportLeads.mutate({ status: "interested" })).id, "EXPORT_LEADS");
    const statusRows = parse(await (await download(byStatus.download!.url)).text(), { columns: true }) as Array<Record<string, string>>;
    expect(statusRows.map((r) => r.email)).toEqual(["ada@example.test"]);

    const byCampaign = await runToEnd(a, (await admin.jobs.exportLeads.mutate({ campaignId: campaign.id })).id, "EXPORT_LEADS");
    const campaignRows = parse(await (await download(byCampaign.download!.url)).text(), { columns: true }) as Array<Record<string, string>>;
    expect(campaignRows.map((r) => r.email).sort()).toEqual(["ada@example.test", "grace@example.test"]);
  });

  it("a tampered, foreign or expired link is refused with 403 and a code; another tenant cannot reach the file", async () => {
    const done = await runToEnd(a, (await client(a.admin.token).jobs.exportLeads.mutate({})).id, "EXPORT_LEADS");
    const url = new URL(done.download!.url);
    const sig = url.searchParams.get("sig")!;
    const variants: Array<[string, (u: URL) => void]> = [
      ["signature changed", (u) => u.searchParams.set("sig", (sig[0] === "A" ? "B" : "A") + sig.slice(1))],
      ["expiry extended", (u) => u.searchParams.set("expires", String(Number(u.searchParams.get("expires")) + 3600))],
      ["signature missing", (u) => u.searchParams.delete("sig")],
      ["not a job path", (u) => (u.pathname = `/v1/exports/${a.id}/../../imports.csv`)],
    ];
    for (const [what, change] of variants) {
      const tampered = new URL(url);
      change(tampered);
      const response = await download(tampered.toString());
      expect(response.status, what).toBeGreaterThanOrEqual(400);
      expect(response.status, what).toBeLessThan(500);
      if (what !== "not a job path") expect([response.status, await errorCode(response)], what).toEqual([403, "LINK_INVALID"]);
    }

    // Tenant B's own valid link, pointed at A's file, is not valid for it; B cannot see A's job either.
    const bJob = await runToEnd(b, (await client(b.admin.token).jobs.exportLeads.mutate({})).id, "EXPORT_LEADS");
    const bUrl = new URL(bJob.download!.url);
    bUrl.pathname = url.pathname;
    const foreign = await download(bUrl.toString());
    expect([foreign.status, await errorCode(foreign)]).toEqual([403, "LINK_INVALID"]);
    await expectCode(client(b.admin.token).jobs.get.query({ id: done.id }), "NOT_FOUND");
    const bRows = parse(await (await download(bJob.download!.url)).text(), { columns: true }) as Array<Record<string, string>>;
    expect(bRows.map((r) => r.email)).toEqual(["b-only@example.test"]);

    // A genuine link past its expiry.
    const expired = await signExportLink(parseEnv(env), exportStorageKey(a.id, done.id), -1, origin, new Date());
    const late = await download(expired.url);
    expect([late.status, await errorCode(late)]).toEqual([403, "LINK_EXPIRED"]);
  });

  it("only admins export, a foreign campaign is NOT_FOUND, and bad filters are refused", async () => {
    await expectCode(client(a.member.token).jobs.exportLeads.mutate({}), "FORBIDDEN");
    const foreignCampaign = await client(b.admin.token).campaigns.create.mutate({ name: "B's" });
    await expectCode(client(a.admin.token).jobs.exportLeads.mutate({ campaignId: foreignCampaign.id }), "NOT_FOUND");
    await expectCode(client(a.admin.token).jobs.exportLeads.mutate({ status: "archived" as never }), "VALIDATION_FAILED");
  });
});

describe("uploaded import files", () => {
  it("are deleted from R2 by the hourly pruning once older than their retention, and nothing else is", async () => {
    const tenant = await createTenant();
    const imported = await client(tenant.admin.token).jobs.importLeads.mutate({ fileName: "old.csv", csv: "email\nold@example.test" });
    const key = String((imported.payload as { storageKey: string }).storageKey);
    expect(key).toMatch(new RegExp(`^imports/${tenant.id}/`));
    const exportKey = `exports/${tenant.id}/${crypto.randomUUID()}.csv`;
    await env.CONTENT_BUCKET.put(exportKey, "id\n");
    const task = cronTasks.pruning.find((t) => t.name === "jobs.pruneImports");
    expect(task, "the pruning trigger runs jobs.pruneImports").toBeDefined();

    const day = 86_400_000;
    // Within its retention the file stays; past it, it goes, and an export file of the same age is not this rule's.
    expect(await pruneFilesOlderThan(env.CONTENT_BUCKET, "imports/", jobsConfig.import.keptDays, Date.now() + (jobsConfig.import.keptDays - 1) * day)).toBe(0);
    expect(await env.CONTENT_BUCKET.head(key)).not.toBeNull();
    expect(await pruneFilesOlderThan(env.CONTENT_BUCKET, "imports/", jobsConfig.import.keptDays, Date.now() + (jobsConfig.import.keptDays + 1) * day)).toBeGreaterThanOrEqual(1);
    expect(await env.CONTENT_BUCKET.head(key)).toBeNull();
    expect(await env.CONTENT_BUCKET.head(exportKey)).not.toBeNull();
    await env.CONTENT_BUCKET.delete(exportKey);
  });
});
