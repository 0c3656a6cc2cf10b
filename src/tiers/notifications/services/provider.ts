// Where notifications leave the platform: one provider interface per channel (email, webhook, push), and which
// implementation an environment gets. A channel with no provider configured is refused at creation.
import { encryptNotification } from "@block65/webcrypto-web-push";
import { importJWK, SignJWT } from "jose";
import { Webhook } from "standardwebhooks";
import { type EmailProvider, emailProviderFor } from "../../../platform/email";
import type { Env } from "../../../platform/env";
import { outboundUrlProblem } from "../../../platform/outbound-url";
import { notificationsConfig } from "../config";

/**
 * What one attempt came to: delivered (with the provider's id), refused for good (never retried), or, for push, the
 * subscription is gone (404/410: it is removed). Transient failures throw.
 */
export type ChannelResult =
  | { outcome: "sent"; providerId: string | null }
  | { outcome: "rejected"; reason: string }
  | { outcome: "expired"; reason: string };

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

export interface PushTarget {
  endpoint: string;
  p256dh: string;
  auth: string;
}

export interface PushChannel {
  send(push: { deliveryId: string; subscription: PushTarget; notification: NotificationPayload; at: Date }): Promise<ChannelResult>;
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
export function httpWebhookChannel(env: Pick<Env, "ENVIRONMENT">, timeoutMs = notificationsConfig.webhooks.timeoutMs): WebhookChannel {
  return {
    async send({ deliveryId, url, secret, payload, at }) {
      // Checked at creation too; again here, so an endpoint stored before the guard (or under other rules) is never called.
      const problem = outboundUrlProblem(env, url);
      if (problem) return { outcome: "rejected", reason: `The webhook URL ${problem}` };
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

/** What the service worker receives (decrypted by the browser): small enough for one 4 KiB record (RFC 8291). */
export function pushMessage(n: NotificationPayload): string {
  const message = { id: n.id, type: n.type, title: n.title, body: n.message, createdAt: n.createdAt };
  const encoder = new TextEncoder();
  // The encrypted record holds at most 3,993 bytes of plaintext; long bodies are cut (the in-app row has the rest).
  while (encoder.encode(JSON.stringify(message)).byteLength > 3000) message.body = `${message.body.slice(0, Math.floor(message.body.length * 0.8))}…`;
  return JSON.stringify(message);
}

const fromBase64Url = (value: string) => Uint8Array.from(atob(value.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (value.length % 4)) % 4)), (c) => c.charCodeAt(0));
const toBase64Url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export interface VapidConfig {
  publicKey: string;
  privateKey: string;
  subject: string;
}

/**
 * Web Push: the payload encrypted per RFC 8291 (aes128gcm) by `@block65/webcrypto-web-push` (WebCrypto, runs on
 * Workers), and a VAPID (RFC 8292) `Authorization: vapid t=<ES256 JWT>, k=<public key>` signed here with `jose`:
 * the library's own VAPID helper reads the wall clock for `exp` and refuses http endpoints, which the local push
 * service of the tests needs (production's SSRF guard refuses http at subscribe time instead). 2xx delivered; 404 or
 * 410 the subscription is gone; 400, 403 and 413 refused for good; anything else, and no answer in time, retried.
 */
export function webPushChannel(env: Pick<Env, "ENVIRONMENT">, vapid: VapidConfig, config: { timeoutMs: number; ttlSeconds: number }): PushChannel {
  let signingKey: Promise<CryptoKey | Uint8Array> | null = null;
  const key = () => {
    const publicKey = fromBase64Url(vapid.publicKey);
    signingKey ??= importJWK(
      { kty: "EC", crv: "P-256", x: toBase64Url(publicKey.slice(1, 33)), y: toBase64Url(publicKey.slice(33, 65)), d: vapid.privateKey },
      "ES256",
    );
    return signingKey;
  };
  return {
    async send({ subscription, notification, at }) {
      const problem = outboundUrlProblem(env, subscription.endpoint);
      if (problem) return { outcome: "rejected", reason: `The push endpoint ${problem}` };
      const audience = new URL(subscription.endpoint).origin;
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", typ: "JWT" })
        .setAudience(audience)
        .setSubject(vapid.subject)
        // RFC 8292 §2: at most 24 hours ahead.
        .setExpirationTime(Math.floor(at.getTime() / 1000) + 12 * 3600)
        .sign(await key());
      let body: Uint8Array;
      try {
        body = await encryptNotification(
          { endpoint: subscription.endpoint, expirationTime: null, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
          new TextEncoder().encode(pushMessage(notification)),
        );
      } catch (error) {
        return { outcome: "rejected", reason: `The subscription's keys cannot encrypt: ${error instanceof Error ? error.message : String(error)}` };
      }
      let response: Response;
      try {
        response = await fetch(subscription.endpoint, {
          method: "POST",
          redirect: "manual",
          signal: AbortSignal.timeout(config.timeoutMs),
          headers: {
            authorization: `vapid t=${jwt}, k=${vapid.publicKey}`,
            ttl: String(config.ttlSeconds),
            urgency: "normal",
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
          },
          body,
        });
      } catch (error) {
        throw new TransientDeliveryError(`The push service is unreachable: ${error instanceof Error ? error.message : String(error)}`);
      }
      const text = response.ok ? "" : (await response.text().catch(() => "")).slice(0, 300);
      if (response.ok) {
        await response.body?.cancel();
        return { outcome: "sent", providerId: response.headers.get("location") };
      }
      const answer = `The push service answered ${response.status}${text ? `: ${text}` : ""}`;
      if (response.status === 404 || response.status === 410) return { outcome: "expired", reason: answer };
      if (response.status === 400 || response.status === 403 || response.status === 413) return { outcome: "rejected", reason: answer };
      throw new TransientDeliveryError(answer);
    },
  };
}

const isProduction = (env: Env) => env.ENVIRONMENT === "production";

/**
 * Whether a channel can deliver in this environment: email needs EMAIL_PROVIDER_URL and, in production,
 * NOTIFICATION_EMAIL_FROM (outside production an unset URL means the platform's in-isolate recorder); push needs
 * the VAPID keys and subject, in every environment. `in_app` always can. notifications.create refuses a channel that cannot.
 */
export function channelConfigured(env: Env, channel: "in_app" | "email" | "push"): boolean {
  if (channel === "in_app") return true;
  if (channel === "push") return Boolean(env.VAPID_PUBLIC_KEY && env.VAPID_PRIVATE_KEY && env.VAPID_SUBJECT);
  if (!isProduction(env)) return true;
  return Boolean(env.EMAIL_PROVIDER_URL && env.NOTIFICATION_EMAIL_FROM);
}

export function channelProvidersFor(env: Env): ChannelProviders {
  return {
    email: channelConfigured(env, "email") ? emailChannel(emailProviderFor(env)) : null,
    webhook: httpWebhookChannel(env),
    push: channelConfigured(env, "push")
      ? webPushChannel(env, { publicKey: env.VAPID_PUBLIC_KEY!, privateKey: env.VAPID_PRIVATE_KEY!, subject: env.VAPID_SUBJECT! }, notificationsConfig.push)
      : null,
    emailFrom: env.NOTIFICATION_EMAIL_FROM ?? notificationsConfig.delivery.developmentFrom,
  };
}
