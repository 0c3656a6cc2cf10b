// The OLAP tier's retention rules: monthly partitions dropped whole.
import type { RetentionRule } from "../../platform/retention";
import { olapConfig } from "./config";

const month = 31;

export const olapRetention: RetentionRule[] = [
  { store: "olap", name: "etl_watermarks", rule: "one row per ETL source", enforcedBy: "none needed (bounded)", ageColumn: "updated_at" },
  ...["campaign_analytics", "mailbox_analytics", "lead_analytics", "warmup_analytics", "sequence_step_analytics", "billing_analytics"].map(
    (name): RetentionRule => ({ store: "olap", name, rule: `${olapConfig.retentionMonths} months (whole partitions)`, enforcedBy: "olap.dropExpiredPartitions", ageColumn: "day", maxAgeDays: (olapConfig.retentionMonths + 1) * month }),
  ),
  ...["notification_analytics", "job_analytics", "content_analytics"].map(
    (name): RetentionRule => ({ store: "olap", name, rule: `${olapConfig.retentionMonths} months (rows by day)`, enforcedBy: "olap.pruneTierAggregates", ageColumn: "day", maxAgeDays: (olapConfig.retentionMonths + 1) * month }),
  ),
  { store: "olap", name: "admin_audit_log", rule: `${olapConfig.auditRetentionMonths} months (whole partitions)`, enforcedBy: "olap.dropExpiredPartitions", ageColumn: "occurred_at", maxAgeDays: (olapConfig.auditRetentionMonths + 1) * month },
];
