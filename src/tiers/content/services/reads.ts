// Reading an email's content: one catalog round trip, then R2 reads that are decoded and verified against their hash.
import { sql } from "drizzle-orm";
import { tenantBatch, type TenantScope, type TierStore } from "../../../core/db";
import { AppError } from "../../../core/errors";
import { contentObjects, emailContentParts, emailContents } from "../schema";
import { IntegrityError, readObject, type ContentBucket } from "./blobs";
import { parseBody, type EmailBody } from "./bodies";

export interface ContentReadDeps {
  store: TierStore;
  bucket: ContentBucket;
  /** Reports a blob that failed its integrity check (a system event); never blocks the answer. */
  reportIntegrityFailure(failure: IntegrityError, scope: TenantScope): Promise<void>;
}

export interface AttachmentSummary {
  position: number;
  filename: string | null;
  mimeType: string;
  disposition: string;
  size: number;
}

export interface EmailContent extends EmailBody {
  emailId: string;
  subject: string;
  attachments: AttachmentSummary[];
}

interface PartRow {
  position: number;
  hash: string;
  filename: string | null;
  mimeType: string;
  disposition: string;
  storageKey: string | null;
  algorithm: string | null;
  rawSize: number | null;
}

async function partsOf(store: TierStore, scope: TenantScope, emailId: string): Promise<{ subject: string; parts: PartRow[] }> {
  const [contents, parts] = await tenantBatch(store, scope, (db) => [
    db.select({ subject: emailContents.subject }).from(emailContents).where(sql`${emailContents.tenantId} = ${scope.tenantId} and ${emailContents.emailId} = ${emailId}`),
    db
      .select({
        position: emailContentParts.position,
        hash: emailContentParts.hash,
        filename: emailContentParts.filename,
        mimeType: emailContentParts.mimeType,
        disposition: emailContentParts.disposition,
        storageKey: contentObjects.storageKey,
        algorithm: contentObjects.algorithm,
        rawSize: contentObjects.rawSize,
      })
      .from(emailContentParts)
      .leftJoin(contentObjects, sql`${contentObjects.tenantId} = ${emailContentParts.tenantId} and ${contentObjects.hash} = ${emailContentParts.hash}`)
      .where(sql`${emailContentParts.tenantId} = ${scope.tenantId} and ${emailContentParts.emailId} = ${emailId}`)
      .orderBy(emailContentParts.position),
  ]);
  const subject = contents[0]?.subject;
  if (subject === undefined) throw new AppError("NOT_FOUND", "Email content not found", { tier: "content" });
  return { subject, parts };
}

async function readPart(deps: ContentReadDeps, scope: TenantScope, part: PartRow): Promise<Uint8Array> {
  const gone = () => new AppError("NOT_FOUND", "This content has expired and was deleted", { tier: "content", details: { position: part.position } });
  if (!part.storageKey || !part.algorithm) throw gone();
  try {
    const bytes = await readObject(deps.bucket, part.storageKey, part.hash, part.algorithm);
    if (!bytes) throw gone();
    return bytes;
  } catch (error) {
    if (error instanceof IntegrityError) await deps.reportIntegrityFailure(error, scope).catch(() => undefined);
    throw error;
  }
}

export async function getEmailContent(deps: ContentReadDeps, scope: TenantScope, emailId: string): Promise<EmailContent> {
  const { subject, parts } = await partsOf(deps.store, scope, emailId);
  const body = parts.find((p) => p.position === 0);
  if (!body) throw new AppError("NOT_FOUND", "Email content not found", { tier: "content" });
  return {
    emailId,
    subject,
    ...parseBody(await readPart(deps, scope, body)),
    attachments: parts
      .filter((p) => p.position > 0)
      .map((p) => ({ position: p.position, filename: p.filename, mimeType: p.mimeType, disposition: p.disposition, size: p.rawSize ?? 0 })),
  };
}

export interface AttachmentContent extends AttachmentSummary {
  /** Base64 of the file's bytes, exactly as uploaded. */
  content: string;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export async function getAttachment(deps: ContentReadDeps, scope: TenantScope, emailId: string, position: number): Promise<AttachmentContent> {
  const { parts } = await partsOf(deps.store, scope, emailId);
  const part = parts.find((p) => p.position === position && p.position > 0);
  if (!part) throw new AppError("NOT_FOUND", "Attachment not found", { tier: "content" });
  const bytes = await readPart(deps, scope, part);
  return { position, filename: part.filename, mimeType: part.mimeType, disposition: part.disposition, size: bytes.byteLength, content: toBase64(bytes) };
}
