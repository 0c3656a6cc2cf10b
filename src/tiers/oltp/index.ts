// The OLTP tier's public face: its area routers, cron task and retention rules, the unsubscribe routes, API-key
// resolution for the platform's authentication, and what the jobs tier and lifecycle use of its entities.
import type { AnyJob } from "../../platform/jobs/define";
import type { CallerResolver } from "../../platform/middleware";
import { oltpCrons } from "./cron";
import { sendInvitationJob } from "./jobs";
import { oltpRetention } from "./retention";
import { apiKeysRouter, campaignsRouter, domainsRouter, emailsRouter, leadsRouter, mailboxesRouter, suppressionsRouter, tenantsRouter, usersRouter } from "./routers";
import { authorize } from "./services/access";
import { apiKeyCredential, apiKeyMarker, resolveLegacyApiKey } from "./services/api-keys";

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
    suppressions: suppressionsRouter,
  },
  jobs: [sendInvitationJob] as AnyJob[],
  crons: oltpCrons,
  retention: oltpRetention,
};

/** Memberships, tenants and API keys live here; the platform's authentication asks this who a credential is. */
export const callers: CallerResolver = {
  marker: apiKeyMarker,
  apiKeyCredential,
  authorize: (services, credential, batch) =>
    credential.kind === "apiKey" && credential.tenantId === null
      ? resolveLegacyApiKey(services.store("oltp"), credential.hash)
      : authorize(services, credential as Parameters<typeof authorize>[1], batch),
};

export { leadStatuses, type StepVariant, suppressionReasons } from "./schema";
export { decideStep, escapeHtml, type LeadVariables, renderStep, variantFor } from "./services/personalize";
export { recordEmailEvent } from "./services/emails";
export { addressHasher, isSuppressed, reattachStatement } from "./services/suppressions";
export { type LeadFields, leadsCreatedUsage, upsertLeadsStatement } from "./services/leads";
export { unsubscribeRoutes } from "./unsubscribe-routes";
export { signUnsubscribeToken, type UnsubscribeClaims } from "./services/unsubscribe";
export { userEmailAddress } from "./services/users";

export { productEventsOptOutLookup } from "./services/product-events";
