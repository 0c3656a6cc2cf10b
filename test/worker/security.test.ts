// The shared security suite: walks every procedure of the app router, so a new procedure is covered without a hand-kept list.
import { createTRPCUntypedClient, httpLink, TRPCClientError } from "@trpc/client";
import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { appRouter } from "../../src/root";
import { adminProcedure, authedProcedure, operatorProcedure } from "../../src/platform/trpc";
import { createTenant, oltpSql, type TestTenant } from "../support/factories";
import { buildEstate, type Estate } from "../support/oltp";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { mintToken } from "../support/tokens";
import { origin, trpcClient } from "../support/worker";

interface ProcedureDef {
  _def: { type: "query" | "mutation" | "subscription"; middlewares: unknown[] };
}
const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, ProcedureDef>).sort(([a], [b]) => a.localeCompare(b));

/** Role guards are recognised by identity: the middleware each procedure builder adds last. */
const guardOf = (builder: unknown) => (builder as ProcedureDef)._def.middlewares.at(-1);
const guards = { authed: guardOf(authedProcedure), admin: guardOf(adminProcedure), operator: guardOf(operatorProcedure) };
const has = (procedure: ProcedureDef, guard: unknown) => procedure._def.middlewares.includes(guard);

/** Procedures anyone may call. Adding one here is a deliberate, reviewed decision. */
const publicProcedures = new Set<string>(["users.acceptInvitation"]);

/** Areas the issue reserves for tenant admins: a procedure here without the admin guard fails the suite. */
const adminAreas = [/^apiKeys\./, /^users\.(add|setRole|remove)$/, /^domains\.(add|remove)$/, /^mailboxes\.(add|update|remove)$/, /^tenants\.(rename|billing)$/];

function untypedClient(token?: string) {
  return createTRPCUntypedClient({
    links: [
      httpLink({
        url: `${origin}/trpc`,
        fetch: (url, init) => exports.default.fetch(new Request(url, init as RequestInit)),
        headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
      }),
    ],
  });
}

type Outcome = { ok: true; data: unknown } | { ok: false; code: string; httpStatus: number; body: string };

const procedureOf = (path: string) => appRouter._def.procedures[path as keyof typeof appRouter._def.procedures] as unknown as ProcedureDef;

async function call(token: string | undefined, path: string, input: unknown): Promise<Outcome> {
  const procedure = appRouter._def.procedures[path as keyof typeof appRouter._def.procedures] as unknown as ProcedureDef;
  const client = untypedClient(token);
  try {
    const data = procedure._def.type === "query" ? await client.query(path, input) : await client.mutation(path, input);
    return { ok: true, data };
  } catch (error) {
    if (!(error instanceof TRPCClientError)) throw error;
    const data = error.data as { code: string; httpStatus: number };
    return { ok: false, code: data.code, httpStatus: data.httpStatus, body: JSON.stringify(error.shape ?? error.message) };
  }
}

describe("the security suite sees every procedure", () => {
  it("enumerates the app router, OLTP areas included", () => {
    const paths = procedures.map(([path]) => path);
    for (const expected of ["leads.list", "campaigns.transition", "apiKeys.create", "emails.recordEvent"]) expect(paths).toContain(expected);
  });

  it("every procedure needs a caller unless it is declared public", () => {
    const open = procedures.filter(([path, p]) => !has(p, guards.authed) && !publicProcedures.has(path)).map(([path]) => path);
    expect(open).toEqual([]);
  });

  it("every procedure in an admin-only area carries the admin guard", () => {
    const unguarded = procedures
      .filter(([path, p]) => adminAreas.some((area) => area.test(path)) && !has(p, guards.admin))
      .map(([path]) => path);
    expect(unguarded).toEqual([]);
  });
});

describe.each(procedures)("%s", (path, procedure) => {
  const adminOnly = has(procedure, guards.admin);
  const operatorOnly = has(procedure, guards.operator);
  let tenant: TestTenant;
  beforeAll(async () => {
    tenant = await createTenant();
  });

  if (!publicProcedures.has(path)) it("answers 401 without a token and with a forged one", async () => {
    const missing = await call(undefined, path, {});
    expect(missing).toMatchObject({ ok: false, httpStatus: 401, code: "AUTH_TOKEN_MISSING" });
    const forged = await mintToken({ sub: tenant.admin.id, tenant_id: tenant.id, role: "admin" }, { secret: "x".repeat(40) });
    expect(await call(forged, path, {})).toMatchObject({ ok: false, httpStatus: 401, code: "AUTH_TOKEN_INVALID" });
  });

  if (publicProcedures.has(path)) it("is public: answers without a token, and never with 401 or a 5xx", async () => {
    const outcome = await call(undefined, path, {});
    expect(outcome.ok || (outcome.httpStatus !== 401 && outcome.httpStatus < 500), JSON.stringify(outcome)).toBe(true);
  });

  if (adminOnly || operatorOnly) it("answers 403 to a member", async () => {
    expect(await call(tenant.member.token, path, {})).toMatchObject({ ok: false, httpStatus: 403, code: "FORBIDDEN" });
  });

  if (operatorOnly) it("answers 403 to a tenant admin", async () => {
    expect(await call(tenant.admin.token, path, {})).toMatchObject({ ok: false, httpStatus: 403, code: "FORBIDDEN" });
  });
});

type Expectation = "NOT_FOUND" | "LINK_INVALID" | "own";
interface Probe {
  input: (b: Estate, a: Estate) => unknown;
  expect: Expectation;
  /** Extra proof beyond "no foreign id in the answer", e.g. that B's row is unchanged. */
  check?: (data: unknown, b: Estate, a: Estate) => void | Promise<void>;
}

/** A list answer holds rows of the caller's tenant only. */
const expectOnly = (page: unknown, tenant: Estate) => {
  const items = (page as { items: Array<{ tenantId: string }> }).items;
  expect(items.length).toBeGreaterThan(0);
  expect(new Set(items.map((i) => i.tenantId))).toEqual(new Set([tenant.tenant.id]));
};

const step = (label: string) => ({ delayHours: 0, variants: [{ label, subject: "x", bodyStorageKey: "k", weight: 1 }] });

/**
 * Tenant A (as its admin) aims each OLTP procedure at tenant B's ids. A procedure of these areas
 * without a probe fails the suite; procedures of other tiers get the generic probe below.
 */
const probes: Record<string, Probe[]> = {
  "tenants.current": [{ input: () => undefined, expect: "own", check: (d, _b, a) => expect((d as { id: string }).id).toBe(a.tenant.id) }],
  "tenants.rename": [{ input: () => ({ name: "Renamed A" }), expect: "own" }],
  "tenants.setProductEvents": [{ input: () => ({ optOut: false }), expect: "own" }],
  "tenants.billing": [{ input: () => undefined, expect: "own" }],
  "users.me": [{ input: () => undefined, expect: "own" }],
  "users.list": [{ input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) }],
  "users.add": [{ input: (b) => ({ email: `x${b.leadEmail}` }), expect: "own" }],
  "users.setRole": [{ input: (b) => ({ id: b.extraUserId, role: "admin" }), expect: "NOT_FOUND" }],
  "users.remove": [{ input: (b) => ({ id: b.extraUserId }), expect: "NOT_FOUND" }],
  "apiKeys.list": [{ input: () => ({ includeRevoked: true, limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) }],
  "apiKeys.create": [{ input: () => ({ name: "A key" }), expect: "own" }],
  "users.invite": [{ input: () => ({ email: `invitee-${crypto.randomUUID().slice(0, 8)}@example.test` }), expect: "own" }],
  "users.invitations": [{ input: () => undefined, expect: "own" }],
  // B's token would make the caller a member of B, by design: the token is the credential. A forged one finds nothing.
  "users.acceptInvitation": [{ input: () => ({ token: "f".repeat(43) }), expect: "LINK_INVALID" }],
  "apiKeys.revoke": [{ input: (b) => ({ id: b.apiKeyId }), expect: "NOT_FOUND" }],
  "domains.list": [{ input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) }],
  "domains.get": [{ input: (b) => ({ id: b.domainId }), expect: "NOT_FOUND" }],
  "domains.add": [{ input: (b) => ({ name: b.domainName }), expect: "own" }],
  "domains.remove": [{ input: (b) => ({ id: b.domainId }), expect: "NOT_FOUND" }],
  "domains.verify": [{ input: (b) => ({ id: b.domainId }), expect: "NOT_FOUND" }],
  // The list is keyed by address: B's address given to A's procedures acts on A's own list only.
  "suppressions.list": [
    {
      input: () => ({ limit: 100 }),
      expect: "own",
      check: (d, b, a) => {
        const addresses = (d as { items: Array<{ address: string | null }> }).items.map((i) => i.address);
        expect(addresses).toContain(a.suppressedAddress);
        expect(addresses).not.toContain(b.suppressedAddress);
      },
    },
  ],
  "suppressions.add": [{ input: (b) => ({ address: b.leadEmail }), expect: "own" }],
  "suppressions.remove": [{ input: (b) => ({ address: b.suppressedAddress }), expect: "own", check: (d) => expect(d).toEqual({ removed: false }) }],
  "mailboxes.list": [
    { input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) },
    { input: (b) => ({ domainId: b.domainId }), expect: "own", check: (d) => expect((d as { items: unknown[] }).items).toEqual([]) },
  ],
  "mailboxes.get": [{ input: (b) => ({ id: b.mailboxId }), expect: "NOT_FOUND" }],
  "mailboxes.add": [{ input: (b) => ({ domainId: b.domainId, address: `new@${b.domainName}` }), expect: "NOT_FOUND" }],
  "mailboxes.update": [{ input: (b) => ({ id: b.mailboxId, status: "paused" }), expect: "NOT_FOUND" }],
  "mailboxes.remove": [{ input: (b) => ({ id: b.mailboxId }), expect: "NOT_FOUND" }],
  "campaigns.list": [{ input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) }],
  "campaigns.get": [{ input: (b) => ({ id: b.campaignId }), expect: "NOT_FOUND" }],
  "campaigns.create": [{ input: () => ({ name: "A campaign" }), expect: "own" }],
  "campaigns.update": [{ input: (b) => ({ id: b.campaignId, name: "pwned" }), expect: "NOT_FOUND" }],
  "campaigns.transition": [{ input: (b) => ({ id: b.campaignId, action: "start" }), expect: "NOT_FOUND" }],
  "campaigns.setSteps": [{ input: (b) => ({ id: b.campaignId, steps: [step("Z")] }), expect: "NOT_FOUND" }],
  "campaigns.enrolLeads": [
    { input: (b, a) => ({ id: b.campaignId, leadIds: [a.leadId] }), expect: "NOT_FOUND" },
    { input: (b, a) => ({ id: a.campaignId, leadIds: [b.leadId] }), expect: "own", check: (d) => expect(d).toEqual({ enrolled: 0, skipped: 1 }) },
  ],
  "campaigns.setMailboxes": [
    { input: (b) => ({ id: b.campaignId, mailboxIds: [b.mailboxId] }), expect: "NOT_FOUND" },
    { input: (b, a) => ({ id: a.campaignId, mailboxIds: [b.mailboxId] }), expect: "NOT_FOUND" },
  ],
  "campaigns.removeLeads": [{ input: (b) => ({ id: b.campaignId, leadIds: [b.leadId] }), expect: "own", check: (d) => expect(d).toEqual({ removed: 0 }) }],
  "campaigns.preview": [
    { input: (b) => ({ campaignId: b.campaignId, leadId: b.leadId, step: 0 }), expect: "NOT_FOUND" },
    { input: (b, a) => ({ campaignId: a.campaignId, leadId: b.leadId, step: 0 }), expect: "NOT_FOUND" },
  ],
  "leads.list": [
    { input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) },
    { input: (b) => ({ campaignId: b.campaignId }), expect: "own", check: (d) => expect((d as { items: unknown[] }).items).toEqual([]) },
    { input: () => ({ search: "Secret" }), expect: "own", check: (d, _b, a) => expectOnly(d, a) },
  ],
  "leads.count": [
    { input: (b) => ({ campaignId: b.campaignId }), expect: "own", check: (d) => expect(d).toEqual({ count: 0 }) },
    { input: () => ({ search: "Secret" }), expect: "own", check: (d) => expect((d as { count: number }).count).toBeGreaterThan(0) },
  ],
  "leads.get": [{ input: (b) => ({ id: b.leadId }), expect: "NOT_FOUND" }],
  "leads.create": [{ input: (b) => ({ email: b.leadEmail }), expect: "own" }],
  "leads.upsert": [
    { input: (b) => ({ email: `u${b.leadEmail}`, company: "Mine" }), expect: "own", check: (d, _b, a) => expect(d).toMatchObject({ tenantId: a.tenant.id }) },
  ],
  "leads.bulkUpsert": [{ input: (b) => ({ leads: [{ email: `bulk${b.leadEmail}`, company: "Mine" }] }), expect: "own" }],
  "leads.update": [{ input: (b) => ({ id: b.leadId, company: "pwned" }), expect: "NOT_FOUND" }],
  "leads.bulkDelete": [{ input: (b) => ({ ids: [b.leadId] }), expect: "own", check: (d) => expect(d).toEqual({ deleted: 0 }) }],
  "emails.list": [
    { input: () => ({ limit: 100 }), expect: "own", check: (d, _b, a) => expectOnly(d, a) },
    { input: (b) => ({ leadId: b.leadId }), expect: "own", check: (d) => expect((d as { items: unknown[] }).items).toEqual([]) },
  ],
  "emails.get": [{ input: (b) => ({ id: b.emailId }), expect: "NOT_FOUND" }],
  "emails.create": [
    { input: (b, a) => ({ leadId: b.leadId, mailboxId: a.mailboxId, subject: "s", contentStorageKey: "k" }), expect: "NOT_FOUND" },
    { input: (b, a) => ({ leadId: a.leadId, mailboxId: b.mailboxId, subject: "s", contentStorageKey: "k" }), expect: "NOT_FOUND" },
  ],
  "emails.recordEvent": [{ input: (b) => ({ emailId: b.emailId, type: "bounced" }), expect: "NOT_FOUND" }],
  "emails.delete": [{ input: (b) => ({ id: b.emailId }), expect: "NOT_FOUND" }],
  // Not an OLTP area, but its generic probe ({}) started a real export whose queue deliveries (low queue, batched)
  // landed in later probes' round-trip counts; tenant B's campaign is the sharper probe anyway.
  "jobs.exportLeads": [{ input: (b) => ({ campaignId: b.campaignId }), expect: "NOT_FOUND" }],
};

/**
 * Admin mutations record audit jobs (and some probes start others) whose queue deliveries come seconds later and
 * cost OLTP round trips of their own; a probe's count starts once the jobs due by now have run (at most 10 s).
 */
async function jobsSettled(): Promise<void> {
  const sql = oltpSql();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [, rows = []] = await sql.transaction([
      sql`select set_config('app.current_role', 'system', true)`,
      sql`select count(*)::int as n from jobs where status in ('pending', 'running') and created_at > now() - interval '60 seconds'
            and scheduled_at <= now()`,
    ]);
    if (Number(rows[0]?.n ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const oltpAreas = ["tenants", "users", "apiKeys", "domains", "mailboxes", "campaigns", "leads", "emails", "suppressions"];
const isOltp = (path: string) => oltpAreas.includes(path.split(".")[0]!);

describe("tenant isolation, procedure by procedure", () => {
  let a: Estate;
  let b: Estate;
  let foreignIds: string[];
  beforeAll(async () => {
    [a, b] = await Promise.all([buildEstate(), buildEstate()]);
    // The estates' audited actions run as RECORD_AUDIT jobs (OLTP ledger) on the normal queue, delivered in a batch
    // up to its 5 s batch timeout later: let them finish, so the probes' one-round-trip counts see only the probe.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    foreignIds = [b.tenant.id, b.tenant.admin.id, b.tenant.member.id, b.leadId, b.campaignId, b.stepId, b.domainId, b.mailboxId, b.emailId, b.apiKeyId, b.extraUserId];
  });

  it("every OLTP procedure has an isolation probe", () => {
    // Operator procedures act across tenants by design; the role tests above keep tenant callers out of them.
    const missing = procedures.map(([path, p]) => [path, p] as const).filter(([path, p]) => isOltp(path) && !probes[path] && !has(p, guards.operator)).map(([path]) => path);
    expect(missing).toEqual([]);
  });

  const leaks = (outcome: Outcome) => {
    const text = outcome.ok ? JSON.stringify(outcome.data) : outcome.body;
    return foreignIds.filter((id) => text.includes(id));
  };

  describe.each(procedures)("%s", (path) => {
    const cases = probes[path] ?? [];
    if (cases.length > 0) it.each(cases.map((probe, i) => [i, probe] as const))("probe %i: tenant B's ids are not found, nothing of B leaks, one round trip", async (_i, probe) => {
      const input = probe.input(b, a);
      await jobsSettled();
      // Warm the caller's access cache (a change in an earlier probe moved A's epoch): the probe measures the procedure.
      await call(a.tenant.admin.token, "tenants.current", undefined);
      await resetRoundTrips();
      const outcome = await call(a.tenant.admin.token, path, input);
      // Every OLTP procedure, read or write, found or not, costs exactly one round trip.
      expect((await postgresRoundTrips()).oltp ?? 0).toBe(1);
      expect(leaks(outcome)).toEqual([]);
      if (probe.expect === "NOT_FOUND") {
        expect(outcome).toMatchObject({ ok: false, code: "NOT_FOUND", httpStatus: 404 });
      } else if (probe.expect === "LINK_INVALID") {
        expect(outcome).toMatchObject({ ok: false, code: "LINK_INVALID", httpStatus: 403 });
      } else {
        expect(outcome, JSON.stringify(outcome)).toMatchObject({ ok: true });
        await probe.check?.((outcome as { data: unknown }).data, b, a);
      }
    });

    if (isOltp(path) && cases.length === 0 && has(procedureOf(path), guards.operator)) it("operator procedure: tenant A's admin is refused, nothing of B leaks", async () => {
      const outcome = await call(a.tenant.admin.token, path, { id: b.tenant.id });
      expect(outcome).toMatchObject({ ok: false, code: "FORBIDDEN", httpStatus: 403 });
      expect(leaks(outcome)).toEqual([]);
    });

    if (!isOltp(path) && cases.length === 0) it("generic probe: a tenant admin's call answers no 5xx and nothing of another tenant", async () => {
      const outcome = await call(a.tenant.admin.token, path, {});
      expect(outcome.ok || outcome.httpStatus < 500, JSON.stringify(outcome)).toBe(true);
      expect(leaks(outcome)).toEqual([]);
    });
  });

  it("after every probe, tenant B's estate is intact", async () => {
    const client = trpcClient(b.tenant.admin.token, { batch: false });
    expect((await client.tenants.current.query()).name).not.toBe("Renamed A");
    expect(await client.leads.get.query({ id: b.leadId })).toMatchObject({ company: "Secret Co" });
    const campaign = await client.campaigns.get.query({ id: b.campaignId });
    expect(campaign).toMatchObject({ status: "paused", enrolledLeads: 1, progress: { leads: { total: 1, stopped: 0 } } });
    expect(campaign.steps.map((s) => s.id)).toEqual([b.stepId]);
    expect((await client.mailboxes.get.query({ id: b.mailboxId })).status).toBe("active");
    expect((await client.domains.get.query({ id: b.domainId })).id).toBe(b.domainId);
    expect((await client.emails.get.query({ id: b.emailId })).status).toBe("queued");
    expect((await client.users.list.query({ limit: 100 })).items.map((u) => u.id)).toContain(b.extraUserId);
    expect((await trpcClient(b.apiKey).tenants.current.query()).id).toBe(b.tenant.id);
    expect((await client.leads.list.query({ limit: 100 })).items.map((l) => l.id)).toEqual([b.leadId]);
  });
});
