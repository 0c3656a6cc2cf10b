// The content half of the cross-tier email write: validate and encode, put to R2 first, then catalog rows inside the OLTP transaction.
import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { NeonHttpDatabase } from "drizzle-orm/neon-http";
import type { TierStore } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import type { Logger } from "../../../platform/logger";
import type { ContentConfig } from "../config";
import { contentObjects, contentSettings, emailContentParts, emailContents, defaultRetentionDays } from "../schema";
import { hashObject, putObjects, storageKey, type ContentBucket, type HashedObject, type StoredObject } from "./blobs";
import { serializeBody, type EmailBody } from "./bodies";

/** Either `content` (base64 of the bytes) or `sha256` of a file streamed earlier to PUT /v1/content/attachments/:sha256. */
export interface AttachmentInput {
  filename: string;
  mimeType: string;
  content?: string | undefined;
  sha256?: string | undefined;
  disposition: "attachment" | "inline";
}

export interface EmailContentInput {
  /**
   * `template`: the text a campaign render was made from (the step's HTML, its text part, or both
   * concatenated). It is stored once per tenant as a content object and the body is compressed with it
   * as a preset dictionary, so each personalised copy costs about its differences.
   */
  body: EmailBody & { template?: string | undefined };
  attachments: AttachmentInput[];
}

interface PreparedPart {
  position: number;
  object: HashedObject;
  kind: "body" | "attachment";
  filename: string | null;
  mimeType: string;
  disposition: "body" | "attachment" | "inline";
}

export interface PreparedContent {
  parts: PreparedPart[];
  /** The template the body is offered as a dictionary; null when none was given. */
  template: HashedObject | null;
}

/** The R2 step's outcome: how every object is stored, and which keys this call created. */
export interface StoredContent {
  created: string[];
  objects: Map<string, StoredObject>;
}

const encoder = new TextEncoder();

/** A plain loop: `Uint8Array.from` with a mapping callback costs ~100 ns a byte, 10 ms for a 100 KiB file. */
function decodeBase64(content: string, index: number): Uint8Array {
  try {
    const binary = atob(content);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    throw new AppError("VALIDATION_FAILED", "An attachment's content is not valid base64", {
      details: [{ path: `attachments.${index}.content`, message: "not base64" }],
    });
  }
}

const tooLarge = (path: string, size: number, limit: number) =>
  new AppError("PAYLOAD_TOO_LARGE", `${path} is ${size} bytes; the limit is ${limit}`, { tier: "content", details: { path, size, limit } });

/** Checks limits and types, then hashes every part; compression waits until R2 is known to lack the object. Nothing is written yet. */
export async function prepareEmailContent(tenantId: string, input: EmailContentInput, config: ContentConfig): Promise<PreparedContent> {
  const body = serializeBody(input.body);
  if (body.byteLength > config.maxBodyBytes) throw tooLarge("body", body.byteLength, config.maxBodyBytes);
  const template = input.body.template ? encoder.encode(input.body.template) : null;
  if (template && template.byteLength > config.maxBodyBytes) throw tooLarge("body.template", template.byteLength, config.maxBodyBytes);
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
    if (attachment.content === undefined) {
      if (!attachment.sha256 || !/^[0-9a-f]{64}$/.test(attachment.sha256)) {
        throw new AppError("VALIDATION_FAILED", "An attachment needs content or the sha256 of an upload", {
          details: [{ path: `attachments.${index}`, message: "content or sha256 (64 lowercase hex digits)" }],
        });
      }
      return { ...attachment, mimeType, bytes: null, sha256: attachment.sha256 };
    }
    // Base64 is 4/3 of the bytes: refuse before decoding what is certainly too large.
    if (attachment.content.length > Math.ceil(config.maxAttachmentBytes / 3) * 4 + 4) {
      throw tooLarge(`attachments.${index}`, Math.floor((attachment.content.length * 3) / 4), config.maxAttachmentBytes);
    }
    const bytes = decodeBase64(attachment.content, index);
    if (bytes.byteLength > config.maxAttachmentBytes) throw tooLarge(`attachments.${index}`, bytes.byteLength, config.maxAttachmentBytes);
    return { ...attachment, mimeType, bytes, sha256: null };
  });
  const templateObject = template ? await hashObject(tenantId, template) : null;
  const dictionary = templateObject ? { hash: templateObject.hash, bytes: templateObject.raw } : undefined;
  const parts: PreparedPart[] = [
    { position: 0, object: await hashObject(tenantId, body, dictionary), kind: "body", filename: null, mimeType: "message/x-edp-body", disposition: "body" },
  ];
  for (const [index, file] of files.entries()) {
    parts.push({
      position: index + 1,
      object: file.bytes ? await hashObject(tenantId, file.bytes) : { hash: file.sha256!, storageKey: storageKey(tenantId, file.sha256!), raw: null },
      kind: "attachment",
      filename: file.filename,
      mimeType: file.mimeType,
      disposition: file.disposition,
    });
  }
  return { parts, template: templateObject };
}

/**
 * Puts the parts and the template side by side (one R2 hop). A template the body did not end up
 * compressed against is still catalogued, with no references, so the pruning cron reclaims it.
 */
export async function storeContent(bucket: ContentBucket, prepared: PreparedContent, config: ContentConfig): Promise<StoredContent> {
  const objects = [...(prepared.template ? [prepared.template] : []), ...prepared.parts.map((p) => p.object)];
  const { created, stored } = await putObjects(bucket, objects, config.exhaustiveCompressionBytes);
  return { created, objects: stored };
}

/**
 * Catalog statements for the email's OLTP transaction. Each runs only if the email row was inserted
 * by the statement before (a suppressed lead inserts none), so references count committed emails only.
 * A reused idempotency key violates email_contents' unique index and rolls the whole transaction back.
 *
 * A template's `ref_count` counts the email parts whose object was compressed against it, so it lives
 * exactly as long as something needs it to decode. The last statement counts those from the rows as
 * stored, not from this call's encoding: bytes first stored by another write keep that write's algorithm.
 */
export function catalogStatements(
  db: NeonHttpDatabase,
  tenantId: string,
  email: { id: string; subject: string; idempotencyKey?: string | undefined },
  prepared: PreparedContent,
  stored: StoredContent,
): [BatchItem<"pg">, ...BatchItem<"pg">[]] {
  const emailExists = sql`exists (select 1 from emails where tenant_id = ${tenantId} and id = ${email.id})`;
  const retention = sql`make_interval(days => coalesce((select ${contentSettings.retentionDays} from ${contentSettings} where ${contentSettings.tenantId} = ${tenantId}), ${defaultRetentionDays}))`;
  const storedAs = (object: HashedObject) => {
    const found = stored.objects.get(object.hash);
    if (!found) throw new Error(`object ${object.hash} was not stored`);
    return found;
  };
  const uses = new Map<string, { object: StoredObject; kind: string; mimeType: string; count: number }>();
  for (const { object, kind, mimeType } of prepared.parts) {
    const seen = uses.get(object.hash);
    uses.set(object.hash, { object: storedAs(object), kind: seen?.kind ?? kind, mimeType: seen?.mimeType ?? mimeType, count: (seen?.count ?? 0) + 1 });
  }
  const { template } = prepared;
  if (template && !uses.has(template.hash)) uses.set(template.hash, { object: storedAs(template), kind: "template", mimeType: "text/html", count: 0 });
  const objectRows: SQL[] = [...uses.values()].map(
    ({ object, kind, mimeType, count }) =>
      sql`(${object.hash}, ${kind}, ${object.storageKey}, ${object.rawSize}::bigint, ${object.storedSize}::bigint, ${object.algorithm}, ${object.dictionaryHash}, ${mimeType}, ${count}::int)`,
  );
  const partRows: SQL[] = prepared.parts.map(
    (p) => sql`(${p.position}::int, ${p.object.hash}, ${p.filename}, ${p.mimeType}, ${p.disposition})`,
  );
  // Bytes this call found in R2 rather than wrote: if the pruning purged them since (a purged tombstone),
  // the transaction fails with 40001 and the write starts over (content_assert_live, drizzle/oltp).
  const created = new Set(stored.created);
  const reused = [...uses.values()].filter((u) => !created.has(u.object.storageKey)).map((u) => u.object.hash);
  const assertLive = reused.length > 0 ? [db.execute(sql`select content_assert_live(${tenantId}::uuid, ${`{${reused.join(",")}}`}::text[])`)] : [];
  return [
    db.execute(sql`
      insert into ${emailContents} (tenant_id, email_id, idempotency_key, subject)
      select ${tenantId}::uuid, ${email.id}::uuid, ${email.idempotencyKey ?? null}, ${email.subject} where ${emailExists}`),
    db.execute(sql`
      insert into ${contentObjects} (tenant_id, hash, kind, storage_key, raw_size, stored_size, algorithm, dictionary_hash, mime_type, ref_count, expires_at)
      select ${tenantId}::uuid, v.hash, v.kind, v.storage_key, v.raw_size, v.stored_size, v.algorithm, v.dictionary_hash, v.mime_type, v.uses, now() + ${retention}
      from (values ${sql.join(objectRows, sql`, `)}) as v(hash, kind, storage_key, raw_size, stored_size, algorithm, dictionary_hash, mime_type, uses)
      where ${emailExists}
      on conflict (tenant_id, hash) do update
        set ref_count = ${contentObjects.refCount} + excluded.ref_count,
            expires_at = greatest(${contentObjects.expiresAt}, excluded.expires_at)`),
    db.execute(sql`
      insert into ${emailContentParts} (tenant_id, email_id, position, hash, filename, mime_type, disposition)
      select ${tenantId}::uuid, ${email.id}::uuid, v.position, v.hash, v.filename, v.mime_type, v.disposition
      from (values ${sql.join(partRows, sql`, `)}) as v(position, hash, filename, mime_type, disposition)
      where ${emailExists}`),
    db.execute(sql`
      with uses as (
        select o.dictionary_hash as hash, count(*)::int as n
        from ${emailContentParts} p join ${contentObjects} o on o.tenant_id = p.tenant_id and o.hash = p.hash
        where p.tenant_id = ${tenantId} and p.email_id = ${email.id} and o.dictionary_hash is not null
        group by o.dictionary_hash)
      update ${contentObjects} d set ref_count = d.ref_count + uses.n, expires_at = greatest(d.expires_at, now() + ${retention})
      from uses where d.tenant_id = ${tenantId} and d.hash = uses.hash`),
    ...assertLive,
    // The plan's storage limit, over the catalog as this write leaves it: beyond it the whole write rolls back.
    db.execute(sql`select content_assert_within_storage_limit(${tenantId}::uuid)`),
  ];
}

/**
 * catalogStatements for many emails in one transaction (the campaign sequencer's batch): the same rows and
 * counts, as five statements whatever the number of emails instead of four or five per email. Each
 * email's rows count only if its email row exists in the transaction; objects are grouped by hash before
 * the upsert, since one statement cannot update a row twice.
 */
export function catalogStatementsForMany(
  db: NeonHttpDatabase,
  tenantId: string,
  emails: Array<{ id: string; subject: string; prepared: PreparedContent; stored: StoredContent }>,
): BatchItem<"pg">[] {
  if (emails.length === 0) return [];
  const retention = sql`make_interval(days => coalesce((select ${contentSettings.retentionDays} from ${contentSettings} where ${contentSettings.tenantId} = ${tenantId}), ${defaultRetentionDays}))`;
  const existing = sql`(select e.id from emails e where e.tenant_id = ${tenantId} and e.id = any(${`{${emails.map((e) => e.id).join(",")}}`}::uuid[]))`;
  const contents: SQL[] = [];
  const objects: SQL[] = [];
  const parts: SQL[] = [];
  const reused = new Set<string>();
  for (const email of emails) {
    const storedAs = (object: HashedObject) => {
      const found = email.stored.objects.get(object.hash);
      if (!found) throw new Error(`object ${object.hash} was not stored`);
      return found;
    };
    contents.push(sql`(${email.id}::uuid, ${email.subject})`);
    const uses = new Map<string, { object: StoredObject; kind: string; mimeType: string; count: number }>();
    for (const { object, kind, mimeType } of email.prepared.parts) {
      const seen = uses.get(object.hash);
      uses.set(object.hash, { object: storedAs(object), kind: seen?.kind ?? kind, mimeType: seen?.mimeType ?? mimeType, count: (seen?.count ?? 0) + 1 });
    }
    const { template } = email.prepared;
    if (template && !uses.has(template.hash)) uses.set(template.hash, { object: storedAs(template), kind: "template", mimeType: "text/html", count: 0 });
    const created = new Set(email.stored.created);
    for (const { object, kind, mimeType, count } of uses.values()) {
      objects.push(
        sql`(${email.id}::uuid, ${object.hash}, ${kind}, ${object.storageKey}, ${object.rawSize}::bigint, ${object.storedSize}::bigint, ${object.algorithm}, ${object.dictionaryHash}, ${mimeType}, ${count}::int)`,
      );
      if (!created.has(object.storageKey)) reused.add(object.hash);
    }
    for (const p of email.prepared.parts) parts.push(sql`(${email.id}::uuid, ${p.position}::int, ${p.object.hash}, ${p.filename}, ${p.mimeType}, ${p.disposition})`);
  }
  const assertLive = reused.size > 0 ? [db.execute(sql`select content_assert_live(${tenantId}::uuid, ${`{${[...reused].join(",")}}`}::text[])`)] : [];
  return [
    db.execute(sql`
      insert into ${emailContents} (tenant_id, email_id, subject)
      select ${tenantId}::uuid, v.email_id, v.subject from (values ${sql.join(contents, sql`, `)}) as v(email_id, subject)
      where v.email_id in ${existing}`),
    db.execute(sql`
      insert into ${contentObjects} (tenant_id, hash, kind, storage_key, raw_size, stored_size, algorithm, dictionary_hash, mime_type, ref_count, expires_at)
      select ${tenantId}::uuid, v.hash, min(v.kind), min(v.storage_key), min(v.raw_size), min(v.stored_size), min(v.algorithm), min(v.dictionary_hash), min(v.mime_type),
             sum(v.uses)::int, now() + ${retention}
      from (values ${sql.join(objects, sql`, `)}) as v(email_id, hash, kind, storage_key, raw_size, stored_size, algorithm, dictionary_hash, mime_type, uses)
      where v.email_id in ${existing}
      group by v.hash
      on conflict (tenant_id, hash) do update
        set ref_count = ${contentObjects.refCount} + excluded.ref_count,
            expires_at = greatest(${contentObjects.expiresAt}, excluded.expires_at)`),
    db.execute(sql`
      insert into ${emailContentParts} (tenant_id, email_id, position, hash, filename, mime_type, disposition)
      select ${tenantId}::uuid, v.email_id, v.position, v.hash, v.filename, v.mime_type, v.disposition
      from (values ${sql.join(parts, sql`, `)}) as v(email_id, position, hash, filename, mime_type, disposition)
      where v.email_id in ${existing}`),
    db.execute(sql`
      with uses as (
        select o.dictionary_hash as hash, count(*)::int as n
        from ${emailContentParts} p join ${contentObjects} o on o.tenant_id = p.tenant_id and o.hash = p.hash
        where p.tenant_id = ${tenantId} and p.email_id in ${existing} and o.dictionary_hash is not null
        group by o.dictionary_hash)
      update ${contentObjects} d set ref_count = d.ref_count + uses.n, expires_at = greatest(d.expires_at, now() + ${retention})
      from uses where d.tenant_id = ${tenantId} and d.hash = uses.hash`),
    ...assertLive,
  ];
}

/**
 * Releases an email's references: its parts go, each object's count drops by its uses and each
 * template's by the uses of objects compressed against it; blobs go later, with the pruning cron. One
 * UPDATE with summed drops, because Postgres applies only one change when a statement updates a row
 * twice (a template can also be an attachment of the same email).
 */
export function releaseStatements(db: NeonHttpDatabase, tenantId: string, emailId: string): [BatchItem<"pg">, ...BatchItem<"pg">[]] {
  return [
    db.execute(sql`
      with released as (
        delete from ${emailContentParts} where tenant_id = ${tenantId} and email_id = ${emailId} returning hash
      ), uses as (select hash, count(*)::int as n from released group by hash),
      drops as (
        select hash, n from uses
        union all
        select o.dictionary_hash, uses.n from uses join ${contentObjects} o on o.tenant_id = ${tenantId} and o.hash = uses.hash
        where o.dictionary_hash is not null
      ), totals as (select hash, sum(n)::int as n from drops group by hash)
      update ${contentObjects} o set ref_count = o.ref_count - totals.n
      from totals where o.tenant_id = ${tenantId} and o.hash = totals.hash`),
    db.execute(sql`delete from ${emailContents} where tenant_id = ${tenantId} and email_id = ${emailId}`),
  ];
}

export interface ContentWriteDeps {
  store: TierStore;
  bucket: ContentBucket;
  config: ContentConfig;
  logger: Logger;
  /** Queues the search indexing of the new email; a lost send is repaired by the consistency cron. */
  queueIndexing(tenantId: string, emailId: string): Promise<void>;
}

