// Builds the content services' dependencies from a request context or a queue delivery.
import type { Env } from "../../core/env";
import type { TenantScope } from "../../core/db";
import { tierStore } from "../../core/db";
import type { Logger } from "../../core/logger";
import type { Context } from "../../trpc/context";
import { notificationsConfig } from "../notifications/config";
import { raiseSystemEvent } from "../notifications/services/system-events";
import { contentConfig } from "./config";
import type { IntegrityError } from "./services/blobs";
import type { ContentWriteDeps } from "./services/email-writes";
import type { ContentReadDeps } from "./services/reads";

/** INDEX_CONTENT runs with the tenant's context and no user: the job acts for the tenant. */
export const systemUserId = "00000000-0000-0000-0000-000000000000";

export function indexingJob(tenantId: string, emailId: string) {
  return { jobId: crypto.randomUUID(), type: "INDEX_CONTENT" as const, tenantId, payload: { emailId }, enqueuedAt: new Date().toISOString() };
}

function reportIntegrityFailure(env: Env, logger: Logger) {
  return async (failure: IntegrityError, scope: TenantScope) => {
    logger.error("content integrity check failed", { key: failure.storageKey, expected: failure.expected, actual: failure.actual });
    await raiseSystemEvent(tierStore(env, "notifications"), notificationsConfig, {
      eventType: "content.integrity_failed",
      severity: "critical",
      tenantId: scope.tenantId,
      description: "Stored content did not match its hash and was not served",
      details: { storageKey: failure.storageKey, expected: failure.expected, actual: failure.actual },
      dedupKey: `content.integrity:${failure.storageKey}`,
    });
  };
}

export function contentReadDeps(ctx: Context): ContentReadDeps {
  return { store: ctx.store("oltp"), bucket: ctx.env.CONTENT_BUCKET, reportIntegrityFailure: reportIntegrityFailure(ctx.env, ctx.logger) };
}

export function contentWriteDeps(ctx: Context): ContentWriteDeps {
  return {
    store: ctx.store("oltp"),
    bucket: ctx.env.CONTENT_BUCKET,
    config: contentConfig,
    logger: ctx.logger,
    queueIndexing: async (tenantId, emailId) => {
      await ctx.env.JOBS_NORMAL.send(indexingJob(tenantId, emailId));
    },
  };
}
