// The services context: built once per fetch, queue delivery and scheduled run, and passed explicitly to every service and job.
import type { Redis } from "@upstash/redis/cloudflare";
import type { Clock } from "./clock";
import { tierStore, type DbTier, type TenantScope, type TierStore } from "./db";
import type { AuditEmitter, RequestOrigin, SystemEvents } from "./emitters";
import type { Env } from "./env";
import type { SQL } from "drizzle-orm";
import { type AnyJob, JobRegistry } from "./jobs/define";
import { directMessage, enqueueJobs, prepareJobs, sendJobMessages, type JobRequest, type PreparedJobs, type QueuedMessage } from "./jobs/enqueue";
import type { Job } from "./jobs/rows";
import type { Logger } from "./logger";
import { createRedis } from "./redis";
import { createTelemetry, type Telemetry } from "./telemetry";

/** The job runtime as services see it: prepare in the caller's transaction, send after commit. */
export interface Jobs {
  readonly registry: JobRegistry;
  /** Ledger rows for the caller's own batch, and the messages to send once it commits. */
  prepare(tenantId: string | null, requests: JobRequest[], when?: SQL): PreparedJobs;
  /** A job with no ledger row (its record lives in its own tier), ready to send. */
  direct(type: string, tenantId: string | null, payload: unknown, id?: string): QueuedMessage;
  /** Sends now and waits (jobs and crons, whose run is the unit of work); failures are logged, never thrown. */
  send(messages: QueuedMessage[]): Promise<void>;
  /** Sends now and throws if the queue refuses: for messages that are their own only durable record. */
  sendOrThrow(messages: QueuedMessage[]): Promise<void>;
  /** Sends off the response path (requests): the caller answers without waiting for the queue. */
  sendAfterResponse(messages: QueuedMessage[]): void;
  /** Jobs with no other change to commit with them: one OLTP round trip, the sends after it. */
  enqueue(scope: TenantScope, requests: JobRequest[]): Promise<Job[]>;
}

export interface Services {
  env: Env;
  /** The request id, or a fresh id per queue delivery and cron run, carried by logs and audit entries. */
  requestId: string;
  logger: Logger;
  clock: Clock;
  /** Where a request came from (audit entries); nulls outside a request. */
  origin: RequestOrigin;
  store(tier: DbTier): TierStore;
  redis(): Redis;
  waitUntil(promise: Promise<unknown>): void;
  jobs: Jobs;
  audit: AuditEmitter;
  systemEvents: SystemEvents;
  /** The out-of-band sinks (log drain, product events): never awaited, never failing a caller. */
  telemetry: Telemetry;
}

/**
 * What the root composes from the tiers and hands to every context: the platform knows the jobs and
 * the emitters only through these, never by importing a tier.
 */
export interface Wiring {
  jobs: JobRegistry;
  audit(services: Services): AuditEmitter;
  systemEvents(services: Services): SystemEvents;
  /** Which tenants opted out of product events (the telemetry flush drops their facts); absent, none did. */
  productEventsOptOut?: (services: Services) => (tenantIds: string[]) => Promise<Set<string>>;
}

export function wiring(parts: {
  jobs: readonly AnyJob[];
  audit: Wiring["audit"];
  systemEvents: Wiring["systemEvents"];
  productEventsOptOut?: Wiring["productEventsOptOut"];
}): Wiring {
  return {
    jobs: new JobRegistry(parts.jobs),
    audit: parts.audit,
    systemEvents: parts.systemEvents,
    ...(parts.productEventsOptOut ? { productEventsOptOut: parts.productEventsOptOut } : {}),
  };
}

export interface ServicesInit {
  env: Env;
  requestId: string;
  logger: Logger;
  clock: Clock;
  origin?: RequestOrigin;
  waitUntil(promise: Promise<unknown>): void;
}

/** The service name on telemetry records and spans. */
export const telemetryService = "edge-data-platform";

const noOrigin: RequestOrigin = { ip: null, userAgent: null };

/** Clients are built lazily and once per context: no module-level connections on Workers. */
export function createServices(init: ServicesInit, wired: Wiring): Services {
  const stores = new Map<DbTier, TierStore>();
  let redis: Redis | undefined;
  const send = (messages: QueuedMessage[]) => (messages.length === 0 ? Promise.resolve() : sendJobMessages(init.env, init.logger, messages));
  // The emitters are set right below, once the context they are built on exists.
  const services = {
    env: init.env,
    requestId: init.requestId,
    logger: init.logger,
    clock: init.clock,
    origin: init.origin ?? noOrigin,
    waitUntil: init.waitUntil,
    store(tier) {
      let store = stores.get(tier);
      if (!store) {
        store = tierStore(init.env, tier);
        stores.set(tier, store);
      }
      return store;
    },
    redis() {
      redis ??= createRedis(init.env);
      return redis;
    },
    jobs: {
      registry: wired.jobs,
      prepare: (tenantId, requests, when) => prepareJobs(wired.jobs, init.clock, tenantId, requests, when),
      direct(type, tenantId, payload, id) {
        const definition = wired.jobs.get(type);
        if (!definition) throw new Error(`unknown job type '${type}'`);
        return directMessage(definition, init.clock, tenantId, payload, id);
      },
      send,
      sendOrThrow: (messages) => (messages.length === 0 ? Promise.resolve() : sendJobMessages(init.env, init.logger, messages, { strict: true })),
      sendAfterResponse: (messages) => {
        if (messages.length > 0) init.waitUntil(send(messages));
      },
      async enqueue(scope, requests) {
        const prepared = prepareJobs(wired.jobs, init.clock, scope.tenantId, requests);
        const { jobs, messages } = await enqueueJobs(services.store("oltp"), scope, prepared, requests);
        if (messages.length > 0) init.waitUntil(send(messages));
        return jobs;
      },
    },
    telemetry: createTelemetry({
      env: init.env,
      logger: init.logger,
      base: { service: telemetryService, requestId: init.requestId },
      now: () => init.clock.now(),
      waitUntil: init.waitUntil,
      // Asked at flush time, off every response path; `services` exists by then.
      ...(wired.productEventsOptOut ? { optedOut: (tenantIds: string[]) => wired.productEventsOptOut!(services)(tenantIds) } : {}),
    }),
  } as Services;
  services.audit = wired.audit(services);
  services.systemEvents = wired.systemEvents(services);
  return services;
}

/** A tenant's own work done by the platform (a job, a cron task): no user, the member role's rights. */
export const systemUserId = "00000000-0000-0000-0000-000000000000";
export const tenantSystemScope = (tenantId: string): TenantScope => ({ tenantId, userId: systemUserId, role: "member" });

/**
 * waitUntil for entry points that may have no ExecutionContext (tests calling a handler directly):
 * the work is collected and the entry point awaits it before returning.
 */
export function pendingWork(ctx: { waitUntil(promise: Promise<unknown>): void } | undefined) {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (promise: Promise<unknown>) => {
      if (ctx) ctx.waitUntil(promise);
      else pending.push(promise);
    },
    settle: () => Promise.allSettled(pending),
  };
}
