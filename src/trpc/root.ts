// The app router: OLTP areas at the top level, then one router per other tier. Clients import AppRouter.
import { lifecycleRouter } from "../lifecycle/router";
import { contentRouter } from "../tiers/content/router";
import { jobsRouter } from "../tiers/jobs/router";
import { adminRouter, notificationsRouter } from "../tiers/notifications/router";
import { analyticsRouter } from "../tiers/olap/router";
import {
  apiKeysRouter,
  campaignsRouter,
  domainsRouter,
  emailsRouter,
  leadsRouter,
  mailboxesRouter,
  tenantsRouter,
  usersRouter,
} from "../tiers/oltp/routers";
import { createCallerFactory, router } from "./trpc";

export const appRouter = router({
  tenants: tenantsRouter,
  users: usersRouter,
  apiKeys: apiKeysRouter,
  domains: domainsRouter,
  mailboxes: mailboxesRouter,
  campaigns: campaignsRouter,
  leads: leadsRouter,
  emails: emailsRouter,
  content: contentRouter,
  jobs: jobsRouter,
  notifications: notificationsRouter,
  admin: adminRouter,
  analytics: analyticsRouter,
  lifecycle: lifecycleRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
