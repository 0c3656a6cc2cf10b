// Where notifications leave the platform: one provider interface per channel (email, webhook, push), and which
// implementation an environment gets. A channel with no provider configured in production is refused at creation.
import { Webhook } from "standardwebhooks";
import { type EmailProvider, emailProviderFor } from "../../../platform/email";
import type { Env } from "../../../platform/env";
import { notificationsConfig } from "../config";

/** What one attempt came to: delivered (with the provider's id), or refused for good (never retried). Transient failures throw. */
export type ChannelResult = { outcome: "sent"; providerId: string | null } | { outcome: "rejected"; reason: string };

/** A failure worth retrying: the provider was unreachable or answered with an error. */
export class TransientDeliveryError extends Error {
  override name = "TransientDeliveryError";
}

export interface NotificationPayload {
  id: string;
  tenantId: string;
  userId: string | null;
  type: string;
  title: string;
  message: string;
  data: unknown;
  channel: string;
  createdAt: string;
}

export interface EmailChannel {
  send(email: { deliveryId: string; from: string; to: string; subject: string; text: string; html: string }): Promise<ChannelResult>;
}

export interface WebhookChannel {
  send(request: { deliveryId: string; url: string; secret: string; payload: unknown; at: Date }): Promise<ChannelResult>;
}

export interface PushChannel {
  send(push: { deliveryId: string; notification: NotificationPayload }): Promise<ChannelResult>;
}

export interface ChannelProviders {
  email: EmailChannel | null;
  webhook: WebhookChannel;
  push: PushChannel | null;
  /** The sender address of email notifications. */
  emailFrom: string;
}

/** Email through the platform's transactional provider (the one SEND_EMAIL uses); the outbox row's id is its idempotency key. */
export function emailChannel(provider: EmailProvider): EmailChannel {
  return {
    async send(email) {
      let result: Awaited<ReturnType<EmailProvider["send"]>>;
      try {
        result = await provider.send({ emailId: email.deliveryId, from: email.from, to: email.to, subject: email.subject, text: email.text, html: email.html });
      } catch (error) {
        throw new TransientDeliveryError(error instanceof Error ? error.message : String(error));
      }
      return result.outcome === "sent" ? { outcome: "sent", providerId: result.providerMessageId } : result;
    },
  };
}

/**
 * Standard Webhooks: `webhook-id` (the outbox row's id, stable across retries so receivers can de-duplicate),
 * `webhook-timestamp` (seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`),
 * signed by the `standardwebhooks` package. Any 2xx is delivered; everything else, and no answer in time, is retried.
 */
export function httpWebhookChannel(timeoutMs = notificationsConfig.webhooks.timeoutMs): WebhookChannel {
  return {
    async send({ deliveryId, url, secret, payload, at }) {
      const body = JSON.stringify(payload);
      const signature = new Webhook(secret).sign(deliveryId, at, body);
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          redirect: "manual",
          signal: AbortSignal.timeout(timeoutMs),
          headers: {
            "content-type": "application/json",
            "user-agent": "edge-data-platform-webhooks/1",
            "webhook-id": deliveryId,
            "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
            "webhook-signature": signature,
          },
          body,
        });
      } catch (error) {
        throw new TransientDeliveryError(`The receiver is unreachable: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (response.status >= 200 && response.status < 300) {
        await response.body?.cancel();
        return { outcome: "sent", providerId: null };
      }
      const text = (await response.text().catch(() => "")).slice(0, 300);
      throw new TransientDeliveryError(`The receiver answered ${response.status}${text ? `: ${text}` : ""}`);
    },
  };
}

export const recordedDeliveriesPrefix = "notification-deliveries/";

/**
 * Push has no provider yet (Web Push is not built): outside production each send is recorded as its own object
 * (a fresh key per call, so a double send shows up as two objects) where a developer can see it.
 */
export function recordingPushChannel(bucket: R2Bucket): PushChannel {
  return {
    async send({ deliveryId, notification }) {
      const key = `${recordedDeliveriesPrefix}${deliveryId}/${crypto.randomUUID()}.json`;
      await bucket.put(key, JSON.stringify({ deliveryId, ...notification }), { httpMetadata: { contentType: "application/json" } });
      return { outcome: "sent", providerId: key };
    },
  };
}

const isProduction = (env: Env) => env.ENVIRONMENT === "production";

/**
 * Whether a channel can deliver in this environment: email needs EMAIL_PROVIDER_URL and, in production,
 * NOTIFICATION_EMAIL_FROM (outside production an unset URL means the platform's in-isolate recorder); push has
 * no production provider. `in_app` always can. notifications.create refuses a channel that cannot.
 */
export function channelConfigured(env: Env, channel: "in_app" | "email" | "push"): boolean {
  if (channel === "in_app") return true;
  if (!isProduction(env)) return true;
  if (channel === "email") return Boolean(env.EMAIL_PROVIDER_URL && env.NOTIFICATION_EMAIL_FROM);
  return false;
}

export function channelProvidersFor(env: Env): ChannelProviders {
  return {
    email: channelConfigured(env, "email") ? emailChannel(emailProviderFor(env)) : null,
    webhook: httpWebhookChannel(),
    push: isProduction(env) ? null : recordingPushChannel(env.CONTENT_BUCKET),
    emailFrom: env.NOTIFICATION_EMAIL_FROM ?? notificationsConfig.delivery.developmentFrom,
  };
}
