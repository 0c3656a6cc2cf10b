// Jobs test helpers: ledger rows written as a producer would, queue deliveries driven through the Worker's consumer.
import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { NeonQueryFunction, NeonQueryPromise } from "@neondatabase/serverless";
import worker from "../../src/index";
import { parseEnv } from "../../src/platform/env";
import { tenantBatch, tierStore } from "../../src/platform/db";
import { prepareJobs, type JobRequest } from "./runtime";
import type { JobMessage } from "./runtime";
import { schedules } from "./runtime";
import { oltpSql } from "./factories";
import { fakeEmail } from "./oltp";
import { verifiedDomain } from "./dns";
import { trpcClient } from "./worker";

/**
 * Commits ledger rows exactly as a producer's transaction would, and sends nothing: the state a
 * crash between commit and send leaves behind. Returns the messages the send would have carried.
 */
export async function commitJobsWithoutSending(tenantId: string, userId: string, requests: JobRequest[]): Promise<JobMessage[]> {
  const prepared = prepareJobs(tenantId, requests);
  await tenantBatch(tierStore(parseEnv(env), "oltp"), { tenantId, userId, role: "admin" }, (db) => [prepared.insert(db)]);
  return prepared.messages.map((m) => m.message);
}

/** Delivers messages to the Worker's queue handler as Miniflare would, and returns what it acked and retried. */
export async function deliver(queue: string, bodies: JobMessage[], attempts = 1) {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, i) => ({ id: `m-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks.length, retries: result.retryMessages };
}

/** A ledger row as the platform sees it ('system' role), whatever the tenant. */
export async function ledgerRow(id: string): Promise<Record<string, unknown> | undefined> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_role', 'system', true)`,
    sql`select * from jobs where id = ${id}`,
  ]);
  return rows[0];
}

/** Moves a job's due time into the past, as if the grace period had gone by. */
export async function backdateJob(id: string, seconds: number): Promise<void> {
  const sql = oltpSql();
  await sql.transaction([
    sql`select set_config('app.current_role', 'system', true)`,
    sql`update jobs set scheduled_at = now() - make_interval(secs => ${seconds}) where id = ${id}`,
  ]);
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Seconds until a job is next due (negative when overdue): where a retry's backoff shows in the ledger. */
export async function dueInSeconds(id: string): Promise<number> {
  const sql = oltpSql();
  const [, rows = []] = await sql.transaction([
    sql`select set_config('app.current_role', 'system', true)`,
    sql`select extract(epoch from scheduled_at - now())::float8 as due_in from jobs where id = ${id}`,
  ]);
  return Number(rows[0]?.due_in);
}

const emailBody = { text: "Hello there", html: "<p>Hello there</p>", headers: {} };

/** A mailbox on a fresh domain, added and verified (records published on the local DoH endpoint) through the procedures. */
export async function sendingMailbox(token: string, settings: { dailyLimit?: number; warmupEnabled?: boolean; warmupStart?: number; warmupIncrement?: number } = {}) {
  const client = trpcClient(token, { batch: false });
  const domain = await verifiedDomain(client);
  return client.mailboxes.add.mutate({ domainId: domain.id, address: `sales@${domain.name}`, ...settings });
}

/** Queues an email through emails.create: its SEND_EMAIL job (id = email id) is committed with it and sent to the high queue. */
export async function queueEmail(
  token: string,
  mailboxId: string,
  extra: { campaignId?: string; customFields?: Record<string, string> } = {},
  client: Pick<ReturnType<typeof trpcClient>, "leads" | "emails"> = trpcClient(token, { batch: false }),
) {
  const lead = await client.leads.create.mutate({ email: fakeEmail(), ...(extra.customFields ? { customFields: extra.customFields } : {}) });
  return client.emails.create.mutate({ leadId: lead.id, mailboxId, subject: "Hi", body: emailBody, ...(extra.campaignId ? { campaignId: extra.campaignId } : {}) });
}

/** Runs a cron trigger through the Worker's scheduled handler, as the platform would. */
export async function runCron(schedule: keyof typeof schedules): Promise<void> {
  await worker.scheduled(createScheduledController({ cron: schedules[schedule], scheduledTime: new Date() }), env, createExecutionContext());
}

/** OLTP statements as the platform's internal 'system' role, in one transaction; returns each one's rows. */
export async function asOltpSystem(build: (sql: NeonQueryFunction<false, false>) => NeonQueryPromise<false, false>[]): Promise<Record<string, unknown>[][]> {
  const sql = oltpSql();
  const [, ...results] = await sql.transaction([sql`select set_config('app.current_role', 'system', true)`, ...build(sql)]);
  return results as Record<string, unknown>[][];
}
