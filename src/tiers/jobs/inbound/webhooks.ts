// Provider webhooks (POST /v1/webhooks/<provider>): signature and timestamp checked, events mapped to facts and queued; OLTP is never touched here.
import { Hono } from "hono";
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import { emailIdOfMessageId } from "../../../platform/email";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { type InboundFact, type InboundFactType, inboundFactTypes, queueInboundFacts } from "./facts";

/** How far a webhook's timestamp may be from the Worker's clock (the Standard Webhooks default): older is a replay. */
export const webhookToleranceSeconds = 300;
/** Larger bodies are refused before they are read whole. */
const maxBodyBytes = 1_000_000;

const badSignature = (why: string) => new AppError("WEBHOOK_SIGNATURE_INVALID", `The webhook's signature is not valid: ${why}`);
const notConfigured = (provider: string) => new AppError("ROUTE_NOT_FOUND", `No webhook provider '${provider}' is configured`);

function checkTimestamp(seconds: string | undefined, now: Date): Date {
  if (!seconds || !/^\d{1,12}$/.test(seconds)) throw badSignature("missing or malformed timestamp");
  const at = Number(seconds) * 1000;
  if (Math.abs(now.getTime() - at) > webhookToleranceSeconds * 1000) throw badSignature("timestamp outside the tolerance");
  return new Date(at);
}

const encoder = new TextEncoder();
const sameBytes = (a: string, b: string) => {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  return left.byteLength === right.byteLength && crypto.subtle.timingSafeEqual(left, right);
};

/** Ignored facts (unknown email, an event kind nothing is recorded for) are counted, not refused: the provider must not retry them. */
interface Parsed {
  facts: InboundFact[];
  ignored: number;
}

// --- Standard Webhooks (https://www.standardwebhooks.com): our generic signed JSON format --------------------------------

const standardEvent = z.object({
  id: z.string().min(1).max(200),
  type: z.enum(inboundFactTypes),
  /** The email's id, or the Message-ID it was sent with (`<email id@domain>`). */
  emailId: z.uuid().optional(),
  messageId: z.string().max(998).optional(),
  occurredAt: z.iso.datetime({ offset: true }).optional(),
});
const standardBody = z.object({ events: z.array(standardEvent).min(1).max(1000) });

/**
 * `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA-256 of id.timestamp.body>`,
 * several space-separated while a secret rotates). The `standardwebhooks` package computes the signature; the
 * timestamp is checked here against the services clock (the package would read the wall clock).
 */
async function standardFacts(env: Env, headers: Headers, body: string, now: Date): Promise<Parsed> {
  if (!env.WEBHOOK_SIGNING_SECRET) throw notConfigured("standard");
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp") ?? undefined;
  const signatures = (headers.get("webhook-signature") ?? "").split(" ").filter(Boolean);
  if (!id || id.length > 200 || signatures.length === 0) throw badSignature("missing webhook-id or webhook-signature");
  const at = checkTimestamp(timestamp, now);
  const expected = new Webhook(env.WEBHOOK_SIGNING_SECRET).sign(id, at, body);
  if (!signatures.some((signature) => sameBytes(signature, expected))) throw badSignature("no signature matches");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new AppError("MALFORMED_JSON", "The webhook's body is not JSON");
  }
  const parsed = standardBody.safeParse(json);
  if (!parsed.success) throw new AppError("VALIDATION_FAILED", "The webhook's body is not a batch of events", { details: parsed.error.issues.slice(0, 20) });
  const facts: InboundFact[] = [];
  for (const event of parsed.data.events) {
    const emailId = event.emailId ?? (event.messageId ? emailIdOfMessageId(event.messageId) : null);
    if (!emailId) continue;
    facts.push({ sourceEventId: `standard:${event.id}`, type: event.type, emailId, occurredAt: new Date(event.occurredAt ?? at).toISOString() });
  }
  return { facts, ignored: parsed.data.events.length - facts.length };
}

// --- SendGrid's Signed Event Webhook ----------------------------------------------------------------------------------

/** SendGrid's event names and what each is here; `processed`, `deferred` and the rest record nothing. */
const sendgridKinds: Record<string, InboundFactType> = {
  delivered: "delivered",
  bounce: "bounced",
  dropped: "failed",
  open: "opened",
  click: "clicked",
  spamreport: "complained",
  unsubscribe: "unsubscribed",
  group_unsubscribe: "unsubscribed",
};

const sendgridEvent = z.looseObject({
  event: z.string().max(64),
  sg_event_id: z.string().min(1).max(200),
  timestamp: z.number().int().nonnegative().optional(),
  /** `bounce` (hard) or `blocked` (a soft bounce, sent again by SendGrid): only a hard bounce is a bounce here. */
  type: z.string().max(64).optional(),
  /** The custom argument SEND_EMAIL's provider request may carry, and the Message-ID SendGrid reports as `smtp-id`. */
  email_id: z.string().max(64).optional(),
  "smtp-id": z.string().max(998).optional(),
});
const sendgridBody = z.array(sendgridEvent).min(1).max(5000);

/**
 * SendGrid signs with ECDSA P-256 / SHA-256 over `timestamp + raw body` and sends the signature DER-encoded
 * (base64). WebCrypto verifies IEEE P1363 (r‖s, 32 bytes each), so the DER is unpacked here: a fixed
 * two-integer structure for which a general ASN.1 library would be far more code than it replaces.
 */
export function derToP1363(der: Uint8Array): Uint8Array | null {
  const read = (at: number): [Uint8Array, number] | null => {
    if (der[at] !== 0x02) return null;
    const length = der[at + 1]!;
    if (length < 1 || length > 33 || at + 2 + length > der.length) return null;
    let value = der.subarray(at + 2, at + 2 + length);
    while (value.length > 32 && value[0] === 0) value = value.subarray(1);
    if (value.length > 32) return null;
    return [value, at + 2 + length];
  };
  if (der[0] !== 0x30 || der[1] !== der.length - 2) return null;
  const r = read(2);
  const s = r && read(r[1]);
  if (!r || !s || s[1] !== der.length) return null;
  const out = new Uint8Array(64);
  out.set(r[0], 32 - r[0].length);
  out.set(s[0], 64 - s[0].length);
  return out;
}

const decodeBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

const sendgridKeys = new Map<string, Promise<CryptoKey>>();
/** The verification key as SendGrid shows it: base64 SubjectPublicKeyInfo, with or without PEM armour. */
function sendgridKey(publicKey: string): Promise<CryptoKey> {
  let key = sendgridKeys.get(publicKey);
  if (!key) {
    const der = decodeBase64(publicKey.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, ""));
    key = crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    key.catch(() => sendgridKeys.delete(publicKey));
    sendgridKeys.set(publicKey, key);
  }
  return key;
}

export async function verifySendgridSignature(publicKey: string, signature: string, timestamp: string, body: string): Promise<boolean> {
  let raw: Uint8Array | null;
  try {
    raw = derToP1363(decodeBase64(signature));
  } catch {
    return false;
  }
  if (!raw) return false;
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, await sendgridKey(publicKey), raw, encoder.encode(timestamp + body));
}

async function sendgridFacts(env: Env, headers: Headers, body: string, now: Date): Promise<Parsed> {
  if (!env.SENDGRID_WEBHOOK_PUBLIC_KEY) throw notConfigured("sendgrid");
  const signature = headers.get("x-twilio-email-event-webhook-signature");
  const timestamp = headers.get("x-twilio-email-event-webhook-timestamp") ?? undefined;
  if (!signature || signature.length > 200) throw badSignature("missing X-Twilio-Email-Event-Webhook-Signature");
  const at = checkTimestamp(timestamp, now);
  if (!(await verifySendgridSignature(env.SENDGRID_WEBHOOK_PUBLIC_KEY, signature, timestamp!, body))) throw badSignature("no signature matches");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new AppError("MALFORMED_JSON", "The webhook's body is not JSON");
  }
  const parsed = sendgridBody.safeParse(json);
  if (!parsed.success) throw new AppError("VALIDATION_FAILED", "The webhook's body is not a batch of SendGrid events", { details: parsed.error.issues.slice(0, 20) });
  const facts: InboundFact[] = [];
  for (const event of parsed.data) {
    const type = sendgridKinds[event.event];
    if (!type || (event.event === "bounce" && event.type === "blocked")) continue;
    const fromArg = event.email_id && z.uuid().safeParse(event.email_id).success ? event.email_id.toLowerCase() : null;
    const emailId = fromArg ?? (event["smtp-id"] ? emailIdOfMessageId(event["smtp-id"]) : null);
    if (!emailId) continue;
    const occurredAt = event.timestamp !== undefined && event.timestamp < 1e11 ? new Date(event.timestamp * 1000) : at;
    facts.push({ sourceEventId: `sendgrid:${event.sg_event_id}`, type, emailId, occurredAt: occurredAt.toISOString() });
  }
  return { facts, ignored: parsed.data.length - facts.length };
}

const providers: Record<string, (env: Env, headers: Headers, body: string, now: Date) => Promise<Parsed>> = {
  standard: standardFacts,
  sendgrid: sendgridFacts,
};

export const webhookRoutes = new Hono();

/**
 * 200 once the facts are on the queue (the provider may forget them); 401 for a bad signature or a stale
 * timestamp, with nothing queued; 503 when the queue refuses them, so the provider sends them again.
 */
webhookRoutes.post("/:provider", async (c) => {
  const provider = c.req.param("provider");
  const parse = Object.hasOwn(providers, provider) ? providers[provider] : undefined;
  if (!parse) throw notConfigured(provider.slice(0, 40));
  const length = Number(c.req.header("content-length") ?? "0");
  if (length > maxBodyBytes) throw new AppError("PAYLOAD_TOO_LARGE", `A webhook body may be at most ${maxBodyBytes} bytes`);
  const body = await c.req.text();
  if (body.length > maxBodyBytes) throw new AppError("PAYLOAD_TOO_LARGE", `A webhook body may be at most ${maxBodyBytes} bytes`);
  const services = c.get("services");
  const { facts, ignored } = await parse(services.env, c.req.raw.headers, body, services.clock.now());
  await queueInboundFacts(services, facts);
  return c.json({ accepted: facts.length, ignored });
});
