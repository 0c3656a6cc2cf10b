// The notifications tier's job: SEND_NOTIFICATION delivers an outbox row through its channel's provider.
import { z } from "zod";
import { AppError } from "../../platform/errors";
import { defineJob } from "../../platform/jobs/define";
import { userEmailAddress } from "../oltp";
import { notificationsConfig } from "./config";
import { raiseSystemEventJob } from "./emitter";
import { deliverNotification } from "./services/outbox";
import { channelProvidersFor } from "./services/provider";

/**
 * No ledger row: the durable record is the notifications database's outbox, because this tier must keep
 * delivering while OLTP is down. The outbox row counts its own attempts (up to `delivery.maxAttempts`, the
 * same as the queue's); the queue retries with backoff and the outbox relay re-sends what it loses.
 * An email's address is read from OLTP at delivery time; while OLTP is down the delivery is deferred.
 */
export const sendNotificationJob = defineJob({
  type: "SEND_NOTIFICATION",
  payload: z.object({ outboxId: z.uuid(), notificationId: z.uuid() }),
  queue: "normal",
  ledger: false,
  maxAttempts: notificationsConfig.delivery.maxAttempts,
  backoff: { baseSeconds: 5, maxSeconds: 900 },
  run: async ({ tenantId, payload, services }) => {
    if (!tenantId) throw new AppError("VALIDATION_FAILED", "SEND_NOTIFICATION is a tenant's job", { tier: "notifications" });
    const outcome = await deliverNotification(
      {
        store: services.store("notifications"),
        clock: services.clock,
        logger: services.logger,
        config: notificationsConfig,
        providers: channelProvidersFor(services.env),
        systemEvents: services.systemEvents,
        emailAddress: (tenant, userId) => userEmailAddress(services.store("oltp"), tenant, userId),
      },
      { outboxId: payload.outboxId, notificationId: payload.notificationId, tenantId },
    );
    services.logger.info("notification delivery", { outboxId: payload.outboxId, outcome });
  },
});

export const notificationsJobs = [sendNotificationJob, raiseSystemEventJob];
