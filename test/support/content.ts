// Content tier test helpers: a sending setup, bodies and attachments from bytes, the R2 bucket and indexing deliveries.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";
import { parseEnv } from "../../src/platform/env";
import { systemClock } from "../../src/platform/clock";
import { createServices } from "../../src/platform/services";
import { createCaller, wired } from "../../src/root";
import { createLogger } from "../../src/platform/logger";
import { queueNames, testServices } from "./runtime";
import { createTenant, type TestTenant } from "./factories";
import { failingBinding } from "./stack";
import { fakeEmail, mailboxFor } from "./oltp";
import { postgresRoundTrips, resetRoundTrips } from "./stack";
import { trpcClient } from "./worker";

export const bucket = () => env.CONTENT_BUCKET;

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export const fromBase64 = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

/** A tenant with a mailbox and a lead, ready to create emails with content. */
export async function contentSetup(tenant?: TestTenant) {
  const owner = tenant ?? (await createTenant());
  const { mailbox } = await mailboxFor(owner.admin.token);
  const client = trpcClient(owner.admin.token, { batch: false });
  const lead = await client.leads.create.mutate({ email: fakeEmail() });
  return { tenant: owner, client, leadId: lead.id, mailboxId: mailbox.id };
}

/** Keys R2 holds under a tenant's prefix. */
export async function storedKeys(tenantId: string): Promise<string[]> {
  const listed = await bucket().list({ prefix: `tenants/${tenantId}/` });
  return listed.objects.map((o) => o.key);
}

/** Runs the INDEX_CONTENT handler through the Worker's queue consumer, as a delivery would. */
export async function deliverIndexing(tenantId: string, emailIds: string[]) {
  const batch = createMessageBatch(
    queueNames.normal,
    emailIds.map((emailId) => ({ id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body: testServices().jobs.direct("INDEX_CONTENT", tenantId, { emailId }).message })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

/**
 * A caller for the real routers whose R2 binding throws on every call: failure injection on the
 * binding (Miniflare's R2 cannot be stopped), not a mock of the store; Postgres stays real.
 */
export function callerWithR2Down(tenant: TestTenant) {
  const failing = failingBinding(env.CONTENT_BUCKET, "R2");
  const services = createServices(
    { env: { ...parseEnv(env), CONTENT_BUCKET: failing }, requestId: crypto.randomUUID(), logger: createLogger("error"), clock: systemClock, waitUntil: () => undefined },
    wired,
  );
  return createCaller({ ...services, principal: { userId: tenant.admin.id, tenantId: tenant.id, role: "admin" }, authError: null, requestUrl: null });
}

/**
 * Waits until Miniflare's own deliveries of the INDEX_CONTENT messages that creates sent have
 * finished (no OLTP round trip for a while), so a following count is the measured call's alone.
 */
export async function untilQuiet(timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await resetRoundTrips();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    if (((await postgresRoundTrips()).oltp ?? 0) === 0) return;
  }
  throw new Error("background queue deliveries did not settle");
}
