// The jobs tier's public face: its router (the ledger as tenants and operators see it), the sending and bulk-lead
// jobs, its cron tasks (the job runtime's upkeep among them) and retention rules, and the export download routes.
import { z } from "zod";
import { defineJob } from "../../platform/jobs/define";
import { jobsCrons } from "./cron";
import { recordInboundFactsJob } from "./inbound/facts";
import { jobsRetention } from "./retention";
import { jobsRouter } from "./router";
import { exportLeadsJob } from "./services/export-leads";
import { importLeadsJob } from "./services/import-leads";
import { importSuppressionsJob } from "./services/import-suppressions";
import { sendEmailJob } from "./services/send-email";
import { sequenceCampaignsJob } from "./services/sequencer";

/** Does nothing: operators and the jobs benchmark use it to exercise the runtime itself. */
const noopJob = defineJob({
  type: "NOOP",
  payload: z.object({}).strict(),
  queue: "normal",
  ledger: true,
  maxAttempts: 3,
  backoff: { baseSeconds: 5, maxSeconds: 60 },
  run: async () => undefined,
});

export const jobs = {
  routers: { jobs: jobsRouter },
  jobs: [noopJob, sendEmailJob, importLeadsJob, importSuppressionsJob, exportLeadsJob, sequenceCampaignsJob, recordInboundFactsJob],
  crons: jobsCrons,
  retention: jobsRetention,
};

export { exportRoutes } from "./export-routes";
export { receiveReply } from "./inbound/replies";
export { trackingRoutes } from "./inbound/tracking";
export { webhookRoutes } from "./inbound/webhooks";
