import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { expectCode, mailboxFor, rejection } from "../support/oltp";
import { request, trpcClient } from "../support/worker";

describe("users", () => {
  it("members see themselves and their team; admins add users, change roles and remove them", async () => {
    const tenant = await createTenant();
    const member = trpcClient(tenant.member.token);
    const admin = trpcClient(tenant.admin.token);
    expect(await member.users.me.query()).toMatchObject({ id: tenant.member.id, role: "member" });
    const added = await admin.users.add.mutate({ email: "New.Person@Example.test", name: "New", ...({ tenantId: crypto.randomUUID() } as object) });
    expect(added).toMatchObject({ email: "new.person@example.test", role: "member", tenantId: tenant.id });
    await expectCode(admin.users.add.mutate({ email: "new.person@example.test" }), "CONFLICT");
    expect((await admin.users.setRole.mutate({ id: added.id, role: "admin" })).role).toBe("admin");
    const first = await member.users.list.query({ limit: 2 });
    const rest = await member.users.list.query({ limit: 2, cursor: first.nextCursor! });
    expect([...first.items, ...rest.items].map((u) => u.email)).toEqual(
      [tenant.admin.email, tenant.member.email, "new.person@example.test"].sort(),
    );
    expect((await member.users.list.query({ role: "admin" })).items).toHaveLength(2);
    expect(await admin.users.remove.mutate({ id: added.id })).toEqual({ id: added.id });
    await expectCode(admin.users.remove.mutate({ id: added.id }), "NOT_FOUND");
  });

  it("the last admin can be neither demoted nor removed, and an admin cannot remove themselves", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    await expectCode(admin.users.setRole.mutate({ id: tenant.admin.id, role: "member" }), "CONFLICT");
    await expectCode(admin.users.remove.mutate({ id: tenant.admin.id }), "BAD_REQUEST");
    expect((await admin.users.setRole.mutate({ id: tenant.member.id, role: "admin" })).role).toBe("admin");
    expect((await admin.users.setRole.mutate({ id: tenant.admin.id, role: "member" })).role).toBe("member");
  });
});

describe("API keys", () => {
  it("shows the key once, stores only its hash, and the key works as a bearer credential with its role", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    const created = await admin.apiKeys.create.mutate({ name: "CRM sync", role: "member" });
    expect(created.key.startsWith(`${created.prefix}_`)).toBe(true);
    expect(created.prefix).toMatch(/^edp_/);
    const listed = await admin.apiKeys.list.query({});
    expect(listed.items).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(created.key.slice(created.prefix.length + 1));
    expect(listed.items[0]).not.toHaveProperty("hash");

    const viaKey = trpcClient(created.key);
    expect((await viaKey.tenants.current.query()).id).toBe(tenant.id);
    await expectCode(viaKey.apiKeys.list.query({}), "FORBIDDEN");
    expect((await admin.apiKeys.list.query({})).items[0]?.lastUsedAt).not.toBeNull();
  });

  it("a revoked or unknown key answers 401, and revoking twice keeps the first time", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    const created = await admin.apiKeys.create.mutate({ name: "Temp", role: "admin" });
    expect((await trpcClient(created.key).apiKeys.list.query({})).items.length).toBe(1);
    const revoked = await admin.apiKeys.revoke.mutate({ id: created.id });
    expect(revoked.revokedAt).not.toBeNull();
    expect((await admin.apiKeys.revoke.mutate({ id: created.id })).revokedAt).toEqual(revoked.revokedAt);
    const refused = await rejection(trpcClient(created.key).tenants.current.query());
    expect(refused).toMatchObject({ code: "AUTH_TOKEN_INVALID", httpStatus: 401 });
    await expectCode(trpcClient(`${created.prefix}_forged`).tenants.current.query(), "AUTH_TOKEN_INVALID");
    expect((await admin.apiKeys.list.query({})).items).toEqual([]);
    expect((await admin.apiKeys.list.query({ includeRevoked: true })).items).toHaveLength(1);
  });
});

describe("domains and mailboxes", () => {
  it("a domain comes with the SPF, DKIM and DMARC records to publish; bad names are refused", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    const domain = await admin.domains.add.mutate({ name: "Mail.Example.com", ...({ verificationStatus: "verified" } as object) });
    expect(domain).toMatchObject({ name: "mail.example.com", verificationStatus: "pending" });
    expect(domain.dnsRecords.map((r) => r.purpose)).toEqual(["spf", "dkim", "dmarc"]);
    expect(domain.dnsRecords.find((r) => r.purpose === "dmarc")?.host).toBe("_dmarc.mail.example.com");
    await expectCode(admin.domains.add.mutate({ name: "mail.example.com" }), "CONFLICT");
    await expectCode(admin.domains.add.mutate({ name: "not a domain" }), "VALIDATION_FAILED");
    expect((await trpcClient(tenant.member.token).domains.list.query({ status: "pending" })).items.map((d) => d.id)).toEqual([domain.id]);
  });

  it("a mailbox must be on one of the tenant's domains and within the tenant's allowance", async () => {
    // The free plan allows two mailboxes.
    const tenant = await createTenant(undefined, { plan: "free" });
    const admin = trpcClient(tenant.admin.token);
    const { domain, mailbox } = await mailboxFor(tenant.admin.token);
    expect(mailbox).toMatchObject({ domainId: domain.id, status: "active", warmupEnabled: true, dailyLimit: 50 });
    await expectCode(admin.mailboxes.add.mutate({ domainId: domain.id, address: "x@elsewhere.example" }), "VALIDATION_FAILED");
    await expectCode(admin.mailboxes.add.mutate({ domainId: crypto.randomUUID(), address: `x@${domain.name}` }), "NOT_FOUND");
    await expectCode(admin.mailboxes.add.mutate({ domainId: domain.id, address: mailbox.address }), "CONFLICT");
    await admin.mailboxes.add.mutate({ domainId: domain.id, address: `m1@${domain.name}` });
    const full = await rejection(admin.mailboxes.add.mutate({ domainId: domain.id, address: `m9@${domain.name}` }));
    expect(full).toMatchObject({ code: "CONFLICT", details: { used: 2, allowed: 2 } });
    expect((await admin.mailboxes.list.query({ domainId: domain.id, limit: 100 })).items).toHaveLength(2);
    await expectCode(admin.domains.remove.mutate({ id: domain.id }), "CONFLICT");
  });

  it("admins pause and tune a mailbox; bounce protection is not theirs to set", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    const { mailbox, domain } = await mailboxFor(tenant.admin.token);
    const paused = await admin.mailboxes.update.mutate({ id: mailbox.id, status: "paused", dailyLimit: 80, warmupIncrement: 3 });
    expect(paused).toMatchObject({ status: "paused", dailyLimit: 80, warmupIncrement: 3 });
    await expectCode(admin.mailboxes.update.mutate({ id: mailbox.id, status: "bounce_protected" as never }), "VALIDATION_FAILED");
    await expectCode(admin.mailboxes.update.mutate({ id: mailbox.id, dailyLimit: 0 }), "VALIDATION_FAILED");
    expect(await admin.mailboxes.remove.mutate({ id: mailbox.id })).toEqual({ id: mailbox.id });
    expect(await admin.domains.remove.mutate({ id: domain.id })).toEqual({ id: domain.id });
  });
});

describe("billing", () => {
  it("admins read the subscription and usage counters; queued emails count towards the month", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token);
    // Provisioning starts the plan's trial.
    expect(await admin.tenants.billing.query()).toMatchObject({ subscription: { plan: "pro", status: "trialing" }, usage: [] });
    const { mailbox } = await mailboxFor(tenant.admin.token);
    const lead = await admin.leads.create.mutate({ email: "billing@example.org" });
    await admin.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "Hi", contentStorageKey: "c/1" });
    await admin.emails.create.mutate({ leadId: lead.id, mailboxId: mailbox.id, subject: "Again", contentStorageKey: "c/2" });
    const billing = await admin.tenants.billing.query();
    expect(billing.usage).toHaveLength(1);
    expect(billing.usage[0]).toMatchObject({ emailsQueued: 2 });
  });
});

describe("admin-only actions", () => {
  it("are refused for members with 403 FORBIDDEN", async () => {
    const tenant = await createTenant();
    const member = trpcClient(tenant.member.token);
    await expectCode(member.apiKeys.create.mutate({ name: "x" }), "FORBIDDEN");
    await expectCode(member.domains.add.mutate({ name: "a.example.com" }), "FORBIDDEN");
    await expectCode(member.users.add.mutate({ email: "a@example.test" }), "FORBIDDEN");
    await expectCode(member.tenants.billing.query(), "FORBIDDEN");
    const response = await request("/trpc/apiKeys.list", { headers: { authorization: `Bearer ${tenant.member.token}` } });
    expect(response.status).toBe(403);
  });
});
