// A Worker whose clock the test sets: its own handlers, with job messages held for the test to deliver at that time.
import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createTRPCClient, httpLink } from "@trpc/client";
import { type Clock, shiftedClock } from "../../src/platform/clock";
import type { JobMessage } from "../../src/platform/jobs/define";
import { createWorker, type AppRouter } from "../../src/index";
import { parseEnv } from "../../src/platform/env";
import { createLogger } from "../../src/platform/logger";
import { createServices } from "../../src/platform/services";
import { cronTasks, wired } from "../../src/root";
import { origin } from "./worker";

/** A clock running from today's date at `hhmm` UTC (e.g. "16:30"). */
export function clockAtUtc(hhmm: string, base = new Date()): Clock {
  return shiftedClock(new Date(`${base.toISOString().slice(0, 10)}T${hhmm}:00Z`));
}

/** A clock that stands still until the test moves it: simulated days in a test that runs for seconds. */
export function settableClock(start: Date) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    set(at: Date) {
      now = at.getTime();
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

/**
 * A queue binding that keeps what is sent to it, so the test delivers it with its own clock instead of
 * Miniflare's consumer. A message sent with a delay waits in `later` until the clock reaches it.
 */
function heldQueue(clock: Clock) {
  const held: JobMessage[] = [];
  const later: Array<{ body: JobMessage; at: number }> = [];
  const keep = (body: JobMessage, delaySeconds?: number) =>
    void (delaySeconds ? later.push({ body, at: clock.now().getTime() + delaySeconds * 1000 }) : held.push(body));
  const binding = {
    send: async (body: JobMessage, options?: { delaySeconds?: number }) => keep(body, options?.delaySeconds),
    sendBatch: async (messages: Iterable<{ body: JobMessage; delaySeconds?: number }>) => {
      for (const m of messages) keep(m.body, m.delaySeconds);
    },
  };
  /** Moves the delayed messages whose time has come to `held`. */
  const release = () => {
    const now = clock.now().getTime();
    for (let i = later.length - 1; i >= 0; i--) {
      if (later[i]!.at <= now) held.push(later.splice(i, 1)[0]!.body);
    }
  };
  return { held, later, binding, keep, release };
}

/**
 * The Worker under `clock`, with its three job queues held: requests through `client`, then `deliver`
 * runs what they enqueued through the same Worker's consumer, at the same clock. `bindings` replace
 * the environment's (a failing R2 or queue).
 */
export function clockedWorker(clock: Clock, bindings: Record<string, unknown> = {}) {
  const worker = createWorker(clock);
  const queues = { JOBS_HIGH: heldQueue(clock), JOBS_NORMAL: heldQueue(clock), JOBS_LOW: heldQueue(clock) };
  // `bindings` replaces some (a failing R2 or queue for fault tests) after the held queues are in place.
  const testEnv = { ...env, JOBS_HIGH: queues.JOBS_HIGH.binding, JOBS_NORMAL: queues.JOBS_NORMAL.binding, JOBS_LOW: queues.JOBS_LOW.binding, ...bindings };
  const fetch = async (request: Request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, testEnv, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
  return {
    clock,
    held: queues,
    /** An HTTP request through this Worker, as a browser, a provider or curl would send it. */
    request: (path: string, init: RequestInit = {}) => fetch(new Request(new URL(path, origin), init)),
    /**
     * Hands a raw RFC 5322 message to this Worker's `email` handler, as Cloudflare Email Routing does
     * (a ForwardableEmailMessage whose `raw` streams the bytes); returns what the handler rejected, if anything.
     */
    async email(raw: string, envelope: { from: string; to: string }) {
      const bytes = new TextEncoder().encode(raw);
      let rejected: string | undefined;
      const message = {
        from: envelope.from,
        to: envelope.to,
        headers: new Headers(),
        raw: new Blob([bytes]).stream(),
        rawSize: bytes.byteLength,
        setReject: (reason: string) => {
          rejected = reason;
        },
        forward: async () => ({ messageId: "" }),
        reply: async () => ({ messageId: "" }),
      } as unknown as ForwardableEmailMessage;
      const ctx = createExecutionContext();
      await worker.email(message, testEnv, ctx);
      await waitOnExecutionContext(ctx);
      return { rejected };
    },
    client: (token: string) =>
      createTRPCClient<AppRouter>({
        links: [httpLink({ url: `${origin}/trpc`, fetch: (url, init) => fetch(new Request(url, init as RequestInit)), headers: () => ({ authorization: `Bearer ${token}` }) })],
      }),
    /**
     * Takes what the given queue holds (and delayed messages now due) and delivers it to the consumer,
     * one message per batch, in order. A message the consumer retries is held again for after its delay.
     */
    async deliver(queue: keyof typeof queues, queueName: string) {
      queues[queue].release();
      const messages = queues[queue].held.splice(0);
      for (const body of messages) {
        const batch = createMessageBatch(queueName, [{ id: crypto.randomUUID(), timestamp: clock.now(), attempts: 1, body }]);
        const ctx = createExecutionContext();
        await worker.queue(batch, testEnv, ctx);
        const result = await getQueueResult(batch, ctx);
        for (const retry of result.retryMessages) queues[queue].keep(body, retry.delaySeconds ?? 1);
      }
      return messages.length;
    },
    /**
     * Runs one named cron task (not its whole schedule) with this Worker's environment, at the clock's now: for a
     * test about that task, without the schedule's other work over everything earlier tests left in the stores.
     */
    async runTask(name: string) {
      const task = cronTasks.find((t) => t.name === name);
      if (!task) throw new Error(`no cron task named ${name}`);
      const pending: Promise<unknown>[] = [];
      const services = createServices(
        { env: parseEnv(testEnv), requestId: crypto.randomUUID(), logger: createLogger("warn"), clock, waitUntil: (p) => void pending.push(p) },
        wired,
      );
      await task.run(services);
      await Promise.all(pending);
    },
    /** Runs a cron trigger (its expression, as in wrangler.toml) on this Worker at the clock's now. */
    async scheduled(cron: string) {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron, scheduledTime: clock.now() }), testEnv, ctx);
      await waitOnExecutionContext(ctx);
    },
  };
}
