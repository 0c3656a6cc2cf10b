// Lifecycle tasks run by the cron triggers: the daily consistency check and erasure-receipt retention.
import { defineCron } from "../platform/cron";
import { checkConsistency, consistencyDefaults } from "./consistency";
import { consistencyDeps } from "./deps";
import { pruneErasureRequests } from "./retention";

export const lifecycleCrons = [
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
