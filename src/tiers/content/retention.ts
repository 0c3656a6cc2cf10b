// The content tier's retention rules: catalog rows and the R2 objects they point to.
import type { RetentionRule } from "../../platform/retention";
import { contentPruning } from "./config";
import { defaultRetentionDays } from "./schema";

const onErasure = "lifecycle.eraseSubject (on request)";

export const contentRetention: RetentionRule[] = [
  {
    store: "oltp",
    name: "content_objects",
    rule: `until unreferenced or expired (tenant retention, default ${defaultRetentionDays} days), except under legal hold`,
    enforcedBy: "content.prune",
    ageColumn: "expires_at",
    maxAgeDays: 0,
    where: "not exists (select 1 from content_settings s where s.tenant_id = t.tenant_id and s.legal_hold)",
  },
  { store: "oltp", name: "email_contents", rule: "goes with its email (emails.delete, erasure)", enforcedBy: onErasure, ageColumn: "created_at" },
  { store: "oltp", name: "email_content_parts", rule: "go with their email", enforcedBy: onErasure },
  { store: "oltp", name: "content_settings", rule: "one row per tenant", enforcedBy: "lifecycle.closeTenants (tenant closure)", ageColumn: "updated_at" },
  {
    store: "oltp",
    name: "content_tombstones",
    rule: `${contentPruning.graceSeconds / 3600} h before the blob is purged, ${contentPruning.graceSeconds / 3600} h after`,
    enforcedBy: "content.prune",
    ageColumn: "tombstoned_at",
    maxAgeDays: 1,
    where: "t.purged_at is null",
  },
  { store: "r2", name: "tenants/<tenant>/objects/", rule: "with their catalog row; orphans after 24 h", enforcedBy: "content.prune, lifecycle.checkConsistency" },
];
