import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { expectCode, fakeEmail, rejection } from "../support/oltp";
import { postgresRoundTrips, resetRoundTrips } from "../support/stack";
import { trpcClient } from "../support/worker";

describe("leads", () => {
  it("creates a lead with its email lower-cased, and answers CONFLICT for the same email in any case", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token);
    const email = fakeEmail();
    const lead = await client.leads.create.mutate({ email: email.toUpperCase(), firstName: "Ada", customFields: { tier: "gold", seats: 12 } });
    expect(lead).toMatchObject({ email, firstName: "Ada", status: "new", customFields: { tier: "gold", seats: 12 }, tenantId: tenant.id });
    const duplicate = await rejection(client.leads.create.mutate({ email }));
    expect(duplicate).toMatchObject({ code: "CONFLICT", httpStatus: 409 });
  });

  it("rejects an invalid address, an unknown status and oversize custom fields with VALIDATION_FAILED", async () => {
    const client = trpcClient((await createTenant()).member.token);
    const invalid = await rejection(client.leads.create.mutate({ email: "not-an-address" }));
    expect(invalid).toMatchObject({ code: "VALIDATION_FAILED", httpStatus: 400 });
    expect(JSON.stringify(invalid.details)).toContain("email");
    await expectCode(client.leads.create.mutate({ email: fakeEmail(), status: "vip" as never }), "VALIDATION_FAILED");
    const fields = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`f${i}`, i]));
    await expectCode(client.leads.create.mutate({ email: fakeEmail(), customFields: fields }), "VALIDATION_FAILED");
  });

  it("upsert by email merges into the existing lead: sent fields replace, omitted fields and custom keys are kept", async () => {
    const client = trpcClient((await createTenant()).member.token);
    const email = fakeEmail();
    const first = await client.leads.upsert.mutate({ email, firstName: "Grace", company: "Navy", customFields: { a: 1 } });
    expect(first.created).toBe(true);
    const second = await client.leads.upsert.mutate({ email: email.toUpperCase(), lastName: "Hopper", customFields: { b: 2 } });
    expect(second).toMatchObject({ id: first.id, created: false, firstName: "Grace", lastName: "Hopper", company: "Navy", customFields: { a: 1, b: 2 } });
  });

  it("bulk upsert takes up to 1,000 leads in one round trip and refuses more, or the same email twice", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const existing = await client.leads.create.mutate({ email: fakeEmail() });
    const leads = [{ email: existing.email, company: "Merged" }, ...Array.from({ length: 999 }, () => ({ email: fakeEmail() }))];
    await resetRoundTrips();
    const result = await client.leads.bulkUpsert.mutate({ leads });
    expect((await postgresRoundTrips()).oltp).toBe(1);
    expect(result).toMatchObject({ created: 999, updated: 1 });
    expect(result.ids).toContain(existing.id);

    const tooMany = await rejection(client.leads.bulkUpsert.mutate({ leads: [...leads, { email: fakeEmail() }] }));
    expect(tooMany).toMatchObject({ code: "VALIDATION_FAILED", httpStatus: 400 });
    const twice = await rejection(client.leads.bulkUpsert.mutate({ leads: [{ email: "x@example.org" }, { email: "X@example.org" }] }));
    expect(twice.code).toBe("VALIDATION_FAILED");
    expect(JSON.stringify(twice.details)).toContain("appears twice");
    const page = await client.leads.list.query({ search: "x@", limit: 5 });
    expect(page.items).toEqual([]);
  });

  it("lists newest first with a cursor that walks every lead exactly once, in one round trip per page", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token, { batch: false });
    const { ids } = await client.leads.bulkUpsert.mutate({ leads: Array.from({ length: 23 }, () => ({ email: fakeEmail() })) });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      await resetRoundTrips();
      const page = await client.leads.list.query({ limit: 10, cursor });
      expect((await postgresRoundTrips()).oltp).toBe(1);
      seen.push(...page.items.map((l) => l.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.length).toBe(23);
    expect(new Set(seen)).toEqual(new Set(ids));
    await expectCode(client.leads.list.query({ cursor: "garbage!" }), "VALIDATION_FAILED");
  });

  it("filters by status, by search prefix on email or company, and by campaign enrolment", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token);
    const acme = await client.leads.create.mutate({ email: fakeEmail(), company: "Acme_Corp" });
    const hot = await client.leads.create.mutate({ email: fakeEmail(), status: "interested" });
    await client.leads.create.mutate({ email: fakeEmail(), company: "AcmeXCorp" });
    expect((await client.leads.list.query({ status: "interested" })).items.map((l) => l.id)).toEqual([hot.id]);
    // "_" is a literal here, not a LIKE wildcard.
    expect((await client.leads.list.query({ search: "acme_" })).items.map((l) => l.id)).toEqual([acme.id]);
    const campaign = await client.campaigns.create.mutate({ name: "Filter" });
    await client.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [hot.id] });
    expect((await client.leads.list.query({ campaignId: campaign.id })).items.map((l) => l.id)).toEqual([hot.id]);
  });

  it("a listed lead is the lead as get returns it, field for field, times as the same ISO text", async () => {
    const client = trpcClient((await createTenant()).member.token);
    const lead = await client.leads.create.mutate({ email: fakeEmail(), firstName: "Ada", lastName: "Lovelace", company: "Engines", customFields: { tier: "gold", seats: 12, vip: true, note: null } });
    await client.leads.update.mutate({ id: lead.id, status: "contacted" });
    const stored = await client.leads.get.query({ id: lead.id });
    expect(stored.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const { items } = await client.leads.list.query({});
    expect(items).toEqual([stored]);
    expect(Object.keys(items[0]!)).toEqual(Object.keys(stored));
  });

  it("update changes only what is sent; system-owned fields are ignored (mass assignment)", async () => {
    const tenant = await createTenant();
    const other = await createTenant();
    const client = trpcClient(tenant.member.token);
    const lead = await client.leads.create.mutate({
      email: fakeEmail(),
      ...({ tenantId: other.id, id: crypto.randomUUID(), unsubscribedAt: new Date().toISOString(), bouncedAt: new Date().toISOString() } as object),
    });
    expect(lead.tenantId).toBe(tenant.id);
    expect(lead.unsubscribedAt).toBeNull();
    expect(lead.bouncedAt).toBeNull();
    const updated = await client.leads.update.mutate({
      id: lead.id,
      status: "replied",
      ...({ email: "stolen@example.org", tenantId: other.id, unsubscribedAt: null } as object),
    });
    expect(updated).toMatchObject({ id: lead.id, email: lead.email, status: "replied", tenantId: tenant.id });
  });

  it("bulk delete removes the tenant's own leads and is bounded", async () => {
    const tenant = await createTenant();
    const client = trpcClient(tenant.member.token);
    const { ids } = await client.leads.bulkUpsert.mutate({ leads: Array.from({ length: 3 }, () => ({ email: fakeEmail() })) });
    expect(await client.leads.bulkDelete.mutate({ ids: [...ids, crypto.randomUUID()] })).toEqual({ deleted: 3 });
    await expectCode(client.leads.get.query({ id: ids[0]! }), "NOT_FOUND");
    await expectCode(client.leads.bulkDelete.mutate({ ids: Array.from({ length: 1001 }, () => crypto.randomUUID()) }), "VALIDATION_FAILED");
  });
});
