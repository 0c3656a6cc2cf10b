// The OLTP tier's retention rules: what each of its tables keeps, and what enforces it.
import type { RetentionRule } from "../../platform/retention";
import { accessCache } from "./services/access";
import { invitationLifetimeDays } from "./services/invitations";
import { emailEventRetentionDays, invitationRetentionDays } from "./schema";

const tenantLifetime = "kept while the tenant exists; a subject's rows are erased on request";
const onErasure = "lifecycle.eraseSubject (on request)";
/** Every tenant-scoped row goes when its tenant is closed and its grace period is over. */
const closure = "lifecycle.closeTenants (tenant closure)";

export const oltpRetention: RetentionRule[] = [
  { store: "oltp", name: "tenants", rule: "kept while the tenant is a customer; a closed tenant is erased from every store after its grace period", enforcedBy: "lifecycle.closeTenants", ageColumn: "created_at" },
  { store: "oltp", name: "users", rule: tenantLifetime, enforcedBy: onErasure, ageColumn: "created_at" },
  {
    store: "oltp",
    name: "invitations",
    rule: `open for 7 days; ${invitationRetentionDays} days after acceptance or expiry`,
    enforcedBy: "oltp.pruneInvitations",
    ageColumn: "created_at",
    maxAgeDays: invitationLifetimeDays + invitationRetentionDays,
  },
  { store: "oltp", name: "api_keys", rule: "kept while the tenant exists; revoked keys stay for audit", enforcedBy: closure, ageColumn: "created_at" },
  { store: "oltp", name: "domains", rule: "kept while the tenant exists", enforcedBy: closure, ageColumn: "created_at" },
  { store: "oltp", name: "mailboxes", rule: "kept while the tenant exists", enforcedBy: closure, ageColumn: "created_at" },
  { store: "oltp", name: "campaigns", rule: "kept while the tenant exists", enforcedBy: closure, ageColumn: "created_at" },
  { store: "oltp", name: "sequence_steps", rule: "go with their campaign", enforcedBy: "cascade from campaigns" },
  { store: "oltp", name: "campaign_mailboxes", rule: "go with their campaign or mailbox", enforcedBy: "cascade from campaigns", ageColumn: "created_at" },
  { store: "oltp", name: "leads", rule: tenantLifetime, enforcedBy: onErasure, ageColumn: "created_at" },
  {
    store: "oltp",
    name: "suppressions",
    rule: "kept while the tenant exists (an opt-out must outlive its lead); an erasure clears the address and keeps its keyed hash",
    enforcedBy: onErasure,
    ageColumn: "created_at",
  },
  { store: "oltp", name: "campaign_leads", rule: "go with their lead or campaign", enforcedBy: "cascade from leads", ageColumn: "enrolled_at" },
  { store: "oltp", name: "emails", rule: "metadata kept while the tenant exists; a subject's emails are erased on request", enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "email_events", rule: `${emailEventRetentionDays} days`, enforcedBy: "oltp.pruneEmailEvents", ageColumn: "occurred_at", maxAgeDays: emailEventRetentionDays },
  { store: "oltp", name: "subscriptions", rule: "kept while the tenant exists (billing records)", enforcedBy: closure, ageColumn: "created_at" },
  { store: "oltp", name: "usage_counters", rule: "monthly counts, kept for billing (no personal data)", enforcedBy: closure, ageColumn: "period_start" },
  {
    store: "redis",
    name: "auth:{tenant}, auth:{tenant}:ctl",
    rule: `${accessCache.keyTtlSeconds / 3600} h after the last write (TTL); an entry answers for at most ${accessCache.maxAgeMs / 60_000} min`,
    enforcedBy: "Redis TTL",
  },
];
