// The notifications tier's job: SEND_NOTIFICATION delivers an outbox row through the channel's provider.
import { z } from "zod";
import { AppError } from "../../platform/errors";
import { defineJob } from "../../platform/jobs/define";
import { deliverNotification } from "./services/outbox";
import { notificationProviderFor } from "./services/provider";

/**
 * No ledger row: the durable record is the notifications database's outbox, because this tier must keep
 * delivering while OLTP is down. The queue's retries count; the outbox relay re-sends what they lose.
 */
export const sendNotificationJob = defineJob({
  type: "SEND_NOTIFICATION",
  payload: z.object({ outboxId: z.uuid(), notificationId: z.uuid() }),
  queue: "normal",
  ledger: false,
  maxAttempts: 6,
  backoff: { baseSeconds: 5, maxSeconds: 900 },
  run: async ({ tenantId, payload, services }) => {
    if (!tenantId) throw new AppError("VALIDATION_FAILED", "SEND_NOTIFICATION is a tenant's job", { tier: "notifications" });
    const outcome = await deliverNotification(services.store("notifications"), notificationProviderFor(services.env), {
      outboxId: payload.outboxId,
      notificationId: payload.notificationId,
      tenantId,
    });
    services.logger.info("notification delivery", { outboxId: payload.outboxId, outcome });
  },
});

export const notificationsJobs = [sendNotificationJob];
