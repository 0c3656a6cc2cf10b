// Where email and push notifications leave the platform: a small interface and the recording implementation.

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
 * objects). Stands in for the real email and push providers until the jobs tier brings them.
 */
export function recordingProvider(bucket: R2Bucket): NotificationProvider {
  return {
    async send(notification) {
      const key = `${recordedDeliveriesPrefix}${notification.deliveryId}/${crypto.randomUUID()}.json`;
      await bucket.put(key, JSON.stringify(notification), { httpMetadata: { contentType: "application/json" } });
    },
  };
}
