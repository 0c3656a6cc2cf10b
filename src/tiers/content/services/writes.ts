// The content half of the cross-tier email write: validate and encode, put to R2 first, then catalog rows inside the OLTP transaction.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import { AppError } from "../../../core/errors";
import type { ContentConfig } from "../config";
import { contentObjects, contentSettings, emailContentParts, emailContents, defaultRetentionDays } from "../schema";
import { encodeObject, putObjects, type ContentBucket, type EncodedObject } from "./blobs";
import { serializeBody, type EmailBody } from "./bodies";

export interface AttachmentInput {
  filename: string;
  mimeType: string;
  /** Base64 of the file's bytes. */
  content: string;
  disposition: "attachment" | "inline";
}

export interface EmailContentInput {
  body: EmailBody;
  attachments: AttachmentInput[];
}

interface PreparedPart {
  position: number;
  object: EncodedObject;
  kind: "body" | "attachment";
  filename: string | null;
  mimeType: string;
  disposition: "body" | "attachment" | "inline";
}

export interface PreparedContent {
  parts: PreparedPart[];
}

function decodeBase64(content: string, index: number): Uint8Array {
  try {
    return Uint8Array.from(atob(content), (c) => c.charCodeAt(0));
  } catch {
    throw new AppError("VALIDATION_FAILED", "An attachment's content is not valid base64", {
      details: [{ path: `attachments.${index}.content`, message: "not base64" }],
    });
  }
}

const tooLarge = (path: string, size: number, limit: number) =>
  new AppError("PAYLOAD_TOO_LARGE", `${path} is ${size} bytes; the limit is ${limit}`, { tier: "content", details: { path, size, limit } });

/** Checks limits and types, then hashes and compresses every part. Nothing is written yet. */
export async function prepareEmailContent(tenantId: string, input: EmailContentInput, config: ContentConfig): Promise<PreparedContent> {
  const body = serializeBody(input.body);
  if (body.byteLength > config.maxBodyBytes) throw tooLarge("body", body.byteLength, config.maxBodyBytes);
  if (input.attachments.length > config.maxAttachments) {
    throw new AppError("VALIDATION_FAILED", `At most ${config.maxAttachments} attachments per email`, {
      details: [{ path: "attachments", message: `at most ${config.maxAttachments}` }],
    });
  }
  const files = input.attachments.map((attachment, index) => {
    const mimeType = attachment.mimeType.toLowerCase();
    if (!config.allowedAttachmentTypes.includes(mimeType)) {
      throw new AppError("VALIDATION_FAILED", `Attachments of type ${mimeType} are not accepted`, {
        details: [{ path: `attachments.${index}.mimeType`, message: "type not allowed" }],
      });
    }
    // Base64 is 4/3 of the bytes: refuse before decoding what is certainly too large.
    if (attachment.content.length > Math.ceil(config.maxAttachmentBytes / 3) * 4 + 4) {
      throw tooLarge(`attachments.${index}`, Math.floor((attachment.content.length * 3) / 4), config.maxAttachmentBytes);
    }
    const bytes = decodeBase64(attachment.content, index);
    if (bytes.byteLength > config.maxAttachmentBytes) throw tooLarge(`attachments.${index}`, bytes.byteLength, config.maxAttachmentBytes);
    return { ...attachment, mimeType, bytes };
  });
  const parts: PreparedPart[] = [
    { position: 0, object: await encodeObject(tenantId, body, config.exhaustiveCompressionBytes), kind: "body", filename: null, mimeType: "message/x-edp-body", disposition: "body" },
  ];
  for (const [index, file] of files.entries()) {
    parts.push({
      position: index + 1,
      object: await encodeObject(tenantId, file.bytes, config.exhaustiveCompressionBytes),
      kind: "attachment",
      filename: file.filename,
      mimeType: file.mimeType,
      disposition: file.disposition,
    });
  }
  return { parts };
}

export const storeContent = (bucket: ContentBucket, prepared: PreparedContent) => putObjects(bucket, prepared.parts.map((p) => p.object));

/**
 * Catalog statements for the email's OLTP transaction. Each runs only if the email row was inserted
 * by the statement before (a suppressed lead inserts none), so references count committed emails only.
 * A reused idempotency key violates email_contents' unique index and rolls the whole transaction back.
 */
export function catalogStatements(
  db: NeonHttpDatabase,
  tenantId: string,
  email: { id: string; subject: string; idempotencyKey?: string | undefined },
  prepared: PreparedContent,
): [BatchItem<"pg">, ...BatchItem<"pg">[]] {
  const emailExists = sql`exists (select 1 from emails where tenant_id = ${tenantId} and id = ${email.id})`;
  const retention = sql`make_interval(days => coalesce((select ${contentSettings.retentionDays} from ${contentSettings} where ${contentSettings.tenantId} = ${tenantId}), ${defaultRetentionDays}))`;
  const uses = new Map<string, { part: PreparedPart; count: number }>();
  for (const part of prepared.parts) {
    const seen = uses.get(part.object.hash);
    uses.set(part.object.hash, { part: seen?.part ?? part, count: (seen?.count ?? 0) + 1 });
  }
  const objectRows: SQL[] = [...uses.values()].map(
    ({ part: { object, kind, mimeType }, count }) =>
      sql`(${object.hash}, ${kind}, ${object.storageKey}, ${object.rawSize}::bigint, ${object.storedSize}::bigint, ${object.algorithm}, ${mimeType}, ${count}::int)`,
  );
  const partRows: SQL[] = prepared.parts.map(
    (p) => sql`(${p.position}::int, ${p.object.hash}, ${p.filename}, ${p.mimeType}, ${p.disposition})`,
  );
  return [
    db.execute(sql`
      insert into ${emailContents} (tenant_id, email_id, idempotency_key, subject)
      select ${tenantId}::uuid, ${email.id}::uuid, ${email.idempotencyKey ?? null}, ${email.subject} where ${emailExists}`),
    db.execute(sql`
      insert into ${contentObjects} (tenant_id, hash, kind, storage_key, raw_size, stored_size, algorithm, mime_type, ref_count, expires_at)
      select ${tenantId}::uuid, v.hash, v.kind, v.storage_key, v.raw_size, v.stored_size, v.algorithm, v.mime_type, v.uses, now() + ${retention}
      from (values ${sql.join(objectRows, sql`, `)}) as v(hash, kind, storage_key, raw_size, stored_size, algorithm, mime_type, uses)
      where ${emailExists}
      on conflict (tenant_id, hash) do update
        set ref_count = ${contentObjects.refCount} + excluded.ref_count,
            expires_at = greatest(${contentObjects.expiresAt}, excluded.expires_at)`),
    db.execute(sql`
      insert into ${emailContentParts} (tenant_id, email_id, position, hash, filename, mime_type, disposition)
      select ${tenantId}::uuid, ${email.id}::uuid, v.position, v.hash, v.filename, v.mime_type, v.disposition
      from (values ${sql.join(partRows, sql`, `)}) as v(position, hash, filename, mime_type, disposition)
      where ${emailExists}`),
  ];
}

/** Releases an email's references: its parts go, each object's count drops by its uses; blobs go later, with the pruning cron. */
export function releaseStatements(db: NeonHttpDatabase, tenantId: string, emailId: string): [BatchItem<"pg">, ...BatchItem<"pg">[]] {
  return [
    db.execute(sql`
      with released as (
        delete from ${emailContentParts} where tenant_id = ${tenantId} and email_id = ${emailId} returning hash
      ), uses as (select hash, count(*)::int as n from released group by hash)
      update ${contentObjects} o set ref_count = o.ref_count - uses.n
      from uses where o.tenant_id = ${tenantId} and o.hash = uses.hash`),
    db.execute(sql`delete from ${emailContents} where tenant_id = ${tenantId} and email_id = ${emailId}`),
  ];
}
