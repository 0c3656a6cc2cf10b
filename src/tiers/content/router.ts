// Content tier router: email content and attachments, search, and the tenant's retention settings.
import { z } from "zod";
import { uuid } from "../../platform/inputs";
import { adminProcedure, authedProcedure, router } from "../../platform/trpc";
import { contentReadDeps } from "./deps";
import { getAttachment, getEmailContent } from "./services/reads";
import { getRetention, setRetention } from "./services/retention";
import { searchEmails } from "./services/search";

const emailId = uuid();

export const contentRouter = router({
  /** Decompressed text, HTML and headers of an email, with its attachments listed. */
  get: authedProcedure.input(z.object({ emailId })).query(({ ctx, input }) => getEmailContent(contentReadDeps(ctx), ctx.scope, input.emailId)),
  /** One attachment, byte-exact (base64), with its MIME type and filename. */
  attachment: authedProcedure
    .input(z.object({ emailId, position: z.number().int().min(1).max(100) }))
    .query(({ ctx, input }) => getAttachment(contentReadDeps(ctx), ctx.scope, input.emailId, input.position)),
  search: authedProcedure
    .input(z.object({ query: z.string().trim().min(1).max(200), limit: z.number().int().min(1).max(50).default(20) }))
    .query(({ ctx, input }) => searchEmails(ctx.store("oltp"), ctx.scope, input)),
  retention: authedProcedure.query(({ ctx }) => getRetention(ctx.store("oltp"), ctx.scope)),
  setRetention: adminProcedure
    .input(z.object({ retentionDays: z.number().int().min(1).max(3650).optional(), legalHold: z.boolean().optional() }))
    .mutation(({ ctx, input }) => setRetention(ctx.store("oltp"), ctx.scope, input)),
});
