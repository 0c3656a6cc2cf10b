// The out-of-band component (issue 20): traces over OTLP, the log sink, system events mirrored and kept while the
// notifications database is down, and sinks that fail alone. Everything goes to the local telemetry stand-in
// (scripts/stack/telemetry-endpoint.ts) the way it would go to a real collector, drain and capture host.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/platform/clock";
import { parseEnv } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { createServices } from "../../src/platform/services";
import { wired } from "../../src/root";
import { createWorker } from "../../src/index";
import { clockedWorker, settableClock } from "../support/clock";
import { createTenant } from "../support/factories";
import { verifiedDomain } from "../support/dns";
import { fakeEmail } from "../support/oltp";
import { queueNames } from "../support/runtime";
import { setDatabaseFault } from "../support/stack";
import { asSystem } from "../support/notifications";
import { origin } from "../support/worker";

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  status: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
}

const control = (path: string, init?: RequestInit) => fetch(`${env.TEST_TELEMETRY_CONTROL_URL}${path}`, init);
const received = async <T>(sink: "traces" | "logs" | "capture") => (await (await control(`/${sink}`)).json()) as T[];
const setSinkMode = (sink: "traces" | "logs" | "capture", mode: "ok" | "fail" | "hang") =>
  control("/mode", { method: "POST", body: JSON.stringify({ sink, mode }) });

afterEach(async () => {
  await Promise.all([setSinkMode("traces", "ok"), setSinkMode("logs", "ok"), setSinkMode("capture", "ok")]);
  await setDatabaseFault("notifications", "none");
});

describe("traces", () => {
  it("follow one emails.create with a body through R2, OLTP and the queue to its INDEX_CONTENT and SEND_EMAIL attempts", async () => {
    const w = clockedWorker(systemClock, { OTEL_EXPORTER_URL: env.TEST_OTEL_EXPORTER_URL, OTEL_SAMPLE_RATIO: "1" });
    const tenant = await createTenant();
    const admin = w.client(tenant.admin.token);
    const domain = await admin.domains.add.mutate({ name: `trace-${crypto.randomUUID().slice(0, 8)}.example.com` });
    const mailbox = await admin.mailboxes.add.mutate({ domainId: domain.id, address: `sales@${domain.name}` });
    const lead = await admin.leads.create.mutate({ email: fakeEmail() });
    const email = await admin.emails.create.mutate({
      leadId: lead.id,
      mailboxId: mailbox.id,
      subject: "Traced",
      body: { text: "Hello from a traced request", html: "<p>Hello from a traced request</p>", headers: {} },
    });
    await w.deliver("JOBS_HIGH", queueNames.high);
    await w.deliver("JOBS_NORMAL", queueNames.normal);

    const spans = await received<Span>("traces");
    const sendAttempt = spans.find((s) => s.name === "job SEND_EMAIL" && s.attributes["edp.job.id"] === email.id);
    expect(sendAttempt, "the SEND_EMAIL attempt's span reached the OTLP endpoint").toBeDefined();
    const trace = spans.filter((s) => s.traceId === sendAttempt!.traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));

    // The request's own span is the trace's root: the job spans descend from it through the queue message.
    const root = trace.find((s) => s.parentSpanId === null);
    expect(root).toBeDefined();
    expect(root!.attributes["edp.request_id"]).toEqual(expect.any(String));
    const descendsFromRoot = (s: Span) => {
      for (let at: Span | undefined = s; at; at = at.parentSpanId ? byId.get(at.parentSpanId) : undefined) if (at === root) return true;
      return false;
    };
    const oltp = trace.filter((s) => s.name === "oltp round trip" && s.attributes["edp.tenant_id"] === tenant.id);
    expect(oltp.length).toBeGreaterThan(0);
    const shape = trace.map((s) => `${s.name} <- ${s.parentSpanId ? byId.get(s.parentSpanId)?.name : "root"}`);
    // The request's round trips carry its request id; the jobs' carry none (they are not a request).
    expect(oltp.filter((s) => !s.name.startsWith("job") && s.attributes["edp.request_id"] === root!.attributes["edp.request_id"]).length, shape.join("\n")).toBeGreaterThan(0);
    expect(trace.some((s) => s.name === "content put" && s.attributes["edp.tier"] === "content"), shape.join("\n")).toBe(true);
    expect(trace.some((s) => s.name === "queue send" && s.attributes["messaging.destination.name"] === queueNames.high), shape.join("\n")).toBe(true);
    const indexAttempt = trace.find((s) => s.name === "job INDEX_CONTENT" && s.attributes["edp.tenant_id"] === tenant.id);
    expect(indexAttempt, "the INDEX_CONTENT attempt joined the request's trace").toBeDefined();
    for (const attempt of [sendAttempt!, indexAttempt!]) {
      expect(descendsFromRoot(attempt), shape.join("\n")).toBe(true);
      // Linked to the queue batch it ran in, which is a trace of its own.
      expect(attempt.links.length).toBe(1);
      expect(attempt.links[0]!.traceId).not.toBe(attempt.traceId);
    }
    // The attempts' own round trips are their children.
    expect(trace.some((s) => s.name === "oltp round trip" && s.parentSpanId === sendAttempt!.spanId), shape.join("\n")).toBe(true);
  });
});

describe("system events", () => {
  it("are in the log sink at once, and with the notifications database down reach the incident board after recovery, once", async () => {
    const clock = settableClock(new Date());
    const w = clockedWorker(clock);
    const pending: Promise<unknown>[] = [];
    const services = createServices(
      {
        env: parseEnv({ ...env, JOBS_HIGH: w.held.JOBS_HIGH.binding, JOBS_NORMAL: w.held.JOBS_NORMAL.binding, JOBS_LOW: w.held.JOBS_LOW.binding }),
        requestId: crypto.randomUUID(),
        logger: createLogger("error"),
        clock,
        waitUntil: (p) => void pending.push(p),
      },
      wired,
    );
    const dedupKey = `tier.down:${crypto.randomUUID()}`;
    await setDatabaseFault("notifications", "down");
    await services.systemEvents.raise({ eventType: "tier.down", severity: "critical", description: "OLAP unreachable", dedupKey, tenantId: null });
    await Promise.all(pending);

    const logged = (await received<Record<string, unknown>>("logs")).filter((r) => r.dedupKey === dedupKey);
    expect(logged).toEqual([expect.objectContaining({ category: "system_event", severity: "critical", eventType: "tier.down", service: "edge-data-platform" })]);

    const onBoard = async () => {
      const [rows] = await asSystem((sql) => [sql`select occurrences from admin_system_events where dedup_key = ${dedupKey}`]);
      return rows as Array<{ occurrences: number }>;
    };
    // Still down: the queued event's attempt fails and the queue keeps it for after its backoff.
    expect(await w.deliver("JOBS_NORMAL", queueNames.normal)).toBe(1);
    await setDatabaseFault("notifications", "none");
    expect(await onBoard()).toEqual([]);
    clock.advance(3600_000);
    expect(await w.deliver("JOBS_NORMAL", queueNames.normal)).toBe(1);
    expect(await onBoard()).toEqual([{ occurrences: 1 }]);
    clock.advance(3600_000);
    expect(await w.deliver("JOBS_NORMAL", queueNames.normal)).toBe(0);
    expect(await onBoard()).toEqual([{ occurrences: 1 }]);
  });
});

describe("sinks that fail alone", () => {
  it("a down or hung OTLP endpoint and log drain change nothing for callers, and what they lose is counted", { timeout: 120_000 }, async () => {
    const tenant = await createTenant();
    const worker = createWorker(systemClock);
    const tracedEnv = { ...env, OTEL_EXPORTER_URL: env.TEST_OTEL_EXPORTER_URL, TELEMETRY_TIMEOUT_MS: "100" };
    const leadList = () => new Request(`${origin}/trpc/leads.list`, { headers: { authorization: `Bearer ${tenant.admin.token}` } });
    /** One lead list, timed up to its response; the export after it runs in waitUntil and is awaited untimed. */
    const timedCall = async () => {
      const ctx = createExecutionContext();
      const started = performance.now();
      const response = await worker.fetch(leadList(), tracedEnv, ctx);
      const elapsed = performance.now() - started;
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      await waitOnExecutionContext(ctx);
      return elapsed;
    };
    const health = async () => {
      const response = await worker.fetch(new Request(`${origin}/health`), tracedEnv, createExecutionContext());
      return (await response.json()) as { telemetry: { traces: { dropped: number }; log: { dropped: number } } };
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (let i = 0; i < 3; i++) await timedCall(); // the tracing library initialises on first use
    const droppedBefore = (await health()).telemetry.traces.dropped;
    const pairs = 15;
    for (const mode of ["fail", "hang"] as const) {
      // Healthy and faulty calls alternate and are compared pair by pair, so the machine's load weighs on both alike.
      const differences: number[] = [];
      for (let i = 0; i < pairs; i++) {
        await Promise.all([setSinkMode("traces", "ok"), setSinkMode("logs", "ok")]);
        const healthy = await timedCall();
        await Promise.all([setSinkMode("traces", mode), setSinkMode("logs", mode)]);
        differences.push((await timedCall()) - healthy);
      }
      expect(median(differences), `p50 of (faulty - healthy) with the sinks ${mode === "fail" ? "down" : "hung"}, ms`).toBeLessThan(2);
    }
    expect((await health()).telemetry.traces.dropped).toBeGreaterThanOrEqual(droppedBefore + 2 * pairs);

    // Structurally: with the endpoint hung for longer than the test waits, the response is already there while its
    // export is still pending in waitUntil.
    const patient = { ...tracedEnv, TELEMETRY_TIMEOUT_MS: "5000" };
    await setSinkMode("traces", "hang");
    const ctx = createExecutionContext();
    const response = await worker.fetch(leadList(), patient, ctx);
    expect(response.status).toBe(200);
    const settled = await Promise.race([waitOnExecutionContext(ctx).then(() => "exported"), new Promise((r) => setTimeout(() => r("still pending"), 500))]);
    expect(settled).toBe("still pending");
    await setSinkMode("traces", "ok"); // releases the hung export
    await waitOnExecutionContext(ctx);
  });
});

describe("the security and forensic log, content access and product events", () => {
  it("files refusals and content reads in the log sink, answers content.accessLog from OLAP, and sends product events without addresses", async () => {
    const w = clockedWorker(systemClock);
    const tenant = await createTenant();
    const admin = w.client(tenant.admin.token);
    const member = w.client(tenant.member.token);
    // A verified domain (the local DNS-over-HTTPS endpoint answers for it), so SEND_EMAIL sends.
    const domain = await verifiedDomain(admin, `forensic-${crypto.randomUUID().slice(0, 8)}.example.com`);
    const mailbox = await admin.mailboxes.add.mutate({ domainId: domain.id, address: `sales@${domain.name}` });
    const address = fakeEmail();
    const lead = await admin.leads.create.mutate({ email: address });
    const email = await admin.emails.create.mutate({
      leadId: lead.id,
      mailboxId: mailbox.id,
      subject: "Read me",
      body: { text: "Who reads this?", html: "<p>Who reads this?</p>", headers: {} },
    });

    // A member asking for an admin's list is refused, and the refusal is on record with who and what.
    await expect(member.apiKeys.list.query({})).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });
    // A forged token is an authentication failure.
    await expect(w.client(`${tenant.member.token}x`).leads.list.query({})).rejects.toMatchObject({ data: { httpStatus: 401 } });
    await member.content.get.query({ emailId: email.id });

    const logs = (await received<Record<string, unknown>>("logs")).filter((r) => r.tenantId === tenant.id || r.path === "leads.list");
    expect(logs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ category: "permission_refused", path: "apiKeys.list", userId: tenant.member.id, code: "FORBIDDEN" }),
        expect.objectContaining({ category: "content_access", emailId: email.id, userId: tenant.member.id, route: "content.get" }),
      ]),
    );
    expect((await received<Record<string, unknown>>("logs")).some((r) => r.category === "auth_failure" && r.path === "leads.list")).toBe(true);

    // The reads reach OLAP's audit data through the queue; the admin asks who read the email.
    await w.deliver("JOBS_NORMAL", queueNames.normal);
    const accessLog = await admin.content.accessLog.query({ emailId: email.id });
    expect(accessLog.items.map((e) => [e.actor.id, e.details.route])).toEqual([[tenant.member.id, "content.get"]]);
    // Members may not ask.
    await expect(member.content.accessLog.query({ emailId: email.id })).rejects.toMatchObject({ data: { code: "FORBIDDEN" } });

    // The send is a product fact: sent to the capture sink with the tenant, and no address anywhere in it.
    await w.deliver("JOBS_HIGH", queueNames.high);
    const events = (await received<{ event: string; properties: Record<string, unknown>; api_key: string }>("capture")).filter(
      (e) => e.properties.tenant_id === tenant.id,
    );
    expect(events.map((e) => e.event)).toContain("email sent");
    expect(events.every((e) => e.api_key === "phc_local")).toBe(true);
    expect(JSON.stringify(events)).not.toContain(address);
    expect(JSON.stringify(events)).not.toContain("@");
  });
});
