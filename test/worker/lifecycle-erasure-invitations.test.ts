import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { deliver } from "../support/jobs";
import { residue } from "../support/lifecycle";
import { queueNames } from "../support/runtime";
import { trpcClient } from "../support/worker";

describe("GDPR erasure and invitations", () => {
  it("erasing an address removes its pending invitation; another address's invitation stays", async () => {
    const tenant = await createTenant();
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const subject = `invitee-${crypto.randomUUID().slice(0, 8)}@example.org`;
    const bystander = `bystander-${crypto.randomUUID().slice(0, 8)}@example.org`;
    await admin.users.invite.mutate({ email: subject, role: "member" });
    await admin.users.invite.mutate({ email: bystander, role: "member" });
    expect(await residue("oltp", [subject])).toMatchObject({ invitations: 1 });

    const { requestId, jobId } = await admin.lifecycle.eraseSubject.mutate({ subject: { email: subject } });
    await deliver(queueNames.normal, [{ jobId, type: "ERASE_SUBJECT", tenantId: tenant.id, payload: { requestId }, enqueuedAt: new Date().toISOString() }]);
    const receipt = await admin.lifecycle.erasureReceipt.query({ requestId });
    expect(receipt.status).toBe("completed");
    expect(receipt.receipt).toMatchObject({ tiers: { oltp: { counts: { invitations: 1 } } } });

    const left = await residue("oltp", [subject]);
    expect(left).toEqual({});
    expect((await admin.users.invitations.query()).map((i) => i.email)).toEqual([bystander]);
  });
});
