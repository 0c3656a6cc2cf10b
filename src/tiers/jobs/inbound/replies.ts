// Replies (Cloudflare Email Routing → the Worker's `email` handler): the MIME message is parsed and matched to the email it answers.
import PostalMime from "postal-mime";
import { emailIdOfMessageId } from "../../../platform/email";
import type { Services } from "../../../platform/services";
import { queueInboundFacts } from "./facts";

/** Ids in a References / In-Reply-To header, in order. */
const messageIds = (header: string | undefined) => header?.match(/<[^<>\s]+>/g) ?? [];

/**
 * The email a reply answers: In-Reply-To first, then References from the newest. Only our own Message-IDs
 * (`<email id@domain>`) match. Returns null for mail that answers nothing of ours.
 */
export function repliedEmailId(inReplyTo: string | undefined, references: string | undefined): string | null {
  for (const candidate of [...messageIds(inReplyTo), ...messageIds(references).reverse()]) {
    const emailId = emailIdOfMessageId(candidate);
    if (emailId) return emailId;
  }
  return null;
}

/**
 * Parses the raw message (postal-mime) and queues one `replied` fact, keyed by the reply's own Message-ID
 * (so Email Routing's redelivery records it once). A message that answers none of our emails is ignored.
 * A queue failure throws, so Email Routing keeps the message and tries again.
 */
export async function receiveReply(raw: ReadableStream | ArrayBuffer | string, services: Services): Promise<{ emailId: string | null }> {
  const parsed = await PostalMime.parse(raw);
  const emailId = repliedEmailId(parsed.inReplyTo, parsed.references);
  if (!emailId) {
    services.logger.info("inbound mail answers no email of ours", { messageId: parsed.messageId ?? null });
    return { emailId: null };
  }
  const replyId = parsed.messageId?.slice(0, 250) ?? `${emailId}:${parsed.date ?? ""}:${parsed.from?.address ?? ""}`;
  await queueInboundFacts(services, [{ sourceEventId: `reply:${replyId}`, type: "replied", emailId, occurredAt: services.clock.now().toISOString() }]);
  return { emailId };
}
