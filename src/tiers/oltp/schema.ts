// OLTP tier schema (Neon, OLTP_DATABASE_URL): the system of record; every tenant-scoped table under forced RLS.
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { currentRole, tenantIsolation } from "../../platform/rls";

/** Millisecond timestamps: keyset cursors round-trip through JavaScript Dates without losing rows. */
const createdAt = () => timestamp("created_at", { withTimezone: true, precision: 3 }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true, precision: 3 }).notNull().defaultNow();
const tenantId = () => uuid("tenant_id").notNull();

/**
 * closing: an operator closed the tenant; refused like a suspended one until `close_after`, and `reactivate` still
 * restores it. closed: the grace is over and the lifecycle's closure is erasing it (the row goes last).
 */
export const tenantStatuses = ["active", "suspended", "closing", "closed"] as const;
export const tenants = pgTable(
  "tenants",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("name").notNull(),
    plan: text("plan").notNull().default("free"),
    status: text("status").notNull().default("active"),
    /** Sending limits across all of the tenant's mailboxes; set by the platform, not by the tenant. */
    dailySendLimit: integer("daily_send_limit").notNull().default(500),
    maxMailboxes: integer("max_mailboxes").notNull().default(5),
    /** Members (users plus pending invitations) the plan allows. */
    maxSeats: integer("max_seats").notNull().default(5),
    /** Content bytes (bodies and attachments as stored) the plan allows. */
    maxStorageBytes: bigint("max_storage_bytes", { mode: "number" }).notNull().default(1_073_741_824),
    /** The operator's idempotency key of the provisioning call that created the tenant. */
    provisioningKey: text("provisioning_key"),
    statusChangedAt: timestamp("status_changed_at", { withTimezone: true, precision: 3 }),
    /** While closing: when the grace ends and the lifecycle's closure cron may erase the tenant. */
    closeAfter: timestamp("close_after", { withTimezone: true, precision: 3 }),
    /** The tenant's admins opted out of product events: none of its facts go to the capture sink (src/platform/telemetry.ts). */
    productEventsOptOut: boolean("product_events_opt_out").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("tenants_provisioning_key").on(t.provisioningKey),
    check("tenants_status_check", sql`${t.status} in ('active', 'suspended', 'closing', 'closed')`),
    check("tenants_limits_check", sql`${t.dailySendLimit} >= 0 and ${t.maxMailboxes} >= 0 and ${t.maxSeats} >= 1`),
    tenantIsolation("tenants", t.id),
    /** Platform staff (the operator role of a verified token) list and inspect every tenant. */
    pgPolicy("tenants_operator_read", { as: "permissive", for: "select", using: sql`${currentRole} = 'operator'` }),
  ],
);

/** A user is a membership: one person in one tenant with one role (the JWT carries the same pair). */
export const userRoles = ["member", "admin"] as const;
export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    name: text("name"),
    role: text("role").notNull().default("member"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("users_tenant_email_key").on(t.tenantId, t.email),
    index("users_tenant_created_idx").on(t.tenantId, t.createdAt),
    check("users_role_check", sql`${t.role} in ('member', 'admin')`),
    tenantIsolation("users", t.tenantId),
  ],
);

/**
 * Server-to-server credentials. Only the SHA-256 of the secret is stored; `prefix` identifies a key
 * in lists and logs. A caller presenting a key does not know its tenant yet, so a second policy lets
 * a transaction that has set `app.api_key_hash` see exactly the one row with that hash.
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    hash: text("hash").notNull(),
    role: text("role").notNull().default("member"),
    /** read: queries only; read_write: queries and mutations. */
    scope: text("scope").notNull().default("read_write"),
    /** user: revoked with its creator's membership; tenant: outlives its creator, shown as the tenant's. */
    owner: text("owner").notNull().default("user"),
    createdBy: uuid("created_by").notNull(),
    createdAt: createdAt(),
    /** NULL only for keys created before expiry existed. */
    expiresAt: timestamp("expires_at", { withTimezone: true, precision: 3 }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, precision: 3 }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, precision: 3 }),
  },
  (t) => [
    uniqueIndex("api_keys_hash_key").on(t.hash),
    index("api_keys_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("api_keys_tenant_creator_idx").on(t.tenantId, t.createdBy),
    check("api_keys_role_check", sql`${t.role} in ('member', 'admin')`),
    check("api_keys_scope_check", sql`${t.scope} in ('read', 'read_write')`),
    check("api_keys_owner_check", sql`${t.owner} in ('user', 'tenant')`),
    tenantIsolation("api_keys", t.tenantId),
    pgPolicy("api_keys_lookup_by_hash", {
      as: "permissive",
      for: "select",
      using: sql`${t.hash} = (select current_setting('app.api_key_hash', true))`,
    }),
  ],
);

/** Accepted or expired invitations (which hold an address) are deleted this long after they closed. */
export const invitationRetentionDays = 30;

/**
 * An invitation to join a tenant: only the SHA-256 of its token is stored. The invitee does not
 * belong to the tenant yet, so (as for API keys) a transaction that has set `app.invitation_hash`
 * sees exactly the one invitation with that hash, and takes its tenant as its context.
 */
export const invitations = pgTable(
  "invitations",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    role: text("role").notNull().default("member"),
    tokenHash: text("token_hash").notNull(),
    invitedBy: uuid("invited_by").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, precision: 3 }).notNull(),
    acceptedAt: timestamp("accepted_at", { withTimezone: true, precision: 3 }),
    acceptedUserId: uuid("accepted_user_id"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("invitations_token_hash_key").on(t.tokenHash),
    index("invitations_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    check("invitations_role_check", sql`${t.role} in ('member', 'admin')`),
    tenantIsolation("invitations", t.tenantId),
    pgPolicy("invitations_lookup_by_hash", {
      as: "permissive",
      for: "select",
      using: sql`${t.tokenHash} = (select current_setting('app.invitation_hash', true))`,
    }),
    /** Pruning across tenants, of closed invitations only (oltp.pruneInvitations). */
    pgPolicy("invitations_retention", {
      as: "permissive",
      for: "all",
      using: sql`${currentRole} = 'maintenance' and coalesce(${t.acceptedAt}, ${t.expiresAt}) < now() - interval '${sql.raw(String(invitationRetentionDays))} days'`,
    }),
  ],
);


export const domainStatuses = ["pending", "verified", "failed"] as const;
export const domains = pgTable(
  "domains",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    verificationStatus: text("verification_status").notNull().default("pending"),
    /** The SPF, DKIM and DMARC records the tenant must publish, computed when the domain is added. */
    dnsRecords: jsonb("dns_records").$type<DnsRecord[]>().notNull(),
    verifiedAt: timestamp("verified_at", { withTimezone: true, precision: 3 }),
    /** What the last DNS check found, record by record (null until the first check). */
    dnsResults: jsonb("dns_results").$type<DnsCheck[]>(),
    checkedAt: timestamp("checked_at", { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
  },
  (t) => [
    unique("domains_tenant_id_key").on(t.tenantId, t.id),
    uniqueIndex("domains_tenant_name_key").on(t.tenantId, t.name),
    /** Across tenants: one tenant at a time may hold a domain name verified (DOMAIN_TAKEN for the next). */
    uniqueIndex("domains_verified_name_key").on(t.name).where(sql`verification_status = 'verified'`),
    index("domains_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    /** The re-check cron's scan across tenants. */
    index("domains_status_checked_idx").on(t.verificationStatus, t.checkedAt),
    check("domains_status_check", sql`${t.verificationStatus} in ('pending', 'verified', 'failed')`),
    tenantIsolation("domains", t.tenantId),
    /** The re-check cron lists due domains of every tenant, then checks each under its tenant's context. */
    pgPolicy("domains_system_read", { as: "permissive", for: "select", using: sql`${currentRole} = 'system'` }),
  ],
);
/** One expected record as the last check saw it: `found` when a published record matches. */
export interface DnsCheck {
  purpose: DnsRecord["purpose"];
  type: DnsRecord["type"];
  host: string;
  found: boolean;
  /** What the resolver returned at the host (at most a few values, each cut short). */
  seen: string[];
}
export interface DnsRecord {
  purpose: "spf" | "dkim" | "dmarc";
  type: "TXT" | "CNAME";
  host: string;
  value: string;
}

export const mailboxStatuses = ["active", "paused", "bounce_protected"] as const;
export const mailboxes = pgTable(
  "mailboxes",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    domainId: uuid("domain_id").notNull(),
    address: text("address").notNull(),
    dailyLimit: integer("daily_limit").notNull().default(50),
    /** Warmup ramp: the day's allowance is min(daily_limit, warmup_start + day * warmup_increment). */
    warmupEnabled: boolean("warmup_enabled").notNull().default(true),
    warmupDay: integer("warmup_day").notNull().default(0),
    warmupStart: integer("warmup_start").notNull().default(5),
    warmupIncrement: integer("warmup_increment").notNull().default(5),
    status: text("status").notNull().default("active"),
    createdAt: createdAt(),
  },
  (t) => [
    unique("mailboxes_tenant_id_key").on(t.tenantId, t.id),
    uniqueIndex("mailboxes_tenant_address_key").on(t.tenantId, t.address),
    index("mailboxes_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    foreignKey({ name: "mailboxes_domain_fk", columns: [t.tenantId, t.domainId], foreignColumns: [domains.tenantId, domains.id] }).onDelete("cascade"),
    check("mailboxes_status_check", sql`${t.status} in ('active', 'paused', 'bounce_protected')`),
    check("mailboxes_limits_check", sql`${t.dailyLimit} between 1 and 10000 and ${t.warmupDay} >= 0 and ${t.warmupStart} >= 1 and ${t.warmupIncrement} >= 0`),
    tenantIsolation("mailboxes", t.tenantId),
  ],
);

export const campaignStatuses = ["draft", "scheduled", "running", "paused", "completed"] as const;
export const campaigns = pgTable(
  "campaigns",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    name: text("name").notNull(),
    status: text("status").notNull().default("draft"),
    timeZone: text("time_zone").notNull().default("UTC"),
    /** Local send window, minutes after midnight in time_zone; days 0 (Sunday) to 6. */
    windowStartMinute: integer("window_start_minute").notNull().default(540),
    windowEndMinute: integer("window_end_minute").notNull().default(1020),
    sendDays: integer("send_days").array().notNull().default(sql`'{1,2,3,4,5}'`),
    dailyLimit: integer("daily_limit").notNull().default(100),
    startsAt: timestamp("starts_at", { withTimezone: true, precision: 3 }),
    /** When a lead's mailbox is paused or bounce-protected: its leads wait for it, or move to another of the campaign's. */
    mailboxFallback: text("mailbox_fallback").notNull().default("wait"),
    /** Opt-in open and click tracking: SEND_EMAIL rewrites the HTML's links and adds a pixel (docs/api.md, Inbound). */
    trackEngagement: boolean("track_engagement").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique("campaigns_tenant_id_key").on(t.tenantId, t.id),
    index("campaigns_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("campaigns_tenant_status_idx").on(t.tenantId, t.status),
    foreignKey({ name: "campaigns_tenant_fk", columns: [t.tenantId], foreignColumns: [tenants.id] }).onDelete("cascade"),
    check("campaigns_status_check", sql`${t.status} in ('draft', 'scheduled', 'running', 'paused', 'completed')`),
    check("campaigns_mailbox_fallback_check", sql`${t.mailboxFallback} in ('wait', 'move')`),
    check("campaigns_window_check", sql`${t.windowStartMinute} between 0 and 1439 and ${t.windowEndMinute} between 1 and 1440 and ${t.windowStartMinute} < ${t.windowEndMinute}`),
    tenantIsolation("campaigns", t.tenantId),
    // The sequencer (jobs tier) finds the tenants with running or due campaigns across tenants, then works in each tenant's context.
    pgPolicy("campaigns_system_read", { as: "permissive", for: "select", using: sql`${currentRole} = 'system'` }),
  ],
);

/** The mailboxes a campaign sends from; each enrolled lead is assigned one of them for its whole sequence. */
export const campaignMailboxes = pgTable(
  "campaign_mailboxes",
  {
    tenantId: tenantId(),
    campaignId: uuid("campaign_id").notNull(),
    mailboxId: uuid("mailbox_id").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: "campaign_mailboxes_pkey", columns: [t.tenantId, t.campaignId, t.mailboxId] }),
    foreignKey({ name: "campaign_mailboxes_campaign_fk", columns: [t.tenantId, t.campaignId], foreignColumns: [campaigns.tenantId, campaigns.id] }).onDelete("cascade"),
    foreignKey({ name: "campaign_mailboxes_mailbox_fk", columns: [t.tenantId, t.mailboxId], foreignColumns: [mailboxes.tenantId, mailboxes.id] }).onDelete("cascade"),
    tenantIsolation("campaign_mailboxes", t.tenantId),
  ],
);

/**
 * A campaign's sequence: ordered steps, each with one or more A/B variants. `text` and `html` are the
 * variant's template (campaign configuration, like its subject); each lead's render is an email body
 * stored in the content tier, compressed against the template. An empty subject on a follow-up means
 * "Re: " and the thread's first subject. `bodyStorageKey` names content kept elsewhere (older steps).
 */
export interface StepVariant {
  label: string;
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  bodyStorageKey?: string | undefined;
  weight: number;
}
export const sequenceSteps = pgTable(
  "sequence_steps",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    campaignId: uuid("campaign_id").notNull(),
    position: integer("position").notNull(),
    delayHours: integer("delay_hours").notNull().default(0),
    variants: jsonb("variants").$type<StepVariant[]>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    unique("sequence_steps_tenant_id_key").on(t.tenantId, t.id),
    uniqueIndex("sequence_steps_campaign_position_key").on(t.tenantId, t.campaignId, t.position),
    foreignKey({ name: "sequence_steps_campaign_fk", columns: [t.tenantId, t.campaignId], foreignColumns: [campaigns.tenantId, campaigns.id] }).onDelete("cascade"),
    check("sequence_steps_shape_check", sql`${t.position} >= 0 and ${t.delayHours} >= 0 and jsonb_array_length(${t.variants}) between 1 and 5`),
    tenantIsolation("sequence_steps", t.tenantId),
  ],
);

export const leadStatuses = ["new", "contacted", "replied", "interested", "not_interested"] as const;
export const leads = pgTable(
  "leads",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    /** Stored lower-cased, so uniqueness per tenant ignores case. */
    email: text("email").notNull(),
    firstName: text("first_name"),
    lastName: text("last_name"),
    company: text("company"),
    customFields: jsonb("custom_fields").$type<Record<string, string | number | boolean | null>>().notNull().default({}),
    status: text("status").notNull().default("new"),
    unsubscribedAt: timestamp("unsubscribed_at", { withTimezone: true, precision: 3 }),
    bouncedAt: timestamp("bounced_at", { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    unique("leads_tenant_id_key").on(t.tenantId, t.id),
    uniqueIndex("leads_tenant_email_key").on(t.tenantId, t.email),
    index("leads_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("leads_tenant_status_idx").on(t.tenantId, t.status, t.createdAt),
    foreignKey({ name: "leads_tenant_fk", columns: [t.tenantId], foreignColumns: [tenants.id] }).onDelete("cascade"),
    check("leads_status_check", sql`${t.status} in ('new', 'contacted', 'replied', 'interested', 'not_interested')`),
    check("leads_email_lower_check", sql`${t.email} = lower(${t.email})`),
    tenantIsolation("leads", t.tenantId),
  ],
);

/**
 * The tenant's suppression list: addresses nothing is sent to, whatever becomes of their leads. Keyed by
 * an HMAC of the normalised address (SUPPRESSION_HASH_SECRET), so an erasure can clear `address` and
 * keep the opt-out: a lead created again later is matched by the hash of its address.
 */
export const suppressionReasons = ["unsubscribe", "hard_bounce", "complaint", "admin"] as const;
export const suppressions = pgTable(
  "suppressions",
  {
    /** A handle for pages and audit entries: the hash stays internal. */
    id: uuid("id").notNull().defaultRandom(),
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    addressHash: text("address_hash").notNull(),
    /** The normalised address; null once erased (the hash alone keeps the opt-out). */
    address: text("address"),
    reason: text("reason").notNull(),
    createdAt: createdAt(),
    erasedAt: timestamp("erased_at", { withTimezone: true, precision: 3 }),
  },
  (t) => [
    primaryKey({ name: "suppressions_pkey", columns: [t.tenantId, t.addressHash] }),
    index("suppressions_tenant_address_idx").on(t.tenantId, t.address),
    unique("suppressions_tenant_id_key").on(t.tenantId, t.id),
    index("suppressions_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    check("suppressions_reason_check", sql`${t.reason} in ('unsubscribe', 'hard_bounce', 'complaint', 'admin')`),
    check("suppressions_address_lower_check", sql`${t.address} = lower(${t.address})`),
    tenantIsolation("suppressions", t.tenantId),
  ],
);

/**
 * active: in the sequence (due at next_send_at); finished: every step created; stopped: left it (a reply,
 * bounce, unsubscribe, suppression, removal; stop_reason says which); skipped: a step could not be
 * rendered for it (stop_reason names the missing variable).
 */
export const enrolmentStatuses = ["active", "paused", "finished", "stopped", "skipped"] as const;
export const campaignLeads = pgTable(
  "campaign_leads",
  {
    tenantId: tenantId(),
    campaignId: uuid("campaign_id").notNull(),
    leadId: uuid("lead_id").notNull(),
    currentStep: integer("current_step").notNull().default(0),
    status: text("status").notNull().default("active"),
    nextSendAt: timestamp("next_send_at", { withTimezone: true, precision: 3 }),
    enrolledAt: timestamp("enrolled_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    /** The campaign mailbox every step of this lead is sent from (thread continuity); chosen at its first step. */
    mailboxId: uuid("mailbox_id"),
    /** The lead's first email in this campaign: follow-ups thread under it. */
    threadEmailId: uuid("thread_email_id"),
    stopReason: text("stop_reason"),
  },
  (t) => [
    primaryKey({ name: "campaign_leads_pkey", columns: [t.tenantId, t.campaignId, t.leadId] }),
    index("campaign_leads_tenant_lead_idx").on(t.tenantId, t.leadId),
    // The sequencer's due read, in its order (never planned first, then oldest due): a batch reads its first rows, not
    // the tenant's whole enrolment (issue 16's bench:campaigns, 100,000 leads).
    index("campaign_leads_due_idx").on(t.tenantId, t.nextSendAt.asc().nullsFirst(), t.leadId).where(sql`${t.status} = 'active'`),
    foreignKey({ name: "campaign_leads_campaign_fk", columns: [t.tenantId, t.campaignId], foreignColumns: [campaigns.tenantId, campaigns.id] }).onDelete("cascade"),
    foreignKey({ name: "campaign_leads_lead_fk", columns: [t.tenantId, t.leadId], foreignColumns: [leads.tenantId, leads.id] }).onDelete("cascade"),
    check("campaign_leads_status_check", sql`${t.status} in ('active', 'paused', 'finished', 'stopped', 'skipped')`),
    tenantIsolation("campaign_leads", t.tenantId),
  ],
);

export const emailStatuses = ["queued", "sent", "delivered", "bounced", "opened", "replied", "failed"] as const;
export const emails = pgTable(
  "emails",
  {
    /** Time-ordered (src/platform/ids.ts): the service and the sequencer set it; the default is the same kind. */
    id: uuid("id").primaryKey().default(sql`uuid_v7()`),
    tenantId: tenantId(),
    campaignId: uuid("campaign_id"),
    /** The step it was sent for; no foreign key, so a paused campaign's steps can be rewritten. */
    stepId: uuid("step_id"),
    /** The A/B variant label of the step it renders (campaign emails only). */
    variant: text("variant"),
    leadId: uuid("lead_id").notNull(),
    mailboxId: uuid("mailbox_id").notNull(),
    subject: text("subject").notNull(),
    status: text("status").notNull().default("queued"),
    providerMessageId: text("provider_message_id"),
    /** Opaque key of the body in the Content tier; never dereferenced here. */
    contentStorageKey: text("content_storage_key").notNull(),
    queuedAt: timestamp("queued_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true, precision: 3 }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true, precision: 3 }),
    openedAt: timestamp("opened_at", { withTimezone: true, precision: 3 }),
    repliedAt: timestamp("replied_at", { withTimezone: true, precision: 3 }),
    bouncedAt: timestamp("bounced_at", { withTimezone: true, precision: 3 }),
    failedAt: timestamp("failed_at", { withTimezone: true, precision: 3 }),
    createdAt: createdAt(),
  },
  (t) => [
    unique("emails_tenant_id_key").on(t.tenantId, t.id),
    index("emails_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
    index("emails_tenant_campaign_idx").on(t.tenantId, t.campaignId, t.createdAt),
    index("emails_tenant_lead_idx").on(t.tenantId, t.leadId, t.createdAt),
    // "Did this lead reply in this campaign?": the sequencer asks it of every due lead, SEND_EMAIL of every send.
    index("emails_replied_idx").on(t.tenantId, t.leadId, t.campaignId).where(sql`${t.repliedAt} is not null`),
    foreignKey({ name: "emails_campaign_fk", columns: [t.tenantId, t.campaignId], foreignColumns: [campaigns.tenantId, campaigns.id] }).onDelete("cascade"),
    foreignKey({ name: "emails_lead_fk", columns: [t.tenantId, t.leadId], foreignColumns: [leads.tenantId, leads.id] }).onDelete("cascade"),
    foreignKey({ name: "emails_mailbox_fk", columns: [t.tenantId, t.mailboxId], foreignColumns: [mailboxes.tenantId, mailboxes.id] }).onDelete("cascade"),
    check("emails_status_check", sql`${t.status} in ('queued', 'sent', 'delivered', 'bounced', 'opened', 'replied', 'failed')`),
    tenantIsolation("emails", t.tenantId),
    // Inbound facts (webhooks, replies, tracking) name an email by id alone: the consumer finds its tenant, then works inside it.
    pgPolicy("emails_system_read", { as: "permissive", for: "select", using: sql`${currentRole} = 'system'` }),
  ],
);

/**
 * Append-only status facts per email, the raw input of OLAP aggregation. Kept for a bounded
 * time: the pruning cron deletes old events under the `maintenance` role context, which the
 * second policy admits for old rows only.
 */
export const emailEventTypes = ["queued", "sent", "delivered", "bounced", "opened", "replied", "failed", "unsubscribed", "clicked", "complained"] as const;
export const emailEventRetentionDays = 180;
export const emailEvents = pgTable(
  "email_events",
  {
    /** Time-ordered (uuid_v7(), drizzle/oltp/0029): the busiest insert of all lands at the right edge of its index. */
    id: uuid("id").primaryKey().default(sql`uuid_v7()`),
    tenantId: tenantId(),
    emailId: uuid("email_id").notNull(),
    type: text("type").notNull(),
    occurredAt: timestamp("occurred_at", { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
    /** The inbound fact's own id (a provider's event id, a reply's Message-ID, a tracking key): each lands once. */
    sourceEventId: text("source_event_id"),
  },
  (t) => [
    uniqueIndex("email_events_tenant_source_event_key").on(t.tenantId, t.sourceEventId),
    index("email_events_tenant_email_idx").on(t.tenantId, t.emailId, t.occurredAt),
    index("email_events_tenant_occurred_idx").on(t.tenantId, t.occurredAt),
    index("email_events_occurred_idx").on(t.occurredAt),
    foreignKey({ name: "email_events_email_fk", columns: [t.tenantId, t.emailId], foreignColumns: [emails.tenantId, emails.id] }).onDelete("cascade"),
    check("email_events_type_check", sql`${t.type} in ('queued', 'sent', 'delivered', 'bounced', 'opened', 'replied', 'failed', 'unsubscribed', 'clicked', 'complained')`),
    tenantIsolation("email_events", t.tenantId),
    pgPolicy("email_events_retention", {
      as: "permissive",
      for: "all",
      using: sql`${currentRole} = 'maintenance' and ${t.occurredAt} < now() - interval '${sql.raw(String(emailEventRetentionDays))} days'`,
      withCheck: sql`false`,
    }),
  ],
);

/** Billing: the tenant's subscription and the usage counters OLAP reports on. */
export const subscriptionStatuses = ["trialing", "active", "past_due", "canceled"] as const;
export const subscriptions = pgTable(
  "subscriptions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    plan: text("plan").notNull(),
    status: text("status").notNull().default("trialing"),
    seats: integer("seats").notNull().default(1),
    periodStart: timestamp("period_start", { withTimezone: true, precision: 3 }).notNull(),
    periodEnd: timestamp("period_end", { withTimezone: true, precision: 3 }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index("subscriptions_tenant_period_idx").on(t.tenantId, t.periodStart),
    check("subscriptions_status_check", sql`${t.status} in ('trialing', 'active', 'past_due', 'canceled')`),
    check("subscriptions_period_check", sql`${t.periodStart} < ${t.periodEnd} and ${t.seats} >= 1`),
    tenantIsolation("subscriptions", t.tenantId),
  ],
);

export const usageCounters = pgTable(
  "usage_counters",
  {
    tenantId: tenantId().references(() => tenants.id, { onDelete: "cascade" }),
    /** First day of the month the counters cover. */
    periodStart: timestamp("period_start", { withTimezone: true, precision: 3 }).notNull(),
    emailsQueued: integer("emails_queued").notNull().default(0),
    leadsCreated: integer("leads_created").notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "usage_counters_pkey", columns: [t.tenantId, t.periodStart] }),
    tenantIsolation("usage_counters", t.tenantId),
  ],
);
