// Issue 14, finding 1: a tenant admin's erasure stays inside the tenant. Platform-wide system events and global Redis
// keys that mention the address are an operator's to erase; the admin's receipt says nothing about them.
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/platform/logger";
import { allowAuthEmail, authEmailLimits } from "../../../src/platform/rate-limits";
import { createTenant } from "../../support/factories";
import { deliver } from "../../support/jobs";
import { asRole, operatorClient, redis, redisKeysMatching } from "../../support/lifecycle";
import { queueNames } from "../../support/runtime";
import { trpcClient } from "../../support/worker";

const eraseMessage = (tenantId: string, jobId: string, requestId: string) => ({
  jobId,
  type: "ERASE_SUBJECT" as const,
  tenantId,
  payload: { requestId },
  enqueuedAt: new Date().toISOString(),
});

describe("erasure stays inside the requesting tenant", () => {
  it("a tenant admin erasing an address the tenant never held touches no platform event or global key, and its receipt tells nothing of them", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const address = `outsider-${crypto.randomUUID().slice(0, 8)}@example.org`;
    // What exists outside the tenant: a platform-wide incident naming the address, and its global auth-email counter.
    const [[event] = []] = await asRole("notifications", "system", (sql) => [
      sql`insert into admin_system_events (event_type, severity, tenant_id, description, details)
          values ('abuse', 'high', null, ${`password reset storm for ${address}`}, '{}'::jsonb) returning id`,
    ]);
    await allowAuthEmail(redis(), createLogger("warn"), "password-reset", address, authEmailLimits["password-reset"]);
    const keysBefore = await redisKeysMatching(address);
    expect(keysBefore).toHaveLength(1);

    const { requestId, jobId } = await admin.lifecycle.eraseSubject.mutate({ subject: { email: address } });
    await deliver(queueNames.normal, [eraseMessage(tenant.id, jobId, requestId)]);
    const receipt = await admin.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.status).toBe("completed");

    const [[still] = []] = await asRole("notifications", "system", (sql) => [sql`select count(*)::int as n from admin_system_events where id = ${String(event!.id)}`]);
    expect(still).toMatchObject({ n: 1 });
    expect(await redisKeysMatching(address)).toEqual(keysBefore);
    // The receipt is the same as for an address that exists nowhere: every count zero, no platform-wide entry.
    const tiers = (receipt.receipt as { tiers: Record<string, { counts: Record<string, number> }> }).tiers;
    expect(tiers.notifications?.counts).toEqual({ notifications: 0, receipts: 0, systemEvents: 0, preferences: 0, pushSubscriptions: 0 });
    expect(tiers.redis?.counts).toEqual({ keys: 0 });
    expect(JSON.stringify(receipt)).not.toMatch(/platform/i);
  });

  it("an operator naming the tenant may erase platform-wide, and the receipt counts it apart", async () => {
    const tenant = await createTenant();
    const address = `outsider-${crypto.randomUUID().slice(0, 8)}@example.org`;
    await asRole("notifications", "system", (sql) => [
      sql`insert into admin_system_events (event_type, severity, tenant_id, description, details)
          values ('abuse', 'high', null, ${`password reset storm for ${address}`}, '{}'::jsonb)`,
    ]);
    await allowAuthEmail(redis(), createLogger("warn"), "verification-email", address, authEmailLimits["verification-email"]);
    const operator = await operatorClient();
    const { requestId, jobId } = await operator.lifecycle.eraseSubject.mutate({ subject: { email: address }, tenantId: tenant.id });
    await deliver(queueNames.normal, [eraseMessage(tenant.id, jobId, requestId)]);
    const receipt = await operator.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.receipt).toMatchObject({ tiers: { notifications: { counts: { systemEvents: 0, platformSystemEvents: 1 } }, redis: { counts: { keys: 1 } } } });
    expect(await redisKeysMatching(address)).toEqual([]);
  });
});
