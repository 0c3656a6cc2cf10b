// emails.create with a body, the cross-tier write: content to R2 first (through the content tier), then email metadata and catalog rows in one OLTP transaction, cleanup if that fails.
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import {
  catalogStatements,
  contentObjects,
  type ContentWriteDeps,
  contentWriteDeps,
  deleteObjects,
  type EmailContentInput,
  emailContents,
  prepareEmailContent,
  storeContent,
} from "../../content";
import type { Services } from "../../../platform/services";
import { emails } from "../schema";
import { createEmail, type Email, type NewEmail } from "./emails";
import { timeOrderedId } from "../../../platform/ids";

export type NewEmailWithContent = Omit<NewEmail, "contentStorageKey"> & EmailContentInput & { idempotencyKey?: string | undefined };

/** The opaque key OLTP keeps: the content tier resolves it through its catalog. */
export const emailContentKey = (emailId: string) => `emails/${emailId}`;

function isIdempotencyConflict(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 6; depth++) {
    if ((current as { constraint?: unknown }).constraint === "email_contents_idempotency_idx") return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The email an earlier call with this idempotency key created: one round trip. */
async function emailByIdempotencyKey(store: TierStore, scope: TenantScope, key: string): Promise<Email | undefined> {
  const [rows] = await tenantBatch(store, scope, (db) => [
    db
      .select({ email: emails })
      .from(emails)
      .innerJoin(emailContents, sql`${emailContents.tenantId} = ${emails.tenantId} and ${emailContents.emailId} = ${emails.id}`)
      .where(sql`${emailContents.tenantId} = ${scope.tenantId} and ${emailContents.idempotencyKey} = ${key}`),
  ]);
  return rows[0]?.email;
}

/**
 * Deletes blobs this call created unless a catalog row now names them (a concurrent writer of the same
 * bytes may have committed in between). If OLTP cannot answer, the blobs stay: an unreferenced blob
 * costs storage, a deleted referenced one loses mail.
 */
async function cleanUp(deps: ContentWriteDeps, scope: TenantScope, createdKeys: string[]): Promise<void> {
  if (createdKeys.length === 0) return;
  try {
    const [referenced] = await tenantBatch(deps.store, scope, (db) => [
      db
        .select({ key: contentObjects.storageKey })
        .from(contentObjects)
        .where(sql`${contentObjects.tenantId} = ${scope.tenantId} and ${contentObjects.storageKey} in ${createdKeys}`),
    ]);
    const keep = new Set(referenced.map((r) => r.key));
    await deleteObjects(deps.bucket, createdKeys.filter((key) => !keep.has(key)));
  } catch (error) {
    deps.logger.warn("content cleanup left blobs behind", { keys: createdKeys, error });
  }
}

/**
 * Returns the email (new, or the one an earlier call with the same idempotency key created) and
 * whether it was created now. R2 writes, then exactly one OLTP round trip, then one queue send.
 */
export async function createEmailWithContent(
  services: Services,
  scope: TenantScope,
  input: NewEmailWithContent,
): Promise<{ email: Email; created: boolean }> {
  const deps = contentWriteDeps(services);
  try {
    return await writeEmailWithContent(services, deps, scope, input);
  } catch (error) {
    // The pruning purged a blob this write found in R2 before its commit: once more, and R2 lacks it now.
    if (!isPurgedContent(error)) throw error;
    return writeEmailWithContent(services, deps, scope, input);
  }
}

function isPurgedContent(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 6; depth++) {
    if ((current as { code?: unknown }).code === "40001") return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

async function writeEmailWithContent(
  services: Services,
  deps: ContentWriteDeps,
  scope: TenantScope,
  input: NewEmailWithContent,
): Promise<{ email: Email; created: boolean }> {
  const prepared = await prepareEmailContent(scope.tenantId, input, deps.config);
  const stored = await storeContent(deps.bucket, prepared, deps.config);
  const createdKeys = stored.created;
  const id = timeOrderedId();
  let email: Email;
  try {
    email = await createEmail(
      services,
      scope,
      { leadId: input.leadId, mailboxId: input.mailboxId, campaignId: input.campaignId, stepId: input.stepId, subject: input.subject, contentStorageKey: emailContentKey(id), id },
      (db) => catalogStatements(db, scope.tenantId, { id, subject: input.subject, idempotencyKey: input.idempotencyKey }, prepared, stored),
    );
  } catch (error) {
    await cleanUp(deps, scope, createdKeys);
    if (input.idempotencyKey && isIdempotencyConflict(error)) {
      const earlier = await emailByIdempotencyKey(deps.store, scope, input.idempotencyKey);
      if (earlier) return { email: earlier, created: false };
      throw new AppError("CONFLICT", "A write with this idempotency key is in progress; retry shortly", { tier: "content" });
    }
    throw error;
  }
  await deps.queueIndexing(scope.tenantId, email.id).catch((error: unknown) => {
    deps.logger.warn("INDEX_CONTENT not queued; the consistency cron will queue it", { emailId: email.id, error });
  });
  return { email, created: true };
}
