// The SEND_EMAIL outbox: its ledger row, written in the queued email's own transaction, and the message that runs it.
import { sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { jobDefinitions } from "../messages";
import type { QueuedMessage } from "./enqueue";

const definition = jobDefinitions.SEND_EMAIL;

/**
 * Inserts the email's SEND_EMAIL job (id = the email's id) only if the email row exists in this
 * transaction: a suppressed lead or a foreign mailbox inserts neither. The idempotency key makes
 * a second statement for the same email a no-op.
 */
export const sendEmailJobStatement = (db: NeonHttpDatabase, tenantId: string, emailId: string): BatchItem<"pg"> =>
  db.execute(sql`
    insert into jobs (id, tenant_id, type, payload, priority, max_attempts, idempotency_key)
    select e.id, e.tenant_id, 'SEND_EMAIL', jsonb_build_object('emailId', e.id), ${definition.priority}, ${definition.maxAttempts}, 'email:' || e.id
    from emails e where e.tenant_id = ${tenantId} and e.id = ${emailId} and e.status = 'queued'
    on conflict do nothing`);

/** The message to send once the email's transaction has committed; a lost send is healed by the relay. */
export const sendEmailMessage = (email: { id: string; tenantId: string }): QueuedMessage => ({
  priority: definition.priority,
  message: { jobId: email.id, type: "SEND_EMAIL", tenantId: email.tenantId, payload: { emailId: email.id }, enqueuedAt: new Date().toISOString() },
});
