import { describe, expect, it } from "vitest";
import { createTenant } from "../support/factories";
import { waitFor } from "../support/jobs";
import { emailsTo } from "../support/notifications";
import { mintToken } from "../support/tokens";
import { origin, trpcClient } from "../support/worker";

describe("invitation emails", () => {
  it("an invitation is emailed through the email provider with its accept link, and the link's token makes the invitee a member", async () => {
    const tenant = await createTenant(`Acme <b>${crypto.randomUUID().slice(0, 6)}</b>`);
    const admin = trpcClient(tenant.admin.token, { batch: false });
    const address = `invitee-${crypto.randomUUID().slice(0, 8)}@example.org`;
    const invitation = await admin.users.invite.mutate({ email: address, role: "member" });

    const [email] = await waitFor(async () => {
      const sent = await emailsTo(address);
      return sent.length > 0 ? sent : undefined;
    });
    expect(email!.idempotencyKey).toBe(invitation.id);
    expect(email!.subject).toContain(tenant.name);
    // The tenant's name is escaped in the HTML part.
    expect(email!.html).toContain("Acme &lt;b&gt;");
    expect(email!.html).not.toContain("<b>");
    const link = new URL(email!.text.match(/https?:\/\/\S+/)![0]);
    expect(`${link.origin}${link.pathname}`).toBe(`${origin}/invitations/accept`);
    const token = link.searchParams.get("token")!;
    expect(token).toBe(invitation.token);

    const accepted = await trpcClient(undefined, { batch: false }).users.acceptInvitation.mutate({ token });
    expect(accepted).toMatchObject({ tenantId: tenant.id, email: address, role: "member" });
    const member = trpcClient(await mintToken({ sub: accepted.userId, tenant_id: tenant.id, role: "member" }), { batch: false });
    expect((await member.users.me.query()).email).toBe(address);
    // Exactly one email, however often the job was delivered.
    expect(await emailsTo(address)).toHaveLength(1);
  });
});
