// The composition root: every tier's routers, jobs, cron tasks and emitters, gathered once. Clients import AppRouter.
import type { CronTask } from "./platform/cron";
import type { AnyJob } from "./platform/jobs/define";
import { wiring } from "./platform/services";
import { createCallerFactory, router } from "./platform/trpc";
import { lifecycle } from "./lifecycle";
import { content } from "./tiers/content";
import { jobs } from "./tiers/jobs";
import { notifications, systemEvents } from "./tiers/notifications";
import { auditEmitter, olap } from "./tiers/olap";
import { oltp, productEventsOptOutLookup } from "./tiers/oltp";

/** Each tier's public face; lifecycle sits above them and reaches each through its index. */
export const tiers = [oltp, content, jobs, notifications, olap, lifecycle] as const;

/** The OLTP areas at the top level, then one router per other tier (the contract in ARCHITECTURE). */
export const appRouter = router({
  ...oltp.routers,
  ...content.routers,
  ...jobs.routers,
  ...notifications.routers,
  ...olap.routers,
  ...lifecycle.routers,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);

/** Every job of every tier, and the emitters each tier implements for the others. */
export const wired = wiring({
  jobs: tiers.flatMap((tier): readonly AnyJob[] => tier.jobs),
  audit: auditEmitter,
  systemEvents,
  productEventsOptOut: productEventsOptOutLookup,
});

export const cronTasks: CronTask[] = tiers.flatMap((tier) => tier.crons);
