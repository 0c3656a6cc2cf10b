// OLTP area routers, mounted at the top level of the app router: thin procedures, zod at the edge, logic in services/.
import { z } from "zod";
import { isoInstant, sizedText, uuid } from "../../platform/inputs";
import { adminProcedure, authedProcedure, operatorProcedure, publicProcedure, router } from "../../platform/trpc";
import { planNames } from "./plans";
import { campaignStatuses, domainStatuses, emailStatuses, leadStatuses, mailboxStatuses, suppressionReasons, tenantStatuses, userRoles } from "./schema";
import { createApiKey, listApiKeys, revokeApiKey } from "./services/api-keys";
import {
  campaignActions,
  createCampaign,
  enrolLeads,
  getCampaign,
  listCampaigns,
  previewStep,
  removeLeads,
  setCampaignMailboxes,
  setCampaignSteps,
  transitionCampaign,
  updateCampaign,
} from "./services/campaigns";
import { maxBulkItems, pageInput } from "../../platform/paging";
import { addDomain, getDomain, listDomains, removeDomain, verifyDomain } from "./services/domains";
import { addressHasher, addSuppression, listSuppressions, removeSuppression } from "./services/suppressions";
import { contentConfig, releaseStatements } from "../content";
import { createEmailWithContent } from "./services/email-writes";
import { createEmail, deleteEmail, getEmail, listEmails, recordEmailEvent } from "./services/emails";
import { countLeads, createLead, deleteLeads, getLead, listLeads, updateLead, upsertLeads } from "./services/leads";
import { addMailbox, getMailbox, listMailboxes, removeMailbox, updateMailbox } from "./services/mailboxes";
import { getBilling, getCurrentTenant, renameTenant } from "./services/tenants";
import { setProductEventsOptOut } from "./services/product-events";
import { closeTenant, getTenant, listTenants, provisionTenant, setTenantStatus } from "./services/provisioning";
import { signUnsubscribeToken } from "./services/unsubscribe";
import { addUser, getMe, listUsers, removeUser, setUserRole } from "./services/users";
import { acceptInvitation, invitationAcceptUrl, inviteUser, listInvitations } from "./services/invitations";

const id = uuid();
const byId = z.object({ id });
const name = z.string().trim().min(1).max(200);
const emailAddress = z.email().max(254);
const optionalText = z.string().trim().max(200).nullable().optional();
/**
 * An ISO 8601 instant with an offset (`2026-12-01T09:00:00Z`), as JSON carries it, inside the range the stores
 * hold; a Date inside the procedure.
 */
const instant = isoInstant().transform((value) => new Date(value));
/**
 * A part longer than the whole body's byte limit is refused here, before it is held any longer, with the same
 * PAYLOAD_TOO_LARGE the content tier answers when the parts together exceed it.
 */
const bodyPart = (what: string) => sizedText(contentConfig.maxBodyBytes, what);
const emailBodyInput = z.object({
  text: bodyPart("body.text").default(""),
  html: bodyPart("body.html").default(""),
  headers: z.record(z.string().max(200), z.string().max(2000)).default({}),
  /** A campaign render's template: the content tier compresses the body against it (README, Content tier). */
  template: bodyPart("body.template").optional(),
});
const attachmentInput = z.object({
  filename: z.string().trim().min(1).max(255),
  mimeType: z.string().trim().min(3).max(200),
  content: z.string().max(Math.ceil(contentConfig.maxAttachmentBytes / 3) * 8).optional(),
  /** Instead of `content`: a file streamed earlier to PUT /v1/content/attachments/:sha256 (README, Content tier). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  disposition: z.enum(["attachment", "inline"]).default("attachment"),
}).refine((a) => (a.content === undefined) !== (a.sha256 === undefined), { message: "give content or sha256", path: ["content"] });

const leadFilter = z.object({
  status: z.enum(leadStatuses).optional(),
  search: z.string().trim().min(1).max(100).optional(),
  campaignId: id.optional(),
  suppressed: z.boolean().optional(),
});

export const tenantsRouter = router({
  current: authedProcedure.query(({ ctx }) => getCurrentTenant(ctx.store("oltp"), ctx.scope)),
  rename: adminProcedure
    .input(z.object({ name }))
    .mutation(({ ctx, input }) => renameTenant(ctx, ctx.scope, input.name)),
  billing: adminProcedure.query(({ ctx }) => getBilling(ctx.store("oltp"), ctx.scope)),
  /** Admins: opt the tenant out of (or back into) product events; none of its facts reach the capture sink while out. */
  setProductEvents: adminProcedure
    .input(z.object({ optOut: z.boolean() }))
    .mutation(({ ctx, input }) => setProductEventsOptOut(ctx, ctx.scope, input.optOut)),
  // Platform staff: provisioning and the lifecycle of any tenant.
  create: operatorProcedure
    .input(
      z.object({
        name,
        plan: z.enum(planNames).default("free"),
        admin: z.object({ email: emailAddress, name: z.string().trim().min(1).max(200).optional() }),
        /** Send the same key again (a retry) to get the tenant it created instead of a second one. */
        clientKey: z.string().trim().min(8).max(200).optional(),
      }),
    )
    .mutation(({ ctx, input }) => provisionTenant(ctx, ctx.scope, { ...input, clientKey: input.clientKey ?? crypto.randomUUID() })),
  list: operatorProcedure
    .input(z.object({ status: z.enum(tenantStatuses).optional(), ...pageInput }))
    .query(({ ctx, input }) => listTenants(ctx, ctx.scope, input)),
  get: operatorProcedure.input(byId).query(({ ctx, input }) => getTenant(ctx, ctx.scope, input.id)),
  suspend: operatorProcedure
    .input(z.object({ id, reason: z.string().trim().max(500).optional() }))
    .mutation(({ ctx, input }) => setTenantStatus(ctx, ctx.scope, input.id, "suspended", input.reason)),
  /** Also cancels a closure still in its grace period. */
  reactivate: operatorProcedure.input(byId).mutation(({ ctx, input }) => setTenantStatus(ctx, ctx.scope, input.id, "active")),
  /** Refused at once; erased from every tier after TENANT_CLOSE_GRACE_DAYS (lifecycle.tenantClosure shows the receipt). */
  close: operatorProcedure
    .input(z.object({ id, reason: z.string().trim().max(500).optional() }))
    .mutation(({ ctx, input }) => closeTenant(ctx, ctx.scope, input.id, input.reason)),
});

export const usersRouter = router({
  me: authedProcedure.query(({ ctx }) => getMe(ctx.store("oltp"), ctx.scope)),
  list: authedProcedure
    .input(z.object({ role: z.enum(userRoles).optional(), ...pageInput }))
    .query(({ ctx, input }) => listUsers(ctx.store("oltp"), ctx.scope, input)),
  add: adminProcedure
    .input(z.object({ email: emailAddress, name: z.string().trim().min(1).max(200).optional(), role: z.enum(userRoles).default("member") }))
    .mutation(({ ctx, input }) => addUser(ctx, ctx.scope, input)),
  setRole: adminProcedure
    .input(z.object({ id, role: z.enum(userRoles) }))
    .mutation(({ ctx, input }) => setUserRole(ctx, ctx.scope, input.id, input.role)),
  remove: adminProcedure.input(byId).mutation(({ ctx, input }) => removeUser(ctx, ctx.scope, input.id)),
  invite: adminProcedure
    .input(z.object({ email: emailAddress, role: z.enum(userRoles).default("member") }))
    .mutation(({ ctx, input }) => inviteUser(ctx, ctx.scope, { ...input, acceptUrl: invitationAcceptUrl(ctx.env, ctx.requestUrl) })),
  invitations: adminProcedure.query(({ ctx }) => listInvitations(ctx, ctx.scope)),
  /** Public: the invitation's token is the invitee's only credential until the identity provider issues one. */
  acceptInvitation: publicProcedure
    .input(z.object({ token: z.string().min(20).max(200), name: z.string().trim().min(1).max(200).optional() }))
    .mutation(({ ctx, input }) => acceptInvitation(ctx, input.token, input.name)),
});

export const apiKeysRouter = router({
  list: adminProcedure
    .input(z.object({ includeRevoked: z.boolean().default(false), ...pageInput }))
    .query(({ ctx, input }) => listApiKeys(ctx.store("oltp"), ctx.scope, input)),
  create: adminProcedure
    .input(
      z.object({
        name,
        role: z.enum(userRoles).default("member"),
        scope: z.enum(["read", "read_write"]).default("read_write"),
        owner: z.enum(["user", "tenant"]).default("user"),
        expiresInDays: z.number().int().min(1).max(3650).optional(),
      }),
    )
    .mutation(({ ctx, input }) => createApiKey(ctx, ctx.scope, input)),
  revoke: adminProcedure.input(byId).mutation(({ ctx, input }) => revokeApiKey(ctx, ctx.scope, input.id)),
});

const domainName = z
  .string()
  .trim()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, "must be a domain name such as mail.example.com");

export const domainsRouter = router({
  list: authedProcedure
    .input(z.object({ status: z.enum(domainStatuses).optional(), ...pageInput }))
    .query(({ ctx, input }) => listDomains(ctx.store("oltp"), ctx.scope, input)),
  get: authedProcedure.input(byId).query(({ ctx, input }) => getDomain(ctx.store("oltp"), ctx.scope, input.id)),
  add: adminProcedure.input(z.object({ name: domainName })).mutation(({ ctx, input }) => addDomain(ctx, ctx.scope, input.name)),
  remove: adminProcedure.input(byId).mutation(({ ctx, input }) => removeDomain(ctx, ctx.scope, input.id)),
  /** Looks the domain's SPF, DKIM and DMARC records up (DNS-over-HTTPS) and records the result; only a verified domain's mailboxes send. */
  verify: adminProcedure.input(byId).mutation(({ ctx, input }) => verifyDomain(ctx, ctx.scope, input.id)),
});

/** The tenant's suppression list: addresses nothing is sent to, kept whatever becomes of their leads. */
export const suppressionsRouter = router({
  list: adminProcedure
    .input(z.object({ reason: z.enum(suppressionReasons).optional(), ...pageInput }))
    .query(({ ctx, input }) => listSuppressions(ctx.store("oltp"), ctx.scope, input)),
  add: adminProcedure
    .input(z.object({ address: emailAddress, reason: z.enum(suppressionReasons).default("admin") }))
    .mutation(({ ctx, input }) => addSuppression(ctx, ctx.scope, input)),
  remove: adminProcedure.input(z.object({ address: emailAddress })).mutation(({ ctx, input }) => removeSuppression(ctx, ctx.scope, input.address)),
});

const mailboxSettings = {
  dailyLimit: z.number().int().min(1).max(10_000).optional(),
  warmupEnabled: z.boolean().optional(),
  warmupStart: z.number().int().min(1).max(1000).optional(),
  warmupIncrement: z.number().int().min(0).max(1000).optional(),
};

export const mailboxesRouter = router({
  list: authedProcedure
    .input(z.object({ status: z.enum(mailboxStatuses).optional(), domainId: id.optional(), ...pageInput }))
    .query(({ ctx, input }) => listMailboxes(ctx.store("oltp"), ctx.scope, input)),
  get: authedProcedure.input(byId).query(({ ctx, input }) => getMailbox(ctx.store("oltp"), ctx.scope, input.id)),
  add: adminProcedure
    .input(z.object({ domainId: id, address: emailAddress, ...mailboxSettings }))
    .mutation(({ ctx, input }) => addMailbox(ctx, ctx.scope, input)),
  update: adminProcedure
    .input(
      z
        .object({ id, status: z.enum(["active", "paused"]).optional(), ...mailboxSettings })
        .refine(({ id: _id, ...patch }) => Object.values(patch).some((value) => value !== undefined), {
          message: "give at least one field to change",
        }),
    )
    .mutation(({ ctx, input: { id: mailboxId, ...patch } }) => updateMailbox(ctx, ctx.scope, mailboxId, patch)),
  remove: adminProcedure.input(byId).mutation(({ ctx, input }) => removeMailbox(ctx, ctx.scope, input.id)),
});

const timeZone = z
  .string()
  .max(64)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, "must be an IANA time zone such as Europe/Paris");

const campaignSettings = z.object({
  name,
  timeZone: timeZone.optional(),
  windowStartMinute: z.number().int().min(0).max(1439).optional(),
  windowEndMinute: z.number().int().min(1).max(1440).optional(),
  sendDays: z
    .array(z.number().int().min(0).max(6))
    .min(1)
    .max(7)
    .refine((days) => new Set(days).size === days.length, "days must not repeat")
    .optional(),
  dailyLimit: z.number().int().min(1).max(100_000).optional(),
  startsAt: instant.nullable().optional(),
  /** A paused or bounce-protected mailbox's leads wait for it, or move to another of the campaign's mailboxes. */
  mailboxFallback: z.enum(["wait", "move"]).optional(),
  /** Opt-in open and click tracking: links rewritten through /t/c/ and a pixel through /t/o/ at send time. */
  trackEngagement: z.boolean().optional(),
});
const sendWindowOrdered = (s: { windowStartMinute?: number; windowEndMinute?: number }) =>
  s.windowStartMinute === undefined || s.windowEndMinute === undefined || s.windowStartMinute < s.windowEndMinute;

/** A variant's template: `{{firstName}}`, `{{company}}`, `{{custom.x}}`, `{{firstName | "there"}}` (README, Campaign engine). */
const stepVariant = z
  .object({
    label: z.string().trim().min(1).max(20),
    /** Empty on a follow-up: "Re: " and the thread's first subject. */
    subject: z.string().max(300),
    text: z.string().max(contentConfig.maxBodyBytes).optional(),
    html: z.string().max(contentConfig.maxBodyBytes).optional(),
    bodyStorageKey: z.string().min(1).max(300).optional(),
    weight: z.number().int().min(1).max(100).default(1),
  })
  .refine((v) => Boolean(v.text || v.html || v.bodyStorageKey), { message: "give text, html or bodyStorageKey", path: ["text"] });

export const campaignsRouter = router({
  list: authedProcedure
    .input(z.object({ status: z.enum(campaignStatuses).optional(), ...pageInput }))
    .query(({ ctx, input }) => listCampaigns(ctx.store("oltp"), ctx.scope, input)),
  get: authedProcedure.input(byId).query(({ ctx, input }) => getCampaign(ctx.store("oltp"), ctx.scope, input.id, ctx.clock.now())),
  /** The email a step would send a lead, or why the lead would be skipped. */
  preview: authedProcedure
    .input(z.object({ campaignId: id, leadId: id, step: z.number().int().min(0).max(19) }))
    .query(({ ctx, input }) => previewStep(ctx.store("oltp"), ctx.scope, input)),
  create: authedProcedure
    .input(campaignSettings.refine(sendWindowOrdered, { message: "the window must start before it ends", path: ["windowEndMinute"] }))
    .mutation(({ ctx, input }) => createCampaign(ctx.store("oltp"), ctx.scope, input)),
  update: authedProcedure
    .input(
      campaignSettings
        .partial()
        .extend({ id })
        .refine(sendWindowOrdered, { message: "the window must start before it ends", path: ["windowEndMinute"] }),
    )
    .mutation(({ ctx, input: { id: campaignId, ...patch } }) => updateCampaign(ctx.store("oltp"), ctx.scope, campaignId, patch)),
  transition: authedProcedure
    .input(z.object({ id, action: z.enum(campaignActions) }))
    .mutation(async ({ ctx, input }) => {
      const campaign = await transitionCampaign(ctx, ctx.scope, input.id, input.action);
      ctx.telemetry.capture({ event: `campaign ${input.action}`, tenantId: ctx.scope.tenantId, distinctId: ctx.scope.userId, properties: { campaign_id: input.id } });
      return campaign;
    }),
  setSteps: authedProcedure
    .input(
      z.object({
        id,
        steps: z
          .array(
            z.object({
              /** The wait after the previous step (the first step's after the campaign starts): days and hours add up. */
              delayDays: z.number().int().min(0).max(90).default(0),
              delayHours: z.number().int().min(0).max(24 * 90).default(0),
              variants: z
                .array(stepVariant)
                .min(1)
                .max(5)
                .refine((v) => new Set(v.map((x) => x.label)).size === v.length, "variant labels must be unique"),
            }),
          )
          .max(20)
          .superRefine((steps, check) => {
            steps[0]?.variants.forEach((variant, index) => {
              if (!variant.subject.trim()) check.addIssue({ code: "custom", path: [0, "variants", index, "subject"], message: "the first step needs a subject" });
            });
          }),
      }),
    )
    .mutation(({ ctx, input }) =>
      setCampaignSteps(
        ctx.store("oltp"),
        ctx.scope,
        input.id,
        input.steps.map((step) => ({ delayHours: step.delayDays * 24 + step.delayHours, variants: step.variants })),
      ),
    ),
  /** The mailboxes the campaign sends from (replaces the set); leads already assigned one keep it. */
  setMailboxes: authedProcedure
    .input(z.object({ id, mailboxIds: z.array(id).min(1).max(100) }))
    .mutation(({ ctx, input }) => setCampaignMailboxes(ctx.store("oltp"), ctx.scope, input.id, [...new Set(input.mailboxIds)])),
  enrolLeads: authedProcedure
    .input(z.object({ id, leadIds: z.array(id).min(1).max(maxBulkItems) }))
    .mutation(({ ctx, input }) => enrolLeads(ctx.store("oltp"), ctx.scope, input.id, [...new Set(input.leadIds)])),
  /** Takes leads out of the sequence: nothing more is created for them. */
  removeLeads: authedProcedure
    .input(z.object({ id, leadIds: z.array(id).min(1).max(maxBulkItems) }))
    .mutation(({ ctx, input }) => removeLeads(ctx.store("oltp"), ctx.scope, input.id, [...new Set(input.leadIds)])),
});

const customFields = z
  .record(z.string().min(1).max(64), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()]))
  .refine((fields) => Object.keys(fields).length <= 50, "at most 50 custom fields");
const leadFields = {
  firstName: optionalText,
  lastName: optionalText,
  company: optionalText,
  customFields: customFields.optional(),
};
const newLead = z.object({ email: emailAddress, ...leadFields });

export const leadsRouter = router({
  list: authedProcedure
    .input(
      leadFilter.extend(pageInput),
    )
    .query(({ ctx, input }) => listLeads(ctx.store("oltp"), ctx.scope, input)),
  /** How many leads the tenant has, or how many match the same filters as list. */
  count: authedProcedure
    .input(leadFilter.default({}))
    .query(({ ctx, input }) => countLeads(ctx.store("oltp"), ctx.scope, input)),
  get: authedProcedure.input(byId).query(({ ctx, input }) => getLead(ctx.store("oltp"), ctx.scope, input.id)),
  create: authedProcedure
    .input(newLead.extend({ status: z.enum(leadStatuses).optional() }))
    .mutation(({ ctx, input }) => createLead(ctx.store("oltp"), ctx.scope, input, addressHasher(ctx.env))),
  upsert: authedProcedure.input(newLead).mutation(async ({ ctx, input }) => {
    const [lead] = await upsertLeads(ctx.store("oltp"), ctx.scope, [input], addressHasher(ctx.env));
    return lead!;
  }),
  bulkUpsert: authedProcedure
    .input(
      z.object({
        leads: z
          .array(newLead)
          .min(1)
          .max(maxBulkItems)
          .superRefine((leads, check) => {
            const seen = new Set<string>();
            leads.forEach((lead, index) => {
              const email = lead.email.toLowerCase();
              if (seen.has(email)) check.addIssue({ code: "custom", path: [index, "email"], message: "appears twice in this batch" });
              seen.add(email);
            });
          }),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const leads = await upsertLeads(ctx.store("oltp"), ctx.scope, input.leads, addressHasher(ctx.env));
      return { created: leads.filter((l) => l.created).length, updated: leads.filter((l) => !l.created).length, ids: leads.map((l) => l.id) };
    }),
  update: authedProcedure
    .input(z.object({ id, status: z.enum(leadStatuses).optional(), ...leadFields }))
    .mutation(({ ctx, input: { id: leadId, ...patch } }) => updateLead(ctx.store("oltp"), ctx.scope, leadId, patch)),
  bulkDelete: authedProcedure
    .input(z.object({ ids: z.array(id).min(1).max(maxBulkItems) }))
    .mutation(({ ctx, input }) => deleteLeads(ctx.store("oltp"), ctx.scope, input.ids)),
});

export const emailsRouter = router({
  list: authedProcedure
    .input(z.object({ campaignId: id.optional(), leadId: id.optional(), status: z.enum(emailStatuses).optional(), ...pageInput }))
    .query(({ ctx, input }) => listEmails(ctx.store("oltp"), ctx.scope, input)),
  get: authedProcedure.input(byId).query(({ ctx, input }) => getEmail(ctx.store("oltp"), ctx.scope, input.id)),
  /** Returns the unsubscribe token the message's link and List-Unsubscribe header carry. */
  /**
   * Either names content stored elsewhere (`contentStorageKey`) or carries it (`body`, `attachments`):
   * then the content tier stores it first and its catalog rows join the email's transaction, and an
   * `idempotencyKey` makes a retry return the first email instead of creating another.
   */
  create: authedProcedure
    .input(
      z
        .object({
          leadId: id,
          mailboxId: id,
          campaignId: id.optional(),
          stepId: id.optional(),
          subject: z.string().min(1).max(300),
          contentStorageKey: z.string().min(1).max(300).optional(),
          body: emailBodyInput.optional(),
          attachments: z.array(attachmentInput).max(contentConfig.maxAttachments).default([]),
          idempotencyKey: z.string().min(8).max(200).optional(),
        })
        .refine((v) => (v.contentStorageKey === undefined) !== (v.body === undefined), {
          message: "give either contentStorageKey or body",
          path: ["body"],
        })
        .refine((v) => v.body !== undefined || (v.attachments.length === 0 && v.idempotencyKey === undefined), {
          message: "attachments and idempotencyKey come with a body",
          path: ["attachments"],
        }),
    )
    .mutation(async ({ ctx, input }) => {
      const { body, attachments, idempotencyKey, contentStorageKey, ...metadata } = input;
      const email = body
        ? (await createEmailWithContent(ctx, ctx.scope, { ...metadata, body, attachments, idempotencyKey })).email
        : await createEmail(ctx, ctx.scope, { ...metadata, contentStorageKey: contentStorageKey! });
      const unsubscribeToken = await signUnsubscribeToken(ctx.env, { tenantId: email.tenantId, leadId: email.leadId, emailId: email.id });
      return { ...email, unsubscribeToken };
    }),
  /** Deletes the email's metadata and releases its content in one transaction; shared blobs stay while referenced. */
  delete: adminProcedure.input(byId).mutation(({ ctx, input }) => deleteEmail(ctx.store("oltp"), ctx.scope, input.id, (db) => releaseStatements(db, ctx.scope.tenantId, input.id))),
  /** Provider facts (sent, delivered, bounced, ...) reported server to server, typically with an admin API key. */
  recordEvent: adminProcedure
    .input(
      z.object({
        emailId: id,
        type: z.enum(["sent", "delivered", "bounced", "opened", "replied", "failed", "clicked", "complained", "unsubscribed"]),
        providerMessageId: z.string().min(1).max(300).optional(),
        occurredAt: instant.optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const email = await recordEmailEvent(ctx.store("oltp"), ctx.scope, { ...input, occurredAt: input.occurredAt ?? ctx.clock.now() }, addressHasher(ctx.env));
      ctx.telemetry.capture({ event: `email ${input.type}`, tenantId: ctx.scope.tenantId, properties: { email_id: email.id, campaign_id: email.campaignId ?? null } });
      return email;
    }),
});
