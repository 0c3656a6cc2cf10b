// Where email and push notifications leave the platform: one provider interface, and which implementation an environment gets.
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";

export interface OutgoingNotification {
  /** The outbox row: a stable idempotency key for providers that accept one. */
  deliveryId: string;
  notificationId: string;
  tenantId: string;
  /** NULL: every member of the tenant; resolving addresses is the sending tier's work. */
  userId: string | null;
  channel: "email" | "push";
  type: string;
  title: string;
  message: string;
  data: unknown;
}

export interface NotificationProvider {
  send(notification: OutgoingNotification): Promise<void>;
}

export const recordedDeliveriesPrefix = "notification-deliveries/";

/**
 * Records each send as its own object (a fresh key per call, so a double send shows up as two
 * objects): the local stack's and the tests' stand-in, so a developer can see what would be delivered.
 */
export function recordingProvider(bucket: R2Bucket): NotificationProvider {
  return {
    async send(notification) {
      const key = `${recordedDeliveriesPrefix}${notification.deliveryId}/${crypto.randomUUID()}.json`;
      await bucket.put(key, JSON.stringify(notification), { httpMetadata: { contentType: "application/json" } });
    },
  };
}

/** Whether the email and push channels can deliver in this environment (README: Notifications, "Channels"). */
export const deliveryChannelsEnabled = (env: Env): boolean => env.ENVIRONMENT !== "production";

/**
 * The provider SEND_NOTIFICATION delivers through. Production has no email or push provider yet, so
 * those channels are disabled there: notifications.create refuses them and nothing pretends to deliver;
 * the recording stand-in exists only in development and tests.
 */
export function notificationProviderFor(env: Env): NotificationProvider {
  if (deliveryChannelsEnabled(env)) return recordingProvider(env.CONTENT_BUCKET);
  return {
    async send() {
      throw new AppError("VALIDATION_FAILED", "Email and push notification channels are disabled in production", { tier: "notifications" });
    },
  };
}
