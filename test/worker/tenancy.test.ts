import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { operatorClient } from "../support/lifecycle";
import { mintToken } from "../support/tokens";
import { request, trpcClient } from "../support/worker";
import { setDatabaseFault, setRedisFault } from "../support/stack";
import { clockAtUtc, clockedWorker, settableClock } from "../support/clock";
import { jobsConfig } from "../../src/tiers/jobs/config";
import { ledgerRow, queueEmail, sendingMailbox } from "../support/jobs";
import { queueNames } from "../support/runtime";

const codeOf = (error: unknown) => (error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : String(error));

async function refusal(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (error) {
    return codeOf(error);
  }
  return undefined;
}

/** An operator provisions a tenant; its first admin signs in with the id the procedure returned. */
async function provisioned(plan: "free" | "starter" | "pro" = "starter") {
  const operator = await operatorClient();
  const suffix = crypto.randomUUID().slice(0, 8);
  const result = await operator.tenants.create.mutate({ name: `Acme ${suffix}`, plan, admin: { email: `Owner-${suffix}@example.test` } });
  const adminToken = await mintToken({ sub: result.admin.id, tenant_id: result.tenant.id, role: "admin" });
  return { operator, result, admin: trpcClient(adminToken, { batch: false }), adminToken };
}

async function addMember(admin: ReturnType<typeof trpcClient>, tenantId: string, role: "member" | "admin" = "member") {
  const user = await admin.users.add.mutate({ email: `m-${crypto.randomUUID().slice(0, 8)}@example.test`, role });
  const token = await mintToken({ sub: user.id, tenant_id: tenantId, role });
  return { user, token, client: trpcClient(token, { batch: false }) };
}

describe("provisioning", () => {
  it("an operator provisions a tenant with its first admin and plan limits, and a retry with the same key returns it", async () => {
    const operator = await operatorClient();
    const clientKey = `provision-${crypto.randomUUID()}`;
    const first = await operator.tenants.create.mutate({ name: "Acme", plan: "pro", admin: { email: "Founder@Example.test" }, clientKey });
    expect(first.created).toBe(true);
    expect(first.tenant).toMatchObject({ name: "Acme", plan: "pro", status: "active", maxMailboxes: 100, dailySendLimit: 20_000, maxSeats: 50 });
    expect(first.admin.email).toBe("founder@example.test");

    const again = await operator.tenants.create.mutate({ name: "Acme", plan: "pro", admin: { email: "founder@example.test" }, clientKey });
    expect(again).toMatchObject({ created: false, tenant: { id: first.tenant.id }, admin: { id: first.admin.id } });

    const admin = trpcClient(await mintToken({ sub: first.admin.id, tenant_id: first.tenant.id, role: "admin" }), { batch: false });
    expect((await admin.tenants.current.query()).id).toBe(first.tenant.id);
    expect((await admin.users.me.query()).role).toBe("admin");
    expect((await admin.tenants.billing.query()).subscription).toMatchObject({ plan: "pro", status: "trialing" });

    const listed = await operator.tenants.list.query({ limit: 100 });
    expect(listed.items.map((t) => t.id)).toContain(first.tenant.id);
    expect(await operator.tenants.get.query({ id: first.tenant.id })).toMatchObject({ members: 1, admins: 1 });
  });

  it("only an operator provisions, lists and suspends tenants", async () => {
    const { admin, result } = await provisioned();
    expect(await refusal(admin.tenants.create.mutate({ name: "Mine", admin: { email: "x@example.test" } }))).toBe("FORBIDDEN");
    expect(await refusal(admin.tenants.list.query({}))).toBe("FORBIDDEN");
    expect(await refusal(admin.tenants.suspend.mutate({ id: result.tenant.id }))).toBe("FORBIDDEN");
  });
});

describe("members", () => {
  it("an operator provisions, its admin invites, the invitee accepts and works; nothing needed owner SQL", async () => {
    const { admin, result } = await provisioned();
    const invitation = await admin.users.invite.mutate({ email: "New.Hire@example.test" });
    expect(invitation).toMatchObject({ email: "new.hire@example.test", role: "member", acceptedAt: null });
    expect((await admin.users.invitations.query()).map((i) => i.id)).toEqual([invitation.id]);

    const anonymous = trpcClient(undefined, { batch: false });
    const accepted = await anonymous.users.acceptInvitation.mutate({ token: invitation.token, name: "New Hire" });
    expect(accepted).toMatchObject({ tenantId: result.tenant.id, email: "new.hire@example.test", role: "member" });
    // A retried accept returns the same membership.
    expect((await anonymous.users.acceptInvitation.mutate({ token: invitation.token })).userId).toBe(accepted.userId);

    const hire = trpcClient(await mintToken({ sub: accepted.userId, tenant_id: accepted.tenantId, role: "member" }), { batch: false });
    expect((await hire.users.me.query()).email).toBe("new.hire@example.test");
    const lead = await hire.leads.create.mutate({ email: "prospect@example.org" });
    expect((await admin.leads.list.query({})).items.map((l) => l.id)).toContain(lead.id);
    expect(await admin.users.invitations.query()).toEqual([]);
    expect(await refusal(anonymous.users.acceptInvitation.mutate({ token: "x".repeat(43) }))).toBe("LINK_INVALID");
  });

  it("invitations stop at the plan's seats, and an address already a member is not invited again", async () => {
    const { admin, result } = await provisioned("free");
    await admin.users.invite.mutate({ email: "one@example.test" });
    await admin.users.invite.mutate({ email: "two@example.test" });
    // Free: 3 seats, the admin and two open invitations.
    expect(await refusal(admin.users.invite.mutate({ email: "three@example.test" }))).toBe("CONFLICT");
    expect(await refusal(admin.users.invite.mutate({ email: (await admin.users.me.query()).email }))).toBe("CONFLICT");
    expect((await admin.tenants.current.query()).id).toBe(result.tenant.id);
  });

  it("invitation emails go through the auth-email limiter, which fails closed while Redis is down", async () => {
    const { admin } = await provisioned("pro");
    const email = `limited-${crypto.randomUUID().slice(0, 8)}@example.test`;
    await setRedisFault("down");
    try {
      // The caller's authorization falls back to OLTP; the limiter refuses.
      expect(await refusal(admin.users.invite.mutate({ email }))).toBe("SERVICE_UNAVAILABLE");
    } finally {
      await setRedisFault("none");
    }
    // Nothing was counted or created while Redis was down; then five invitations an hour per address.
    for (let i = 0; i < 5; i++) await admin.users.invite.mutate({ email });
    expect(await refusal(admin.users.invite.mutate({ email }))).toBe("RATE_LIMITED");
    await admin.users.invite.mutate({ email: `other-${email}` });
  });
});

describe("memberships take effect on the next request", () => {
  it("a token whose user was never a member of the tenant is refused", async () => {
    const { result } = await provisioned();
    const stranger = trpcClient(await mintToken({ sub: crypto.randomUUID(), tenant_id: result.tenant.id, role: "admin" }), { batch: false });
    expect(await refusal(stranger.tenants.current.query())).toBe("NOT_A_MEMBER");
    const response = await request("/v1/notifications/unread-count", {
      headers: { authorization: `Bearer ${await mintToken({ sub: crypto.randomUUID(), tenant_id: result.tenant.id, role: "member" })}` },
    });
    expect(response.status).toBe(403);
  });

  it("a removed member is refused on the very next request, with a warm cache", async () => {
    const { admin, result } = await provisioned();
    const member = await addMember(admin, result.tenant.id);
    await member.client.leads.list.query({});
    await member.client.leads.list.query({});
    await admin.users.remove.mutate({ id: member.user.id });
    expect(await refusal(member.client.leads.list.query({}))).toBe("NOT_A_MEMBER");
    const badge = await request("/v1/notifications/unread-count", { headers: { authorization: `Bearer ${member.token}` } });
    expect(badge.status).toBe(403);
  });

  it("a demoted admin is a member on the very next request, whatever the token claims", async () => {
    const { admin, result } = await provisioned();
    const second = await addMember(admin, result.tenant.id, "admin");
    await second.client.tenants.rename.mutate({ name: "Renamed by the second admin" });
    await admin.users.setRole.mutate({ id: second.user.id, role: "member" });
    expect(await refusal(second.client.tenants.rename.mutate({ name: "Again" }))).toBe("FORBIDDEN");
    expect((await second.client.tenants.current.query()).id).toBe(result.tenant.id);
    // Promotion again: the token's claim (admin) is the ceiling, the membership decides.
    await admin.users.setRole.mutate({ id: second.user.id, role: "admin" });
    await second.client.tenants.rename.mutate({ name: "Admin again" });
  });

  it("a member's token claiming admin acts as a member", async () => {
    const { admin, result } = await provisioned();
    const member = await addMember(admin, result.tenant.id);
    const claimsAdmin = trpcClient(await mintToken({ sub: member.user.id, tenant_id: result.tenant.id, role: "admin" }), { batch: false });
    expect(await refusal(claimsAdmin.tenants.rename.mutate({ name: "No" }))).toBe("FORBIDDEN");
    expect(await refusal(claimsAdmin.apiKeys.create.mutate({ name: "escalate", role: "admin" }))).toBe("FORBIDDEN");
  });

  it("a suspended tenant is refused on the very next request, JWT and API key alike; reactivation restores both", async () => {
    const { admin, result, operator } = await provisioned();
    const member = await addMember(admin, result.tenant.id);
    const key = await admin.apiKeys.create.mutate({ name: "server", scope: "read" });
    const keyClient = trpcClient(key.key, { batch: false });
    await member.client.leads.list.query({});
    await keyClient.leads.list.query({});

    await operator.tenants.suspend.mutate({ id: result.tenant.id, reason: "unpaid" });
    expect(await refusal(member.client.leads.list.query({}))).toBe("TENANT_SUSPENDED");
    expect(await refusal(admin.tenants.current.query())).toBe("TENANT_SUSPENDED");
    expect(await refusal(keyClient.leads.list.query({}))).toBe("TENANT_SUSPENDED");
    expect((await operator.tenants.get.query({ id: result.tenant.id })).status).toBe("suspended");

    await operator.tenants.reactivate.mutate({ id: result.tenant.id });
    expect((await member.client.leads.list.query({})).items).toEqual([]);
    expect((await keyClient.leads.list.query({})).items).toEqual([]);
  });
});

describe("while Redis is down", () => {
  it("requests are authorized from OLTP, and a change that narrows access is refused before it commits", async () => {
    const { admin, result } = await provisioned();
    const member = await addMember(admin, result.tenant.id);
    await member.client.leads.list.query({});
    await setRedisFault("down");
    try {
      expect((await member.client.leads.list.query({})).items).toEqual([]);
      expect(await refusal(admin.users.remove.mutate({ id: member.user.id }))).toBe("SERVICE_UNAVAILABLE");
    } finally {
      await setRedisFault("none");
    }
    // Nothing was committed: the member still works, until the removal goes through.
    expect((await member.client.leads.list.query({})).items).toEqual([]);
    await admin.users.remove.mutate({ id: member.user.id });
    expect(await refusal(member.client.leads.list.query({}))).toBe("NOT_A_MEMBER");
  });
});

describe("API keys", () => {
  it("a key expires, defaults to the plan's expiry, and cannot outlive the plan's maximum", async () => {
    const { admin } = await provisioned("free");
    const key = await admin.apiKeys.create.mutate({ name: "default expiry" });
    const days = (new Date(key.expiresAt!).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
    expect(await refusal(admin.apiKeys.create.mutate({ name: "too long", expiresInDays: 91 }))).toBe("VALIDATION_FAILED");
  });

  it("a read-only key reads and cannot write; a revoked key is refused on the very next request", async () => {
    const { admin } = await provisioned();
    const key = await admin.apiKeys.create.mutate({ name: "reader", scope: "read" });
    const reader = trpcClient(key.key, { batch: false });
    expect((await reader.leads.list.query({})).items).toEqual([]);
    expect(await refusal(reader.leads.create.mutate({ email: "lead@example.test" }))).toBe("FORBIDDEN");
    await admin.apiKeys.revoke.mutate({ id: key.id });
    expect(await refusal(reader.leads.list.query({}))).toBe("AUTH_TOKEN_INVALID");
  });

  it("a removed member's own keys are revoked with the membership; the tenant's keys outlive their creator", async () => {
    const { admin, result } = await provisioned();
    const second = await addMember(admin, result.tenant.id, "admin");
    const own = await second.client.apiKeys.create.mutate({ name: "mine" });
    const shared = await second.client.apiKeys.create.mutate({ name: "the tenant's", owner: "tenant" });
    const ownClient = trpcClient(own.key, { batch: false });
    const sharedClient = trpcClient(shared.key, { batch: false });
    await ownClient.leads.list.query({});
    await admin.users.remove.mutate({ id: second.user.id });
    expect(await refusal(ownClient.leads.list.query({}))).toBe("AUTH_TOKEN_INVALID");
    expect((await sharedClient.leads.list.query({})).items).toEqual([]);
    const listed = await admin.apiKeys.list.query({ includeRevoked: true });
    expect(listed.items.find((k) => k.id === shared.id)).toMatchObject({ owner: "tenant", revokedAt: null });
    expect(listed.items.find((k) => k.id === own.id)?.revokedAt).not.toBeNull();
  });

  it("a demoted admin's own admin keys act as member keys from the next request", async () => {
    const { admin, result } = await provisioned();
    const second = await addMember(admin, result.tenant.id, "admin");
    const key = await second.client.apiKeys.create.mutate({ name: "admin key", role: "admin" });
    const keyClient = trpcClient(key.key, { batch: false });
    await keyClient.tenants.rename.mutate({ name: "By key" });
    await admin.users.setRole.mutate({ id: second.user.id, role: "member" });
    expect(await refusal(keyClient.tenants.rename.mutate({ name: "By key again" }))).toBe("FORBIDDEN");
  });

  it("with OLTP down, an API-key caller still reads notifications", async () => {
    const { admin } = await provisioned();
    const key = await admin.apiKeys.create.mutate({ name: "reader", scope: "read" });
    const keyClient = trpcClient(key.key, { batch: false });
    await keyClient.notifications.list.query({});
    await setDatabaseFault("oltp", "down");
    try {
      expect((await keyClient.notifications.list.query({})).items).toEqual([]);
      expect(await refusal(keyClient.leads.list.query({}))).toBe("SERVICE_UNAVAILABLE");
    } finally {
      await setDatabaseFault("oltp", "none");
    }
  });
});

describe("a suspended tenant sends nothing", () => {
  it("SEND_EMAIL defers a suspended tenant's email and sends it once the tenant is reactivated", async () => {
    const { admin, result, operator, adminToken } = await provisioned();
    const clock = settableClock(clockAtUtc("12:00").now());
    const worker = clockedWorker(clock);
    const client = worker.client(adminToken);
    const box = await sendingMailbox(adminToken);
    const email = await queueEmail(adminToken, box.id, {}, client);
    await operator.tenants.suspend.mutate({ id: result.tenant.id });
    await worker.deliver("JOBS_HIGH", queueNames.high);
    expect(await ledgerRow(email.id)).toMatchObject({ status: "pending", attempts: 0, last_error: "The tenant is suspended" });
    await operator.tenants.reactivate.mutate({ id: result.tenant.id });
    expect((await admin.emails.get.query({ id: email.id })).status).toBe("queued");
    // The deferral went back to the queue for the mailbox retry delay; once that has passed, the email is sent.
    clock.advance((jobsConfig.sendEmail.inactiveMailboxRetrySeconds + 1) * 1000);
    expect(await worker.deliver("JOBS_HIGH", queueNames.high)).toBe(1);
    expect((await admin.emails.get.query({ id: email.id })).status).toBe("sent");
  });
});
