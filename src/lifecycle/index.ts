// Lifecycle's public face: erasure, consistency checks and retention across every tier, reached through each tier's index.
import { lifecycleCrons } from "./cron";
import { eraseSubjectJob } from "./erasure";
import { retentionRules } from "./retention";
import { lifecycleRouter } from "./router";

export const lifecycle = {
  routers: { lifecycle: lifecycleRouter },
  jobs: [eraseSubjectJob],
  crons: lifecycleCrons,
  /** Every tier's rules (each tier declares its own); lifecycle reports and renders them all. */
  retention: retentionRules,
};
