// Counts a tenant's ledger jobs from zero: its tenants are bare (createBareTenant), with no provisioning history.
import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { jobRuntimeConfig } from "../../src/platform/jobs/config";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import worker from "../../src/index";
import { schedules } from "../support/runtime";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { queueNames } from "../support/runtime";
import { prepareJobs } from "../support/runtime";
import { createBareTenant, oltpSql, type TestTenant } from "../support/factories";
import { backdateJob, commitJobsWithoutSending, deliver, dueInSeconds, ledgerRow, waitFor } from "../support/jobs";
import { operator, type Caller } from "../support/notifications";
import { postgresRoundTrips, resetRoundTrips, setDatabaseFault } from "../support/stack";
import { trpcClient } from "../support/worker";

const jobs = (token: string) => trpcClient(token, { batch: false }).jobs;

describe("jobs tier", () => {
  let a: TestTenant;
  let b: TestTenant;
  let staff: Caller;
  beforeAll(async () => {
    [a, b, staff] = await Promise.all([createBareTenant(), createBareTenant(), operator()]);
  });

  it("bad payloads are refused at enqueue with each offending field named, and nothing is written", async () => {
    expect(() => prepareJobs(a.id, [{ type: "IMPORT_LEADS", payload: { storageKey: "", fileName: "x.csv" } }])).toThrowError(
      expect.objectContaining({
        code: "VALIDATION_FAILED",
        details: expect.arrayContaining([
          expect.objectContaining({ path: "0.payload.storageKey" }),
          expect.objectContaining({ path: "0.payload.requestedBy" }),
        ]),
      }),
    );
    expect(() => prepareJobs(a.id, [{ type: "NOOP", payload: { extra: true } }])).toThrowError(expect.objectContaining({ code: "VALIDATION_FAILED" }));
    expect(() => prepareJobs(a.id, [{ type: "SEND_NOTIFICATION", payload: {} }])).toThrowError(
      expect.objectContaining({ code: "VALIDATION_FAILED" }),
    );
    await expect(jobs(a.admin.token).importLeads.mutate({ fileName: "", csv: "" })).rejects.toMatchObject({
      data: { code: "VALIDATION_FAILED", httpStatus: 400 },
    });
    await expect(jobs(a.member.token).importLeads.mutate({ fileName: "x.csv", csv: "email\n" })).rejects.toMatchObject({
      data: { code: "FORBIDDEN" },
    });
    expect((await jobs(a.admin.token).list.query({})).items).toEqual([]);
  });

  it("an import reports progress, imports the good rows and lists every bad row with its line number", async () => {
    const csv = [
      "Email,First Name,Company,Plan",
      "ada@example.test,Ada,Analytical,gold",
      "not-an-email,Bob,,",
      "GRACE@example.test,Grace,Navy,",
      "",
      ",Nobody,,",
      "ada@example.test,,Engines,platinum",
    ].join("\n");
    const job = await jobs(a.admin.token).importLeads.mutate({ fileName: "leads.csv", csv });
    expect(job).toMatchObject({ type: "IMPORT_LEADS", status: "pending", priority: "low" });
    await deliver(queueNames.low, [{ jobId: job.id, type: "IMPORT_LEADS", tenantId: a.id, payload: {}, enqueuedAt: new Date().toISOString() }]);
    const done = await jobs(a.admin.token).get.query({ id: job.id });
    expect(done.status).toBe("succeeded");
    // ada@ twice is one lead: imported counts leads written (issue 18), the repeat is a duplicate.
    expect(done.progress).toEqual({
      rowsTotal: 5,
      rowsDone: 5,
      imported: 2,
      created: 2,
      updated: 0,
      duplicate: 1,
      invalid: 2,
      errorCount: 2,
      rowErrors: [
        { line: 3, message: "email is not a valid email address" },
        { line: 6, message: "email is not a valid email address" },
      ],
    });
    const leads = await trpcClient(a.admin.token, { batch: false }).leads.list.query({ limit: 10 });
    const byEmail = Object.fromEntries(leads.items.map((l) => [l.email, l]));
    expect(Object.keys(byEmail).sort()).toEqual(["ada@example.test", "grace@example.test"]);
    expect(byEmail["ada@example.test"]).toMatchObject({ firstName: "Ada", company: "Engines", customFields: { plan: "platinum" } });
    // Another tenant's job id is NOT_FOUND.
    await expect(jobs(b.admin.token).get.query({ id: job.id })).rejects.toMatchObject({ data: { code: "NOT_FOUND" } });
  });

  it("a large import completes across several deliveries, resuming where the last one stopped", async () => {
    // Each delivery stops after one chunk here (no time to continue in it), as one whose time ran out does.
    const within = jobRuntimeConfig.continueWithinSeconds;
    jobRuntimeConfig.continueWithinSeconds = 0;
    onTestFinished(() => {
      jobRuntimeConfig.continueWithinSeconds = within;
    });
    const rows = jobsConfig.import.rowsPerInvocation + 1500;
    const lines = ["email,first_name"];
    for (let i = 0; i < rows; i++) lines.push(`bulk-${i}@example.test,Lead ${i}`);
    const job = await jobs(b.admin.token).importLeads.mutate({ fileName: "bulk.csv", csv: lines.join("\n") });
    const message = { jobId: job.id, type: "IMPORT_LEADS" as const, tenantId: b.id, payload: {}, enqueuedAt: new Date().toISOString() };
    await deliver(queueNames.low, [message]);
    const halfway = await jobs(b.admin.token).get.query({ id: job.id });
    expect(halfway).toMatchObject({ status: "pending", attempts: 0, progress: { rowsDone: jobsConfig.import.rowsPerInvocation, rowsTotal: rows } });
    await deliver(queueNames.low, [message]);
    const done = await jobs(b.admin.token).get.query({ id: job.id });
    expect(done).toMatchObject({ status: "succeeded", progress: { rowsDone: rows, imported: rows, errorCount: 0 } });
  }, 120_000);

  it("a batch of jobs costs two ledger round trips: one claim and one record of every outcome", async () => {
    const messages = await commitJobsWithoutSending(a.id, a.admin.id, Array.from({ length: 5 }, () => ({ type: "NOOP" as const, payload: {} })));
    await resetRoundTrips();
    expect(await deliver(queueNames.normal, messages)).toMatchObject({ acked: 5, retries: [] });
    expect(await postgresRoundTrips()).toMatchObject({ oltp: 2 });
    for (const message of messages) expect(await ledgerRow(message.jobId)).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("redelivering a succeeded job changes nothing", async () => {
    const [message] = await commitJobsWithoutSending(a.id, a.admin.id, [{ type: "NOOP", payload: {} }]);
    expect(await deliver(queueNames.normal, [message!])).toMatchObject({ acked: 1, retries: [] });
    const after = await ledgerRow(message!.jobId);
    expect(after).toMatchObject({ status: "succeeded", attempts: 1 });
    await resetRoundTrips();
    expect(await deliver(queueNames.normal, [message!, message!])).toMatchObject({ acked: 2, retries: [] });
    expect(Object.values(await postgresRoundTrips()).reduce((x, y) => x + y, 0)).toBe(1);
    expect(await ledgerRow(message!.jobId)).toEqual(after);
  });

  it("a failing job retries with growing backoff, then dies with its error kept and one system event; operators redrive it", async () => {
    const [message] = await commitJobsWithoutSending(a.id, a.admin.id, [
      { type: "IMPORT_LEADS", payload: { storageKey: "imports/missing.csv", fileName: "gone.csv", requestedBy: a.admin.id } },
    ]);
    const id = message!.jobId;
    for (let attempt = 1; attempt < 5; attempt++) {
      const { retries } = await deliver(queueNames.low, [message!], attempt);
      expect(retries).toHaveLength(1);
      expect(await dueInSeconds(id)).toBeGreaterThan(0);
      expect(await ledgerRow(id)).toMatchObject({ status: "pending", attempts: attempt, last_error: expect.stringContaining("not in storage") });
    }
    expect(await deliver(queueNames.low, [message!], 5)).toMatchObject({ acked: 1, retries: [] });
    expect(await ledgerRow(id)).toMatchObject({ status: "dead", attempts: 5, last_error: expect.stringContaining("not in storage") });

    // A second dead job of the same type counts as a repeat of the open incident.
    const [second] = await commitJobsWithoutSending(a.id, a.admin.id, [
      { type: "IMPORT_LEADS", payload: { storageKey: "imports/missing-2.csv", fileName: "gone.csv", requestedBy: a.admin.id } },
    ]);
    expect(await deliver(queueNames.dead, [second!])).toMatchObject({ acked: 1 });
    expect(await ledgerRow(second!.jobId)).toMatchObject({ status: "dead", last_error: "The queue's retries were exhausted" });
    const events = await trpcClient(a.admin.token, { batch: false }).admin.systemEvents.list.query({ eventType: "job_dead" });
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({ tenantId: a.id, occurrences: 2, dedupKey: "jobs.dead:IMPORT_LEADS" });

    const dead = await jobs(staff.token).listDead.query({ tenantId: a.id });
    expect(dead.items.map((j) => j.id).sort()).toEqual([id, second!.jobId].sort());
    await expect(jobs(a.admin.token).listDead.query({})).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    await expect(jobs(a.admin.token).redrive.mutate({ ids: [id] })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });

    const pendingId = (await commitJobsWithoutSending(a.id, a.admin.id, [{ type: "NOOP", payload: {} }]))[0]!.jobId;
    const result = await jobs(staff.token).redrive.mutate({ ids: [id, second!.jobId, pendingId] });
    expect(result).toEqual({ redriven: expect.arrayContaining([id, second!.jobId]), skipped: [pendingId] });
    expect(await ledgerRow(id)).toMatchObject({ status: "pending", attempts: 0 });
    const stats = await jobs(staff.token).stats.query();
    expect(stats.counts.find((c) => c.type === "IMPORT_LEADS" && c.status === "pending")?.count).toBeGreaterThanOrEqual(2);
  });

  it("while the ledger's database is down, deliveries are put back without using up attempts, and drain after", async () => {
    const [message] = await commitJobsWithoutSending(a.id, a.admin.id, [{ type: "NOOP", payload: {} }]);
    await setDatabaseFault("oltp", "down");
    try {
      expect(await deliver(queueNames.normal, [message!], 4)).toMatchObject({ acked: 1, retries: [] });
    } finally {
      await setDatabaseFault("oltp", "none");
    }
    expect(await ledgerRow(message!.jobId)).toMatchObject({ attempts: 0 });
    // The re-sent message is delivered by Miniflare once its backoff has passed.
    await waitFor(async () => ((await ledgerRow(message!.jobId))?.status === "succeeded" ? true : undefined), 60_000);
    expect(await ledgerRow(message!.jobId)).toMatchObject({ status: "succeeded", attempts: 1 });
  }, 90_000);

  it("a job committed but never sent is sent again by the relay and runs from its priority's queue", async () => {
    const [message] = await commitJobsWithoutSending(b.id, b.admin.id, [{ type: "NOOP", payload: {} }]);
    const controller = createScheduledController({ cron: schedules.aggregation, scheduledTime: new Date() });
    await worker.scheduled(controller, env, createExecutionContext());
    expect(await ledgerRow(message!.jobId)).toMatchObject({ status: "pending", attempts: 0 });
    await backdateJob(message!.jobId, jobRuntimeConfig.relay.graceSeconds + 1);
    await worker.scheduled(controller, env, createExecutionContext());
    const done = await waitFor(async () => {
      const row = await ledgerRow(message!.jobId);
      return row?.status === "succeeded" ? row : undefined;
    });
    expect(done).toMatchObject({ attempts: 1, priority: "normal", last_queue: queueNames.normal });
  });

  it("pruning deletes succeeded jobs after 7 days and keeps dead ones for 30", async () => {
    const [old, dead] = await commitJobsWithoutSending(b.id, b.admin.id, [
      { type: "NOOP", payload: {} },
      { type: "NOOP", payload: {} },
    ]);
    const sql = oltpSql();
    await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`update jobs set status = 'succeeded', completed_at = now() - interval '8 days' where id = ${old!.jobId}`,
      sql`update jobs set status = 'dead', completed_at = now() - interval '8 days' where id = ${dead!.jobId}`,
    ]);
    await worker.scheduled(createScheduledController({ cron: schedules.pruning, scheduledTime: new Date() }), env, createExecutionContext());
    expect(await ledgerRow(old!.jobId)).toBeUndefined();
    expect(await ledgerRow(dead!.jobId)).toMatchObject({ status: "dead" });
  });
});
