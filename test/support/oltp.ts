// OLTP test helpers: expected tRPC error shapes and small builders that go through the real procedures.
import { TRPCClientError } from "@trpc/client";
import { expect } from "vitest";
import type { ErrorCode } from "../../src/platform/errors";
import { createTenant, type TestTenant } from "./factories";
import { verifiedDomain } from "./dns";
import { trpcClient } from "./worker";

/** Resolves to the error's data, failing the test if the call succeeded. */
export async function rejection(call: Promise<unknown>): Promise<{ code: ErrorCode; httpStatus: number; details?: unknown }> {
  const error = await call.then(
    (value) => {
      throw new Error(`expected an error, got ${JSON.stringify(value)}`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCClientError);
  return (error as TRPCClientError<never>).data as unknown as { code: ErrorCode; httpStatus: number; details?: unknown };
}

export async function expectCode(call: Promise<unknown>, code: ErrorCode): Promise<void> {
  expect((await rejection(call)).code).toBe(code);
}

const variant = (label = "A") => ({ label, subject: `Hello ${label}`, bodyStorageKey: `bodies/${crypto.randomUUID()}`, weight: 1 });

/** A campaign with `steps` steps, created and filled through the procedures. */
export async function campaignWithSteps(token: string, steps = 1) {
  const client = trpcClient(token, { batch: false });
  const campaign = await client.campaigns.create.mutate({ name: `Campaign ${crypto.randomUUID().slice(0, 6)}` });
  if (steps > 0) {
    await client.campaigns.setSteps.mutate({
      id: campaign.id,
      steps: Array.from({ length: steps }, (_, i) => ({ delayHours: i * 24, variants: [variant("A"), variant("B")] })),
    });
  }
  return campaign;
}

/** A campaign with steps that has started: a draft campaign sends nothing, and emails under it are refused. */
export async function startedCampaign(token: string, steps = 1) {
  const campaign = await campaignWithSteps(token, steps);
  await trpcClient(token, { batch: false }).campaigns.transition.mutate({ id: campaign.id, action: "start" });
  return campaign;
}

/** A sending setup: a domain verified through the local DNS-over-HTTPS endpoint, and one mailbox on it. */
export async function mailboxFor(adminToken: string) {
  const client = trpcClient(adminToken, { batch: false });
  const domain = await verifiedDomain(client);
  const mailbox = await client.mailboxes.add.mutate({ domainId: domain.id, address: `sales@${domain.name}` });
  return { domain, mailbox };
}

export const fakeEmail = () => `lead-${crypto.randomUUID().slice(0, 12)}@example.org`;

/** One of every OLTP entity in a fresh tenant, built through the procedures: what isolation tests aim at. */
export interface Estate {
  tenant: TestTenant;
  leadId: string;
  leadEmail: string;
  campaignId: string;
  stepId: string;
  domainId: string;
  domainName: string;
  mailboxId: string;
  emailId: string;
  apiKeyId: string;
  apiKey: string;
  extraUserId: string;
  invitationId: string;
  invitationToken: string;
  /** An address on the tenant's suppression list (no lead has it). */
  suppressedAddress: string;
}

export async function buildEstate(): Promise<Estate> {
  const tenant = await createTenant();
  const admin = trpcClient(tenant.admin.token, { batch: false });
  const { domain, mailbox } = await mailboxFor(tenant.admin.token);
  const lead = await admin.leads.create.mutate({ email: fakeEmail(), company: "Secret Co" });
  const campaign = await campaignWithSteps(tenant.admin.token, 1);
  const steps = (await admin.campaigns.get.query({ id: campaign.id })).steps;
  await admin.campaigns.enrolLeads.mutate({ id: campaign.id, leadIds: [lead.id] });
  // Started (a draft's emails are refused), then paused: editable again, its email held.
  await admin.campaigns.transition.mutate({ id: campaign.id, action: "start" });
  await admin.campaigns.transition.mutate({ id: campaign.id, action: "pause" });
  // With a body and an attachment, so the content catalog's tables have rows of every tenant too.
  const email = await admin.emails.create.mutate({
    leadId: lead.id,
    mailboxId: mailbox.id,
    campaignId: campaign.id,
    subject: "Secret",
    body: { text: "Secret text", html: "<p>Secret</p>", headers: {} },
    attachments: [{ filename: "secret.txt", mimeType: "text/plain", content: btoa("secret"), disposition: "attachment" }],
  });
  await admin.content.setRetention.mutate({ retentionDays: 30 });
  const key = await admin.apiKeys.create.mutate({ name: "B key" });
  const user = await admin.users.add.mutate({ email: `extra-${crypto.randomUUID().slice(0, 8)}@example.test` });
  const invitation = await admin.users.invite.mutate({ email: `invited-${crypto.randomUUID().slice(0, 8)}@example.test` });
  const suppressed = await admin.suppressions.add.mutate({ address: `suppressed-${crypto.randomUUID().slice(0, 8)}@example.test` });
  return {
    tenant,
    leadId: lead.id,
    leadEmail: lead.email,
    campaignId: campaign.id,
    stepId: steps[0]!.id,
    domainId: domain.id,
    domainName: domain.name,
    mailboxId: mailbox.id,
    emailId: email.id,
    apiKeyId: key.id,
    apiKey: key.key,
    extraUserId: user.id,
    invitationId: invitation.id,
    invitationToken: invitation.token,
    suppressedAddress: suppressed.address!,
  };
}
