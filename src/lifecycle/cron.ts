// Lifecycle tasks run by the cron triggers: tenant closures, the daily consistency check and erasure-receipt retention.
import { defineCron } from "../platform/cron";
import { checkConsistency, consistencyDefaults } from "./consistency";
import { consistencyDeps } from "./deps";
import { pruneErasureRequests } from "./retention";
import { closeDueTenants } from "./tenant-closure";

export const lifecycleCrons = [
  /** Closed tenants past their grace period: erased from every tier, hourly; a failed closure resumes next hour. */
  defineCron({
    name: "lifecycle.closeTenants",
    schedule: "pruning",
    async run(services) {
      const result = await closeDueTenants(services);
      if (result.started + result.completed > 0) services.logger.info("tenant closures", result);
    },
  }),
  defineCron({
    name: "lifecycle.pruneErasureRequests",
    schedule: "pruning",
    async run(services) {
      const deleted = await pruneErasureRequests(services.store("oltp"));
      if (deleted > 0) services.logger.info("pruned erasure receipts", { deleted });
    },
  }),
  defineCron({
    name: "lifecycle.checkConsistency",
    schedule: "consistency",
    async run(services) {
      const report = await checkConsistency(consistencyDeps(services), { tenantId: null, ...consistencyDefaults });
      services.logger.info("consistency check", { ...report.kinds });
    },
  }),
];
