// Content tier router: email content and attachments, search, and the tenant's retention settings.
import { z } from "zod";
import { uuid } from "../../platform/inputs";
import { actorOf } from "../../platform/emitters";
import { adminProcedure, authedProcedure, type Context, router } from "../../platform/trpc";
import type { TenantScope } from "../../platform/db";
import { listAuditLog } from "../olap";
import { contentReadDeps } from "./deps";
import { getAttachment, getEmailContent } from "./services/reads";
import { getRetention, setRetention } from "./services/retention";
import { searchEmails } from "./services/search";

const emailId = uuid();

/** The audit action a read of an email's content is recorded under (OLAP's audit data answers `accessLog`). */
const contentRead = "content.read";

/**
 * Who read which email's content, through which route: to the forensic log at once, and to OLAP's audit data
 * through the queue (never a live OLTP table that grows with every read). Both after the response.
 */
function recordAccess(ctx: Context & { scope: TenantScope }, emailId: string, route: string, extra: Record<string, unknown> = {}) {
  ctx.telemetry.log("content_access", { tenantId: ctx.scope.tenantId, userId: ctx.scope.userId, role: ctx.scope.role, emailId, route, ip: ctx.origin.ip, ...extra });
  ctx.waitUntil(ctx.audit.direct({ actor: actorOf(ctx.scope), action: contentRead, target: { type: "email", id: emailId }, details: { route, ...extra } }));
}

export const contentRouter = router({
  /** Decompressed text, HTML and headers of an email, with its attachments listed. */
  get: authedProcedure.input(z.object({ emailId })).query(async ({ ctx, input }) => {
    const content = await getEmailContent(contentReadDeps(ctx), ctx.scope, input.emailId);
    recordAccess(ctx, input.emailId, "content.get");
    return content;
  }),
  /** One attachment, byte-exact (base64), with its MIME type and filename. */
  attachment: authedProcedure
    .input(z.object({ emailId, position: z.number().int().min(1).max(100) }))
    .query(async ({ ctx, input }) => {
      const attachment = await getAttachment(contentReadDeps(ctx), ctx.scope, input.emailId, input.position);
      recordAccess(ctx, input.emailId, "content.attachment", { position: input.position });
      return attachment;
    }),
  /**
   * Who accessed one email's content (body or attachments), newest first, from OLAP's audit data: it lags reads by
   * the audit queue's delivery, and is kept as long as the audit log is.
   */
  accessLog: adminProcedure
    .input(z.object({ emailId, limit: z.number().int().min(1).max(200).default(50), cursor: z.string().max(200).optional() }))
    .query(({ ctx, input }) =>
      listAuditLog(ctx.store("olap"), ctx.scope, { limit: input.limit, cursor: input.cursor, action: contentRead, targetType: "email", targetId: input.emailId }),
    ),
  search: authedProcedure
    .input(z.object({ query: z.string().trim().min(1).max(200), limit: z.number().int().min(1).max(50).default(20) }))
    .query(({ ctx, input }) => searchEmails(ctx.store("oltp"), ctx.scope, input)),
  retention: authedProcedure.query(({ ctx }) => getRetention(ctx.store("oltp"), ctx.scope)),
  setRetention: adminProcedure
    .input(z.object({ retentionDays: z.number().int().min(1).max(3650).optional(), legalHold: z.boolean().optional() }))
    .mutation(({ ctx, input }) => setRetention(ctx.store("oltp"), ctx.scope, input)),
});
