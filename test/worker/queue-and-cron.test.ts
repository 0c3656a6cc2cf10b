import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { schedules } from "../support/runtime";
import { queueNames } from "../support/runtime";

describe("queue consumer", () => {
  it("acks a valid job and retries a malformed one towards the dead-letter queue", async () => {
    const good = {
      id: "m-good",
      timestamp: new Date(),
      attempts: 1,
      body: { jobId: crypto.randomUUID(), type: "NOOP", tenantId: null, payload: {}, enqueuedAt: new Date().toISOString() },
    };
    const bad = { id: "m-bad", timestamp: new Date(), attempts: 1, body: { type: "DROP_TABLES" } };
    const batch = createMessageBatch(queueNames.normal, [good, bad]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["m-good"]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["m-bad"]);
  });

  it("the dead-letter consumer acknowledges what it has recorded", async () => {
    const batch = createMessageBatch(queueNames.dead, [{ id: "m-dead", timestamp: new Date(), attempts: 6, body: { type: "NOOP" } }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["m-dead"]);
  });
});

describe("cron triggers", () => {
  // That these are exactly wrangler.toml's triggers is checked from Node: test/stack/wrangler-config.test.ts.
  it("every schedule's trigger runs its tasks", async () => {
    for (const cron of Object.values(schedules)) {
      const controller = createScheduledController({ cron, scheduledTime: new Date() });
      await expect(worker.scheduled(controller, env, createExecutionContext())).resolves.toBeUndefined();
    }
  });

  it("a trigger whose expression no schedule has fails the run loudly, naming the expression", async () => {
    const controller = createScheduledController({ cron: "15 4 * * *", scheduledTime: new Date() });
    await expect(worker.scheduled(controller, env, createExecutionContext())).rejects.toThrow(/15 4 \* \* \*/);
  });
});
