// The OLTP tier's public face: its area routers, cron task and retention rules, the unsubscribe routes, API-key
// resolution for the platform's authentication, and what the jobs tier and lifecycle use of its entities.
import type { AnyJob } from "../../platform/jobs/define";
import type { ApiKeyResolver } from "../../platform/middleware";
import { oltpCrons } from "./cron";
import { oltpRetention } from "./retention";
import { apiKeysRouter, campaignsRouter, domainsRouter, emailsRouter, leadsRouter, mailboxesRouter, tenantsRouter, usersRouter } from "./routers";
import { apiKeyMarker, resolveApiKey } from "./services/api-keys";

export const oltp = {
  routers: {
    tenants: tenantsRouter,
    users: usersRouter,
    apiKeys: apiKeysRouter,
    domains: domainsRouter,
    mailboxes: mailboxesRouter,
    campaigns: campaignsRouter,
    leads: leadsRouter,
    emails: emailsRouter,
  },
  jobs: [] as AnyJob[],
  crons: oltpCrons,
  retention: oltpRetention,
};

/** API keys live here; the platform's authentication resolves them through this. */
export const apiKeys: ApiKeyResolver = { marker: apiKeyMarker, resolve: (services, key) => resolveApiKey(services.store("oltp"), key) };

export { leadStatuses } from "./schema";
export { recordEmailEvent } from "./services/emails";
export { type LeadFields, leadsCreatedUsage, upsertLeadsStatement } from "./services/leads";
export { unsubscribeRoutes } from "./unsubscribe-routes";
