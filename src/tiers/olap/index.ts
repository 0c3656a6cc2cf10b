// The OLAP tier's public face: its router, jobs, cron tasks and retention rules, the audit emitter it implements
// for every tier, and the reconciliation the lifecycle checker runs.
import { olapCrons } from "./cron";
import { olapJobs } from "./jobs";
import { olapRetention } from "./retention";
import { analyticsRouter } from "./router";

export const olap = {
  routers: { analytics: analyticsRouter },
  jobs: olapJobs,
  crons: olapCrons,
  retention: olapRetention,
};

export { auditEmitter } from "./audit";
export { listAuditLog } from "./services/audit-log";
export { olapConfig } from "./config";
export { reconcileCampaignTotals } from "./services/reconciliation";
