// Builds the content services' dependencies from the services context of a request, a queue delivery or a cron run.
import type { TenantScope } from "../../platform/db";
import type { Services } from "../../platform/services";
import { contentConfig } from "./config";
import { indexContentJob } from "./jobs";
import type { IntegrityError } from "./services/blobs";
import type { ContentReadDeps } from "./services/reads";
import type { ContentWriteDeps } from "./services/writes";

function reportIntegrityFailure(services: Services) {
  return async (failure: IntegrityError, scope: TenantScope) => {
    services.logger.error("content integrity check failed", { key: failure.storageKey, expected: failure.expected, actual: failure.actual });
    await services.systemEvents.raise({
      eventType: "content.integrity_failed",
      severity: "critical",
      tenantId: scope.tenantId,
      description: "Stored content did not match its hash and was not served",
      details: { storageKey: failure.storageKey, expected: failure.expected, actual: failure.actual },
      dedupKey: `content.integrity:${failure.storageKey}`,
    });
  };
}

export function contentReadDeps(services: Services): ContentReadDeps {
  return { store: services.store("oltp"), bucket: services.env.CONTENT_BUCKET, reportIntegrityFailure: reportIntegrityFailure(services) };
}

export function contentWriteDeps(services: Services): ContentWriteDeps {
  return {
    store: services.store("oltp"),
    bucket: services.env.CONTENT_BUCKET,
    config: contentConfig,
    logger: services.logger,
    // A lost send is repaired by content.requeueIndexing, which finds the email still unindexed.
    queueIndexing: (tenantId, emailId) => services.jobs.send([services.jobs.direct(indexContentJob.type, tenantId, { emailId })]),
  };
}
