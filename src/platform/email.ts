// The transactional email provider every tier sends through (SEND_EMAIL, email notifications): an HTTP API in production, a recorder locally.
import type { Env } from "./env";
import { AppError } from "./errors";

export interface OutgoingEmail {
  /** The email's id: the provider's idempotency key, so a redelivered job cannot send twice. */
  emailId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  html?: string | undefined;
  /** Every header of the message, assembled once by `outgoingHeaders` (stored ones, then generated ones). */
  headers?: Record<string, string> | undefined;
  attachments?: OutgoingAttachment[] | undefined;
}

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  /** `attachment`, or `inline` (referenced from the HTML by Content-ID). */
  disposition: string;
  /** Base64 of the file's bytes. */
  content: string;
}

/**
 * The one place the outgoing headers are assembled: the headers stored with the body, then the ones the
 * platform generates (List-Unsubscribe, Message-ID, ...). Header names are case-insensitive, so a generated
 * header replaces a stored one whatever its case: a caller cannot override what the platform must set.
 */
export function outgoingHeaders(stored: Record<string, string>, generated: Record<string, string> = {}): Record<string, string> | undefined {
  const generatedNames = new Set(Object.keys(generated).map((name) => name.toLowerCase()));
  const merged = Object.fromEntries(Object.entries(stored).filter(([name]) => !generatedNames.has(name.toLowerCase())));
  Object.assign(merged, generated);
  return Object.keys(merged).length > 0 ? merged : undefined;
}

/** `rejected`: the provider refused the recipient at once (a hard bounce); anything transient is thrown. */
export type SendResult = { outcome: "sent"; providerMessageId: string } | { outcome: "rejected"; reason: string };

export interface EmailProvider {
  send(email: OutgoingEmail): Promise<SendResult>;
}

/**
 * POSTs the email as JSON with a bearer key and an Idempotency-Key header. 2xx is sent (the
 * response's `id` is the provider's message id), 422 a rejected recipient, anything else transient.
 */
export class HttpEmailProvider implements EmailProvider {
  constructor(
    private readonly url: string,
    private readonly apiKey: string | undefined,
  ) {}

  async send(email: OutgoingEmail): Promise<SendResult> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": email.emailId,
          ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        },
        body: JSON.stringify({
          from: email.from,
          to: [email.to],
          subject: email.subject,
          text: email.text,
          html: email.html,
          headers: email.headers,
          attachments: email.attachments?.length ? email.attachments : undefined,
        }),
      });
    } catch (error) {
      throw new AppError("SERVICE_UNAVAILABLE", "The email provider is unreachable", { tier: "jobs", cause: error });
    }
    if (response.ok) {
      const body = (await response.json().catch(() => ({}))) as { id?: unknown };
      return { outcome: "sent", providerMessageId: typeof body.id === "string" ? body.id : email.emailId };
    }
    if (response.status === 422) return { outcome: "rejected", reason: (await response.text()).slice(0, 500) };
    // Throttling and provider outages are the provider being unavailable: back off without burning attempts.
    if (response.status === 429 || response.status >= 500) {
      throw new AppError("SERVICE_UNAVAILABLE", `The email provider answered ${response.status}`, { tier: "jobs" });
    }
    throw new Error(`The email provider refused the request: ${response.status} ${(await response.text()).slice(0, 500)}`);
  }
}

/** Records what would be sent (this isolate only): the local stack and tests, where nothing may leave. */
export class RecordingEmailProvider implements EmailProvider {
  readonly sent: OutgoingEmail[] = [];

  async send(email: OutgoingEmail): Promise<SendResult> {
    this.sent.push(email);
    return { outcome: "sent", providerMessageId: `recorded-${email.emailId}` };
  }
}

export const recordingEmailProvider = new RecordingEmailProvider();

/** The HTTP provider when configured; the recorder only outside production (where the env check requires the URL). */
export function emailProviderFor(env: Env): EmailProvider {
  if (env.EMAIL_PROVIDER_URL) return new HttpEmailProvider(env.EMAIL_PROVIDER_URL, env.EMAIL_PROVIDER_API_KEY);
  if (env.ENVIRONMENT === "production") {
    throw new AppError("ENV_INVALID", "Server misconfigured: invalid environment variable(s): EMAIL_PROVIDER_URL", {
      details: { problems: [{ variable: "EMAIL_PROVIDER_URL", problem: "is required in production" }] },
    });
  }
  return recordingEmailProvider;
}

/**
 * The Message-ID of an email: its id at its sender's domain, so it is stable across retries and a reply's
 * In-Reply-To / References name the email without any lookup (the sequencer threads follow-ups on it).
 */
export const messageIdFor = (emailId: string, fromAddress: string): string => `<${emailId}@${fromAddress.slice(fromAddress.lastIndexOf("@") + 1)}>`;

const ourMessageId = /^<?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@[^<>@\s]+>?$/i;

/** The email id a Message-ID of ours names (`<uuid@domain>`), or null for anyone else's. */
export function emailIdOfMessageId(messageId: string): string | null {
  const match = ourMessageId.exec(messageId.trim());
  return match ? match[1]!.toLowerCase() : null;
}
