// A Worker whose clock the test sets: its own handlers, with job messages held for the test to deliver at that time.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createTRPCClient, httpLink } from "@trpc/client";
import { type Clock, shiftedClock } from "../../src/platform/clock";
import type { JobMessage } from "../../src/platform/jobs/define";
import { createWorker, type AppRouter } from "../../src/index";
import { origin } from "./worker";

/** A clock running from today's date at `hhmm` UTC (e.g. "16:30"). */
export function clockAtUtc(hhmm: string, base = new Date()): Clock {
  return shiftedClock(new Date(`${base.toISOString().slice(0, 10)}T${hhmm}:00Z`));
}

/** A queue binding that keeps what is sent to it, so the test delivers it with its own clock instead of Miniflare's consumer. */
function heldQueue() {
  const held: JobMessage[] = [];
  const binding = {
    send: async (body: JobMessage) => void held.push(body),
    sendBatch: async (messages: Iterable<{ body: JobMessage }>) => {
      for (const m of messages) held.push(m.body);
    },
  };
  return { held, binding };
}

/**
 * The Worker under `clock`, with its three job queues held: requests through `client`, then `deliver`
 * runs what they enqueued through the same Worker's consumer, at the same clock.
 */
export function clockedWorker(clock: Clock) {
  const worker = createWorker(clock);
  const queues = { JOBS_HIGH: heldQueue(), JOBS_NORMAL: heldQueue(), JOBS_LOW: heldQueue() };
  const testEnv = { ...env, JOBS_HIGH: queues.JOBS_HIGH.binding, JOBS_NORMAL: queues.JOBS_NORMAL.binding, JOBS_LOW: queues.JOBS_LOW.binding };
  const fetch = async (request: Request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, testEnv, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  return {
    clock,
    held: queues,
    client: (token: string) =>
      createTRPCClient<AppRouter>({
        links: [httpLink({ url: `${origin}/trpc`, fetch: (url, init) => fetch(new Request(url, init as RequestInit)), headers: () => ({ authorization: `Bearer ${token}` }) })],
      }),
    /** Takes what the given queue holds and delivers it to the consumer, one message per batch, in order. */
    async deliver(queue: keyof typeof queues, queueName: string) {
      const messages = queues[queue].held.splice(0);
      for (const body of messages) {
        const batch = createMessageBatch(queueName, [{ id: crypto.randomUUID(), timestamp: clock.now(), attempts: 1, body }]);
        const ctx = createExecutionContext();
        await worker.queue(batch, testEnv, ctx);
        await getQueueResult(batch, ctx);
      }
      return messages.length;
    },
  };
}
