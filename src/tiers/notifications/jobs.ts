// The SEND_NOTIFICATION job handler: validates the payload and delivers through the provider.
import { z } from "zod";
import type { JobHandler } from "../jobs/consumer";
import { tierStore } from "../../core/db";
import { deliverNotification } from "./services/outbox";
import { recordingProvider } from "./services/provider";

const payloadSchema = z.object({ outboxId: z.uuid(), notificationId: z.uuid() });

export const sendNotificationJob: JobHandler = async (job, { env, logger }) => {
  const payload = payloadSchema.parse(job.payload);
  if (!job.tenantId) throw new Error("SEND_NOTIFICATION needs a tenant");
  const outcome = await deliverNotification(tierStore(env, "notifications"), recordingProvider(env.CONTENT_BUCKET), {
    outboxId: payload.outboxId,
    notificationId: payload.notificationId,
    tenantId: job.tenantId,
  });
  logger.info("notification delivery", { outboxId: payload.outboxId, outcome });
};
