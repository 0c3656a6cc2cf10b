// Inbound engagement facts (provider webhooks, replies, opens and clicks): queued at the edge, recorded in OLTP by RECORD_INBOUND_FACTS.
import { sql } from "drizzle-orm";
import { z } from "zod";
import { internalBatch } from "../../../platform/db";
import { AppError } from "../../../platform/errors";
import { backoffSeconds, defineJob, queues } from "../../../platform/jobs/define";
import { rowsOf } from "../../../platform/rows";
import { type Services, tenantSystemScope } from "../../../platform/services";
import { addressHasher, recordEmailEvent } from "../../oltp";

/** What arrives from outside; `recordEmailEvent` decides what each does to the email, the lead and its sequences. */
export const inboundFactTypes = ["delivered", "bounced", "failed", "opened", "clicked", "replied", "complained", "unsubscribed"] as const;
export type InboundFactType = (typeof inboundFactTypes)[number];

export const inboundFact = z
  .object({
    /** The fact's own id (`sendgrid:<sg_event_id>`, `standard:<id>`, `reply:<Message-ID>`, `open:<email>`): recorded once. */
    sourceEventId: z.string().min(1).max(300),
    type: z.enum(inboundFactTypes),
    emailId: z.uuid(),
    occurredAt: z.iso.datetime(),
  })
  .strict();
export type InboundFact = z.infer<typeof inboundFact>;

/** Facts per queue message: far below the 128 KB message limit. */
const factsPerMessage = 50;

const isTierDown = (error: unknown) => error instanceof AppError && error.code === "SERVICE_UNAVAILABLE";

/**
 * Records each fact in its email's tenant through `recordEmailEvent` (status forward only, suppression,
 * stopped sequences), once per source event id. No ledger row: the fact's durable record is the queue
 * message itself. While OLTP is down the facts go back on the queue as a fresh message
 * with a growing delay (`deferrals`), so an outage longer than the queue's own retries loses nothing;
 * only if that send fails too does the queue retry this delivery.
 */
export const recordInboundFactsJob = defineJob({
  type: "RECORD_INBOUND_FACTS",
  payload: z.object({ facts: z.array(inboundFact).min(1).max(factsPerMessage), deferrals: z.number().int().min(1).max(10_000).optional() }).strict(),
  queue: "normal",
  ledger: false,
  maxAttempts: 6,
  backoff: { baseSeconds: 10, maxSeconds: 900 },
  run: async ({ payload: { facts, deferrals }, services }) => {
    try {
      await recordFacts(services, facts);
    } catch (error) {
      if (!isTierDown(error)) throw error;
      // All of them go back: those recorded before the outage are no-ops next time (their fact ids exist).
      const next = (deferrals ?? 0) + 1;
      const message = services.jobs.direct(recordInboundFactsJob.type, null, { facts, deferrals: next });
      const delaySeconds = backoffSeconds(recordInboundFactsJob, next);
      await services.env[queues[recordInboundFactsJob.queue].binding].send(message.message, { contentType: "json", delaySeconds });
      services.logger.warn("inbound facts put back while OLTP is down", { count: facts.length, deferrals: next, delaySeconds });
    }
  },
});

/** Finds each fact's tenant (one read as the platform), then records the facts one by one in their tenants. */
async function recordFacts(services: Services, facts: InboundFact[]): Promise<void> {
  const store = services.store("oltp");
  const ids = [...new Set(facts.map((fact) => fact.emailId))];
  // A fact names an email, not a tenant (a Message-ID, a provider's event): the platform finds the tenant, then works inside it.
  const [owners] = await internalBatch(store, "system", null, (db) => [
    db.execute(sql`select id, tenant_id from emails where id in (select value::uuid from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`),
  ]);
  const tenantOf = new Map(rowsOf(owners).map((row) => [String(row.id), String(row.tenant_id)]));
  for (const fact of facts) {
    const tenantId = tenantOf.get(fact.emailId);
    if (!tenantId) {
      services.logger.info("inbound fact for an unknown email dropped", { sourceEventId: fact.sourceEventId, emailId: fact.emailId });
      continue;
    }
    await recordEmailEvent(store, tenantSystemScope(tenantId), {
      emailId: fact.emailId,
      type: fact.type,
      occurredAt: new Date(fact.occurredAt),
      sourceEventId: fact.sourceEventId,
    }, addressHasher(services.env));
  }
}

/**
 * Sends the facts to the queue and waits for it: the caller answers 2xx only once they are durable there,
 * so a failed send is SERVICE_UNAVAILABLE and the provider retries (no OLTP round trip on this path).
 */
export async function queueInboundFacts(services: Services, facts: InboundFact[]): Promise<void> {
  if (facts.length === 0) return;
  const messages = [];
  for (let start = 0; start < facts.length; start += factsPerMessage) {
    messages.push(services.jobs.direct(recordInboundFactsJob.type, null, { facts: facts.slice(start, start + factsPerMessage) }));
  }
  const queue = queues[recordInboundFactsJob.queue];
  try {
    for (let start = 0; start < messages.length; start += 100) {
      await services.env[queue.binding].sendBatch(messages.slice(start, start + 100).map((m) => ({ body: m.message, contentType: "json" as const })));
    }
  } catch (error) {
    services.logger.warn("inbound facts not queued", { count: facts.length, error });
    throw new AppError("SERVICE_UNAVAILABLE", "The event queue is unavailable; send again later", { tier: "jobs", cause: error });
  }
}
