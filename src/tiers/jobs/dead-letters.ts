// Dead-letter consumer: what exhausted its retries is recorded loudly and acknowledged.
import type { Logger } from "../../core/logger";

export async function consumeDeadLetters(batch: MessageBatch<unknown>, logger: Logger): Promise<void> {
  for (const message of batch.messages) {
    logger.error("job dead-lettered", { messageId: message.id, attempts: message.attempts, body: message.body });
    message.ack();
  }
}
