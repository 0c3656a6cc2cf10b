// Data lifecycle tables in the OLTP database (drizzle/oltp): erasure requests with per-tier step status, and the content tombstones that make blob pruning safe against re-use.
import { sql } from "drizzle-orm";
import { check, index, jsonb, pgPolicy, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { currentRole, tenantIsolation } from "../platform/rls";

/** Internal cross-tenant work (consistency checks, retention report) runs with app.current_role = 'lifecycle', which no token can carry. */
export const lifecycleRole = "lifecycle";
const isLifecycle = sql`${currentRole} = 'lifecycle'`;

export const erasureStatuses = ["pending", "running", "completed"] as const;

/**
 * One GDPR erasure of a data subject (a lead's address or a user) in one tenant. `subject_email` is
 * kept only while the erasure runs (the job needs it after the rows naming it are gone) and cleared
 * when it completes; `subject_digest` (SHA-256 of the lower-cased address) lets an operator prove
 * which subject a receipt covers without keeping the address. `steps` records each tier's step as it
 * finishes, so a retry after a crash resumes where the last attempt stopped.
 */
export const erasureRequests = pgTable(
  "erasure_requests",
  {
    id: uuid("id").primaryKey(),
    tenantId: uuid("tenant_id").notNull(),
    subjectEmail: text("subject_email"),
    subjectUserId: uuid("subject_user_id"),
    subjectDigest: text("subject_digest"),
    requestedBy: uuid("requested_by").notNull(),
    status: text("status").notNull().default("pending"),
    jobId: uuid("job_id"),
    /** The subject's ids as first resolved (lead, user, email ids): later steps work from these once the rows are gone. */
    refs: jsonb("refs").$type<Record<string, string[]>>(),
    steps: jsonb("steps").$type<Record<string, unknown>>().notNull().default({}),
    receipt: jsonb("receipt").$type<Record<string, unknown>>(),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    completedAt: timestamp("completed_at", { withTimezone: true, precision: 3 }),
  },
  (t) => [
    index("erasure_requests_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("erasure_requests_completed_idx").on(t.completedAt),
    check("erasure_requests_status_check", sql`${t.status} in ('pending', 'running', 'completed')`),
    check("erasure_requests_subject_check", sql`${t.status} = 'completed' or ${t.subjectEmail} is not null or ${t.subjectUserId} is not null`),
    tenantIsolation("erasure_requests", t.tenantId),
    pgPolicy("erasure_requests_lifecycle", { as: "permissive", for: "all", using: isLifecycle, withCheck: isLifecycle }),
  ],
);

/**
 * A content object whose catalog row the pruning cron deleted, waiting out a grace period before its
 * blob leaves R2. A write that references the same bytes meanwhile recreates the catalog row, and the
 * purge re-checks for it in the transaction that claims the tombstone, so a re-used blob is never
 * deleted. `purged_at` is set when the blob is being deleted; the row stays a while longer so a write
 * that saw the blob before the delete learns that it is gone (content_assert_live).
 */
export const contentTombstones = pgTable(
  "content_tombstones",
  {
    tenantId: uuid("tenant_id").notNull(),
    hash: text("hash").notNull(),
    storageKey: text("storage_key").notNull(),
    tombstonedAt: timestamp("tombstoned_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    purgedAt: timestamp("purged_at", { withTimezone: true, precision: 3 }),
  },
  (t) => [
    primaryKey({ name: "content_tombstones_pkey", columns: [t.tenantId, t.hash] }),
    index("content_tombstones_tombstoned_idx").on(t.tombstonedAt),
    tenantIsolation("content_tombstones", t.tenantId),
    pgPolicy("content_tombstones_maintenance", { as: "permissive", for: "all", using: sql`${currentRole} in ('maintenance', 'lifecycle')`, withCheck: sql`${currentRole} in ('maintenance', 'lifecycle')` }),
  ],
);

export const tenantClosureStatuses = ["running", "completed"] as const;

/**
 * The erasure of a whole closed tenant and, once done, its receipt, which outlives the tenant. Created by the
 * closure cron in the transaction that turns the tenant from `closing` to `closed` (after that `reactivate` cannot
 * restore it). `steps` records each tier's step as it finishes, so a failed run resumes. `tenant_id` is kept only
 * while the erasure runs; the receipt keeps `tenant_digest` (SHA-256 of the id), by which an operator finds it,
 * and counts: no name, address or id of the tenant's people.
 */
export const tenantClosures = pgTable(
  "tenant_closures",
  {
    id: uuid("id").primaryKey(),
    tenantId: uuid("tenant_id"),
    tenantDigest: text("tenant_digest").notNull(),
    status: text("status").notNull().default("running"),
    steps: jsonb("steps").$type<Record<string, unknown>>().notNull().default({}),
    receipt: jsonb("receipt").$type<Record<string, unknown>>(),
    closedAt: timestamp("closed_at", { withTimezone: true, precision: 3 }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    completedAt: timestamp("completed_at", { withTimezone: true, precision: 3 }),
  },
  (t) => [
    uniqueIndex("tenant_closures_digest_key").on(t.tenantDigest),
    index("tenant_closures_completed_idx").on(t.completedAt),
    check("tenant_closures_status_check", sql`${t.status} in ('running', 'completed')`),
    check("tenant_closures_tenant_check", sql`${t.status} = 'completed' or ${t.tenantId} is not null`),
    pgPolicy("tenant_closures_lifecycle", { as: "permissive", for: "all", using: isLifecycle, withCheck: isLifecycle }),
  ],
);
