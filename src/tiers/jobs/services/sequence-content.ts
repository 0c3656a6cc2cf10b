// A sequence step's email is rendered and stored when SEND_EMAIL sends it, not when the sequencer creates it.
//
// Why at send time: the sequencer is one serial pass per tenant, and rendering, compressing against the step's
// template, hashing and putting each body to R2 cost it about 1.2 ms a lead, four times its OLTP work (issue 16's
// bench:campaigns). SEND_EMAIL runs as many at once as the queue delivers, does this only for emails actually sent
// (a lead who replies, bounces or is erased before its send costs no render and no blob), and renders from the lead
// as it is then. The sequencer still renders the step in memory to decide (a missing variable skips the lead with its
// reason) and to store the subject; the body it leaves to this module, its email marked with `pendingSequenceKey`.
import { type SQL, sql } from "drizzle-orm";
import { tenantBatch, type TenantScope } from "../../../platform/db";
import { messageIdFor } from "../../../platform/email";
import type { Services } from "../../../platform/services";
import { catalogStatementsForMany, contentConfig, prepareEmailContent, storeContent } from "../../content";
import { renderStep, type StepVariant } from "../../oltp";

/** The content key of a step's email until its send renders it; the content tier's own key (`emails/<id>`) after. */
export const pendingSequenceKey = (emailId: string) => `sequence/${emailId}`;

/** Columns sendContext reads for the render, all in its one statement (aliases: e email, l lead). */
export const sequenceRenderColumns: SQL = sql`
  e.content_storage_key, e.variant,
  (select s.variants from sequence_steps s where s.tenant_id = e.tenant_id and s.id = e.step_id) as step_variants,
  l.first_name, l.last_name, l.company, l.custom_fields,
  th.id as thread_email_id, th.subject as thread_subject, th.address as thread_address`;

/** The thread's first email, when this one is a follow-up (the lead's thread names another email). */
export const sequenceThreadJoin: SQL = sql`
  left join lateral (
    select te.id, te.subject, tm.address
    from campaign_leads cl
    join emails te on te.tenant_id = cl.tenant_id and te.id = cl.thread_email_id
    left join mailboxes tm on tm.tenant_id = te.tenant_id and tm.id = te.mailbox_id
    where cl.tenant_id = e.tenant_id and cl.campaign_id = e.campaign_id and cl.lead_id = e.lead_id and cl.thread_email_id <> e.id
  ) th on e.content_storage_key like 'sequence/%'`;

export interface SequenceRenderContext {
  content_storage_key: string;
  variant: string | null;
  step_variants: StepVariant[] | null;
  lead_email: string;
  subject: string;
  mailbox_address: string;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  custom_fields: Record<string, string | number | boolean | null> | null;
  thread_email_id: string | null;
  thread_subject: string | null;
  thread_address: string | null;
}

export type SequenceBody = { text: string; html: string; headers: Record<string, string>; attachments: [] } | { skipped: string };

/**
 * Renders the step's variant for the lead, stores the body through the content tier (compressed against the
 * variant's template, deduplicated) and catalogues it in one OLTP transaction that also gives the email its
 * content key; then queues its indexing. A variable the lead no longer has skips the email with the reason.
 * Repeated (a redelivery after the catalog committed) it is not reached: sendContext then finds the content key.
 */
export async function renderSequenceEmail(services: Services, scope: TenantScope, emailId: string, context: SequenceRenderContext): Promise<SequenceBody> {
  const variant = context.step_variants?.find((v) => v.label === context.variant);
  if (!variant) return { skipped: "step_variant_removed" };
  const outcome = renderStep(
    variant,
    { email: context.lead_email, firstName: context.first_name, lastName: context.last_name, company: context.company, customFields: context.custom_fields ?? {} },
    context.thread_subject,
  );
  if ("skipped" in outcome) return outcome;
  const headers: Record<string, string> = { "Message-ID": messageIdFor(emailId, context.mailbox_address) };
  if (context.thread_email_id) {
    const thread = messageIdFor(context.thread_email_id, context.thread_address ?? context.mailbox_address);
    headers["In-Reply-To"] = thread;
    headers.References = thread;
  }
  const body = { text: outcome.rendered.text, html: outcome.rendered.html, headers, template: outcome.rendered.template };
  const prepared = await prepareEmailContent(scope.tenantId, { body, attachments: [] }, contentConfig);
  const stored = await storeContent(services.env.CONTENT_BUCKET, prepared, contentConfig);
  const t = scope.tenantId;
  await tenantBatch(services.store("oltp"), scope, (db) => [
    // Claims the render: a concurrent attempt finds the key changed and its catalog insert conflicts, rolling it back.
    db.execute(sql`update emails set content_storage_key = 'emails/' || id::text
                   where tenant_id = ${t} and id = ${emailId} and content_storage_key = ${pendingSequenceKey(emailId)}`),
    // A step's emails never count against the storage limit: a running campaign does not fail half-way (docs/content.md).
    ...catalogStatementsForMany(db, t, [{ id: emailId, subject: context.subject, prepared, stored }]),
  ]);
  await services.jobs.send([services.jobs.direct("INDEX_CONTENT", t, { emailId })]).catch((error: unknown) => {
    services.logger.warn("INDEX_CONTENT not queued; the consistency cron will queue it", { emailId, error });
  });
  return { text: body.text, html: body.html, headers, attachments: [] };
}
