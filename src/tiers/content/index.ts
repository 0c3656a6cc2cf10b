// The content tier's public face: its router, job, cron tasks and retention rules, and what other tiers may use of it.
import { contentCrons } from "./cron";
import { contentJobs } from "./jobs";
import { contentRetention } from "./retention";
import { contentRouter } from "./router";

export const content = {
  routers: { content: contentRouter },
  jobs: contentJobs,
  crons: contentCrons,
  retention: contentRetention,
};

export { contentConfig } from "./config";
export { contentReadDeps, contentWriteDeps } from "./deps";
export { contentObjects, emailContents } from "./schema";
export { deleteObjects, sha256, type ContentBucket } from "./services/blobs";
export { getEmailContent, getEmailForSending, type ContentReadDeps } from "./services/reads";
export { streamAttachment, uploadAttachment } from "./services/streams";
export {
  catalogStatements,
  catalogStatementsForMany,
  type ContentWriteDeps,
  type EmailContentInput,
  prepareEmailContent,
  releaseStatements,
  storeContent,
} from "./services/writes";
