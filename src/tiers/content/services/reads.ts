// Reading an email's content: one catalog round trip, then R2 reads that are decoded and verified against their hash.
import { sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { contentConfig } from "../config";
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

export interface PartRow {
  position: number;
  hash: string;
  filename: string | null;
  mimeType: string;
  disposition: string;
  storageKey: string | null;
  algorithm: string | null;
  rawSize: number | null;
  /** Set for `deflate-dict`: the template object it decodes with. */
  dictionaryHash: string | null;
  dictionaryKey: string | null;
  dictionaryAlgorithm: string | null;
}

const dictionaries = alias(contentObjects, "dictionaries");

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
        dictionaryHash: contentObjects.dictionaryHash,
        dictionaryKey: dictionaries.storageKey,
        dictionaryAlgorithm: dictionaries.algorithm,
      })
      .from(emailContentParts)
      .leftJoin(contentObjects, sql`${contentObjects.tenantId} = ${emailContentParts.tenantId} and ${contentObjects.hash} = ${emailContentParts.hash}`)
      .leftJoin(dictionaries, sql`${dictionaries.tenantId} = ${contentObjects.tenantId} and ${dictionaries.hash} = ${contentObjects.dictionaryHash}`)
      .where(sql`${emailContentParts.tenantId} = ${scope.tenantId} and ${emailContentParts.emailId} = ${emailId}`)
      .orderBy(emailContentParts.position),
  ]);
  const subject = contents[0]?.subject;
  if (subject === undefined) throw new AppError("NOT_FOUND", "Email content not found", { tier: "content" });
  return { subject, parts };
}

/**
 * Verified template bytes by storage key. Content-addressed objects never change, so an isolate may keep
 * them: a campaign's reads then cost one R2 read each, not two. Bounded by total bytes, oldest out first.
 */
const dictionaryCache = new Map<string, Uint8Array>();
const dictionaryCacheBytes = 8 * 1024 * 1024;
let cachedBytes = 0;

async function readDictionary(bucket: ContentBucket, part: PartRow): Promise<Uint8Array> {
  const { dictionaryHash: hash, dictionaryKey: key, dictionaryAlgorithm: algorithm } = part;
  // The catalog keeps a template while anything compressed against it exists: its absence is corruption.
  if (!hash || !key || !algorithm) throw new IntegrityError(part.storageKey ?? part.hash, part.hash, "dictionary missing");
  const cached = dictionaryCache.get(key);
  if (cached) return cached;
  const bytes = await readObject(bucket, key, hash, algorithm);
  if (!bytes) throw new IntegrityError(key, hash, "dictionary missing");
  dictionaryCache.set(key, bytes);
  cachedBytes += bytes.byteLength;
  for (const [oldest, value] of dictionaryCache) {
    if (cachedBytes <= dictionaryCacheBytes) break;
    dictionaryCache.delete(oldest);
    cachedBytes -= value.byteLength;
  }
  return bytes;
}

export async function readPart(deps: ContentReadDeps, scope: TenantScope, part: PartRow): Promise<Uint8Array> {
  const gone = () => new AppError("NOT_FOUND", "This content has expired and was deleted", { tier: "content", details: { position: part.position } });
  if (!part.storageKey || !part.algorithm) throw gone();
  try {
    const dictionary = part.algorithm === "deflate-dict" ? await readDictionary(deps.bucket, part) : undefined;
    const bytes = await readObject(deps.bucket, part.storageKey, part.hash, part.algorithm, dictionary);
    if (!bytes) throw gone();
    return bytes;
  } catch (error) {
    if (error instanceof IntegrityError) await deps.reportIntegrityFailure(error, scope).catch(() => undefined);
    throw error;
  }
}

/** An attachment with its bytes (base64), as a provider takes it. */
export interface AttachmentFile {
  filename: string | null;
  mimeType: string;
  disposition: string;
  content: string;
}

/**
 * The body and every attachment's bytes, for sending: one catalog round trip, then the R2 reads. Files
 * streamed in above the inline limit are read too; the provider takes them whole.
 */
export async function getEmailForSending(deps: ContentReadDeps, scope: TenantScope, emailId: string): Promise<EmailBody & { attachments: AttachmentFile[] }> {
  const { parts } = await partsOf(deps.store, scope, emailId);
  const body = parts.find((p) => p.position === 0);
  if (!body) throw new AppError("NOT_FOUND", "Email content not found", { tier: "content" });
  const [bodyBytes, ...files] = await Promise.all([body, ...parts.filter((p) => p.position > 0)].map((part) => readPart(deps, scope, part)));
  const attachments = parts
    .filter((p) => p.position > 0)
    .map((p, i) => ({ filename: p.filename, mimeType: p.mimeType, disposition: p.disposition, content: toBase64(files[i]!) }));
  return { ...parseBody(bodyBytes!), attachments };
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

/** One attachment's catalog row (1 OLTP round trip); another tenant's email is NOT_FOUND. */
export async function attachmentPart(deps: ContentReadDeps, scope: TenantScope, emailId: string, position: number): Promise<PartRow> {
  const { parts } = await partsOf(deps.store, scope, emailId);
  const part = parts.find((p) => p.position === position && p.position > 0);
  if (!part) throw new AppError("NOT_FOUND", "Attachment not found", { tier: "content" });
  return part;
}

export async function getAttachment(deps: ContentReadDeps, scope: TenantScope, emailId: string, position: number): Promise<AttachmentContent> {
  const part = await attachmentPart(deps, scope, emailId, position);
  // Base64 inside JSON is built whole in memory: a file above the inline limit only streams.
  if ((part.rawSize ?? 0) > contentConfig.maxAttachmentBytes) {
    throw new AppError("PAYLOAD_TOO_LARGE", `This attachment is streamed only: GET /v1/content/emails/${emailId}/attachments/${position}`, {
      tier: "content",
      details: { size: part.rawSize, limit: contentConfig.maxAttachmentBytes },
    });
  }
  const bytes = await readPart(deps, scope, part);
  return { position, filename: part.filename, mimeType: part.mimeType, disposition: part.disposition, size: bytes.byteLength, content: toBase64(bytes) };
}
