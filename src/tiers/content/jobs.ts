// The content tier's job: INDEX_CONTENT builds an email's search vector after its write.
import { z } from "zod";
import { AppError } from "../../platform/errors";
import { defineJob } from "../../platform/jobs/define";
import { tenantSystemScope } from "../../platform/services";
import { contentConfig } from "./config";
import { indexEmailContent } from "./services/search";

/** No ledger: the durable record is the email_contents row still unindexed, which content.requeueIndexing queues again. */
export const indexContentJob = defineJob({
  type: "INDEX_CONTENT",
  payload: z.object({ emailId: z.uuid() }).strict(),
  queue: "normal",
  ledger: false,
  maxAttempts: 5,
  backoff: { baseSeconds: 5, maxSeconds: 300 },
  run: async ({ tenantId, payload, services }) => {
    if (!tenantId) throw new AppError("VALIDATION_FAILED", "INDEX_CONTENT is a tenant's job", { tier: "content" });
    await indexEmailContent(
      { store: services.store("oltp"), bucket: services.env.CONTENT_BUCKET, config: contentConfig },
      tenantSystemScope(tenantId),
      payload.emailId,
    );
  },
});

export const contentJobs = [indexContentJob];
