// Content tier catalog (OLTP database, drizzle/oltp): what lives in R2, who references it, its search index and retention settings.
import { sql } from "drizzle-orm";
import { bigint, boolean, check, customType, index, integer, pgPolicy, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { currentRole, tenantIsolation } from "../../platform/rls";

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });
const tenantId = () => uuid("tenant_id").notNull();
const createdAt = () => timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow();

export const contentKinds = ["body", "attachment", "template"] as const;
export const compressionAlgorithms = ["raw", "gzip", "br", "deflate-dict"] as const;

/**
 * One stored blob per (tenant, SHA-256 of its raw bytes): identical content inside a tenant is stored
 * once. `ref_count` counts the email parts (and, for templates, the renders compressed against it)
 * that use it; the pruning cron deletes the blob once nothing does or it has expired.
 */
export const contentObjects = pgTable(
  "content_objects",
  {
    tenantId: tenantId(),
    hash: text("hash").notNull(),
    kind: text("kind").notNull(),
    storageKey: text("storage_key").notNull(),
    rawSize: bigint("raw_size", { mode: "number" }).notNull(),
    storedSize: bigint("stored_size", { mode: "number" }).notNull(),
    algorithm: text("algorithm").notNull(),
    /** For `deflate-dict`: the template object whose bytes are the preset dictionary. */
    dictionaryHash: text("dictionary_hash"),
    mimeType: text("mime_type").notNull(),
    refCount: integer("ref_count").notNull().default(0),
    expiresAt: timestamp("expires_at", { withTimezone: true, precision: 3 }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: "content_objects_pkey", columns: [t.tenantId, t.hash] }),
    index("content_objects_expiry_idx").on(t.expiresAt),
    index("content_objects_unreferenced_idx").on(t.tenantId).where(sql`${t.refCount} <= 0`),
    check("content_objects_kind_check", sql`${t.kind} in ('body', 'attachment', 'template')`),
    check("content_objects_algorithm_check", sql`${t.algorithm} in ('raw', 'gzip', 'br', 'deflate-dict')`),
    check("content_objects_sizes_check", sql`${t.rawSize} >= 0 and ${t.storedSize} >= 0`),
    tenantIsolation("content_objects", t.tenantId),
    // The pruning cron works across tenants under the `maintenance` role context, on unreferenced or expired objects only.
    pgPolicy("content_objects_maintenance", {
      as: "permissive",
      for: "all",
      using: sql`${currentRole} = 'maintenance' and (${t.refCount} <= 0 or ${t.expiresAt} < now())`,
      withCheck: sql`false`,
    }),
  ],
);

/**
 * The content of one email: written in the same OLTP transaction as its metadata. Holds the
 * idempotency key of the write, the subject and the search vector the INDEX_CONTENT job fills.
 */
export const emailContents = pgTable(
  "email_contents",
  {
    tenantId: tenantId(),
    emailId: uuid("email_id").notNull(),
    idempotencyKey: text("idempotency_key"),
    subject: text("subject").notNull(),
    search: tsvector("search"),
    /** The start of the plain text, which ts_headline highlights; bounded, the full body stays in R2. */
    snippet: text("snippet"),
    indexedAt: timestamp("indexed_at", { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: "email_contents_pkey", columns: [t.tenantId, t.emailId] }),
    uniqueIndex("email_contents_idempotency_idx").on(t.tenantId, t.idempotencyKey),
    index("email_contents_search_idx").using("gin", t.search),
    index("email_contents_unindexed_idx").on(t.createdAt).where(sql`${t.indexedAt} is null`),
    tenantIsolation("email_contents", t.tenantId),
    // The consistency cron finds unindexed emails in every tenant to queue their INDEX_CONTENT jobs again.
    pgPolicy("email_contents_maintenance", { as: "permissive", for: "select", using: sql`${currentRole} = 'maintenance' and ${t.indexedAt} is null` }),
  ],
);

/** The body (position 0) and attachments (1..n) of an email, each pointing at a content object by hash. */
export const emailContentParts = pgTable(
  "email_content_parts",
  {
    tenantId: tenantId(),
    emailId: uuid("email_id").notNull(),
    position: integer("position").notNull(),
    hash: text("hash").notNull(),
    filename: text("filename"),
    mimeType: text("mime_type").notNull(),
    disposition: text("disposition").notNull(),
  },
  (t) => [
    primaryKey({ name: "email_content_parts_pkey", columns: [t.tenantId, t.emailId, t.position] }),
    index("email_content_parts_hash_idx").on(t.tenantId, t.hash),
    check("email_content_parts_disposition_check", sql`${t.disposition} in ('body', 'attachment', 'inline')`),
    tenantIsolation("email_content_parts", t.tenantId),
  ],
);

export const defaultRetentionDays = 365;

/** Per-tenant retention: how long content is kept, and a legal hold that pauses all deletion. */
export const contentSettings = pgTable(
  "content_settings",
  {
    tenantId: uuid("tenant_id").primaryKey(),
    retentionDays: integer("retention_days").notNull().default(defaultRetentionDays),
    legalHold: boolean("legal_hold").notNull().default(false),
    updatedAt: timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    check("content_settings_retention_check", sql`${t.retentionDays} between 1 and 3650`),
    tenantIsolation("content_settings", t.tenantId),
    pgPolicy("content_settings_maintenance", { as: "permissive", for: "select", using: sql`${currentRole} = 'maintenance'` }),
  ],
);
