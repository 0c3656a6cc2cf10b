// Invitations: an admin invites an address (within the plan's seats and the auth-email limiter); the invitee accepts
// with the token from the invitation and becomes a member, whose id the identity provider then issues tokens for.
import { and, desc, eq, gt, isNull, sql } from "drizzle-orm";
import { batchUnder, internalBatch, tenantBatch, type TenantScope } from "../../../platform/db";
import { emailProviderFor } from "../../../platform/email";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import type { Services } from "../../../platform/services";
import { allowAuthEmail, authEmailLimits } from "../../../platform/rate-limits";
import { linkSigner } from "../../../platform/signed-links";
import { escapeHtml } from "./personalize";
import { invitations, tenants, users } from "../schema";
import { sha256Hex } from "./api-keys";

export const invitationLifetimeDays = 7;

export type Invitation = Omit<typeof invitations.$inferSelect, "tokenHash">;
const publicColumns = {
  id: invitations.id,
  tenantId: invitations.tenantId,
  email: invitations.email,
  role: invitations.role,
  invitedBy: invitations.invitedBy,
  expiresAt: invitations.expiresAt,
  acceptedAt: invitations.acceptedAt,
  acceptedUserId: invitations.acceptedUserId,
  createdAt: invitations.createdAt,
};

/**
 * The invitation's token is an HMAC of its id, so the SEND_INVITATION job can put it in the email without the
 * token ever being stored (only its SHA-256 is, as before). Keyed by EXPORT_LINK_SECRET or JWT_SECRET, with the
 * purpose mixed in, so no other signed link can pass for it.
 */
const invitationSigner = (env: Env) =>
  linkSigner("invitation", { shared: env.EXPORT_LINK_SECRET ?? env.JWT_SECRET },
    new AppError("ENV_INVALID", "Server misconfigured: invitations need EXPORT_LINK_SECRET or JWT_SECRET"));
const invitationToken = (env: Env, invitationId: string) => invitationSigner(env).sign(`invitation:${invitationId}`);

/** Where the email's link points: the app's accept page (INVITATION_ACCEPT_URL) or this Worker's. */
export const invitationAcceptUrl = (env: Env, requestUrl: string | null) =>
  env.INVITATION_ACCEPT_URL ?? new URL("/invitations/accept", requestUrl ?? "http://localhost").toString();

/** Seats in use: members, and invitations still open. */
const seatsUsed = (tenantId: string) => sql`(select count(*) from ${users} where tenant_id = ${tenantId})
  + (select count(*) from ${invitations} where tenant_id = ${tenantId} and accepted_at is null and expires_at > now())`;

/**
 * The invitation email is an address-verification email, so it counts against that auth-email limiter
 * (`auth:verification-email:{email}:tries`), which fails closed: with Redis down nobody is invited (503 redis).
 * The email itself is a SEND_INVITATION job recorded in the invitation's own transaction (outbox) and sent
 * through the transactional email provider after the response. The token is also returned once, like an API
 * key's secret, for a caller that hands the link over another way.
 */
export async function inviteUser(
  services: Services,
  scope: TenantScope,
  input: { email: string; role: "member" | "admin"; acceptUrl: string },
): Promise<Invitation & { token: string }> {
  const email = input.email.toLowerCase();
  await allowAuthEmail(services.redis(), services.logger, "verification-email", email, authEmailLimits["verification-email"]);
  const id = crypto.randomUUID();
  const token = await invitationToken(services.env, id);
  const tokenHash = await sha256Hex(token);
  const expiresAt = new Date(services.clock.now().getTime() + invitationLifetimeDays * 86_400_000);
  const created = sql`exists (select 1 from ${invitations} where ${invitations.id} = ${id})`;
  const audit = services.audit.action(scope, "user.invite", { type: "invitation", id }, { role: input.role }, created);
  const mail = services.jobs.prepare(scope.tenantId, [{ type: "SEND_INVITATION", payload: { invitationId: id, acceptUrl: input.acceptUrl } }], created);
  const [rows, member, seats] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db.execute(sql`insert into invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at)
                   select ${id}, ${scope.tenantId}, ${email}, ${input.role}, ${tokenHash}, ${scope.userId}, ${expiresAt.toISOString()}::timestamptz
                   where ${seatsUsed(scope.tenantId)} < (select max_seats from tenants where id = ${scope.tenantId})
                     and not exists (select 1 from users where tenant_id = ${scope.tenantId} and email = ${email})
                   returning id`),
    db.select({ id: users.id }).from(users).where(and(eq(users.tenantId, scope.tenantId), eq(users.email, email))),
    db.execute(sql`select max_seats as allowed from tenants where id = ${scope.tenantId}`),
    audit.insert(db),
    mail.insert(db),
  ]);
  audit.sendAfterCommit();
  if (rows.rows[0]) services.jobs.sendAfterResponse(mail.messages);
  if (!rows.rows[0]) {
    if (member[0]) throw new AppError("CONFLICT", "This address is already a member of the tenant");
    const allowed = (seats.rows[0] as { allowed?: number } | undefined)?.allowed;
    throw new AppError("CONFLICT", `The plan's ${allowed} seats are taken (members and open invitations)`, { details: { seats: allowed } });
  }
  return {
    id,
    tenantId: scope.tenantId,
    email,
    role: input.role,
    invitedBy: scope.userId,
    expiresAt,
    acceptedAt: null,
    acceptedUserId: null,
    createdAt: services.clock.now(),
    token,
  };
}

export async function listInvitations(services: Services, scope: TenantScope): Promise<Invitation[]> {
  const [rows] = await tenantBatch(services.store("oltp"), scope, (db) => [
    db
      .select(publicColumns)
      .from(invitations)
      .where(and(eq(invitations.tenantId, scope.tenantId), isNull(invitations.acceptedAt), gt(invitations.expiresAt, sql`now()`)))
      .orderBy(desc(invitations.createdAt))
      .limit(100),
  ]);
  return rows;
}

export interface Accepted {
  tenantId: string;
  userId: string;
  email: string;
  role: "member" | "admin";
}

/**
 * Two round trips: the invitation is found by its token's hash (its tenant is unknown until then), then the
 * membership is created in the tenant's own context, conditioned on the invitation being open, the tenant
 * active and a seat free. Accepting again returns the same membership.
 */
export async function acceptInvitation(services: Services, token: string, name?: string): Promise<Accepted> {
  const hash = await sha256Hex(token);
  const store = services.store("oltp");
  const [found] = await batchUnder(store, sql`select set_config('app.invitation_hash', ${hash}, true)`, [
    store.db.execute(sql`select id, tenant_id, email, role, accepted_user_id, expires_at <= now() as expired from invitations where token_hash = ${hash}`),
  ]);
  const invitation = found.rows[0] as
    | { id: string; tenant_id: string; email: string; role: "member" | "admin"; accepted_user_id: string | null; expired: boolean }
    | undefined;
  if (!invitation) throw new AppError("LINK_INVALID", "The invitation is invalid");
  const accepted = (userId: string): Accepted => ({ tenantId: invitation.tenant_id, userId, email: invitation.email, role: invitation.role });
  if (invitation.accepted_user_id) return accepted(invitation.accepted_user_id);
  if (invitation.expired) throw new AppError("LINK_EXPIRED", "The invitation has expired; ask for a new one");

  const userId = crypto.randomUUID();
  const scope: TenantScope = { tenantId: invitation.tenant_id, userId, role: invitation.role };
  const audit = services.audit.action(scope, "user.accept", { type: "user", id: userId }, { role: invitation.role, invitationId: invitation.id },
    sql`exists (select 1 from ${users} where ${users.id} = ${userId})`);
  const [inserted, , , status] = await tenantBatch(store, scope, (db) => [
    db.execute(sql`insert into users (id, tenant_id, email, name, role)
                   select ${userId}, ${invitation.tenant_id}, ${invitation.email}, ${name ?? null}, ${invitation.role}
                   where exists (select 1 from invitations where id = ${invitation.id} and accepted_at is null and expires_at > now())
                     and (select status from tenants where id = ${invitation.tenant_id}) = 'active'
                     and (select count(*) from users where tenant_id = ${invitation.tenant_id})
                         < (select max_seats from tenants where id = ${invitation.tenant_id})
                   on conflict (tenant_id, email) do nothing returning id`),
    db.execute(sql`update invitations set accepted_at = now(), accepted_user_id = ${userId}
                   where id = ${invitation.id} and exists (select 1 from users where id = ${userId})`),
    audit.insert(db),
    db.select({ status: tenants.status }).from(tenants).where(eq(tenants.id, invitation.tenant_id)),
  ]);
  audit.sendAfterCommit();
  if (inserted.rows[0]) return accepted(userId);
  if (status[0]?.status !== "active") throw new AppError("TENANT_SUSPENDED", "The tenant is not active");
  throw new AppError("CONFLICT", "The invitation cannot be accepted: it was accepted concurrently, or every seat is taken");
}

/**
 * SEND_INVITATION's work: the email with the accept link, through the transactional email provider, keyed by the
 * invitation's id (a redelivery cannot send twice). An invitation accepted, expired or gone is not mailed.
 */
export async function sendInvitationEmail(services: Services, tenantId: string, input: { invitationId: string; acceptUrl: string }): Promise<{ sent: boolean }> {
  const [found] = await internalBatch(services.store("oltp"), "system", tenantId, (db) => [
    db.execute(sql`select i.email, i.role, t.name as tenant_name from invitations i join tenants t on t.id = i.tenant_id
                   where i.tenant_id = ${tenantId} and i.id = ${input.invitationId} and i.accepted_at is null and i.expires_at > now()`),
  ]);
  const invitation = found.rows[0] as { email: string; role: string; tenant_name: string } | undefined;
  if (!invitation) return { sent: false };
  const link = new URL(input.acceptUrl);
  link.searchParams.set("token", await invitationToken(services.env, input.invitationId));
  const env = services.env;
  if (env.ENVIRONMENT === "production" && !env.NOTIFICATION_EMAIL_FROM) {
    throw new AppError("ENV_INVALID", "Server misconfigured: invitation emails need NOTIFICATION_EMAIL_FROM");
  }
  const result = await emailProviderFor(env).send({
    emailId: input.invitationId,
    from: env.NOTIFICATION_EMAIL_FROM ?? "notifications@localhost",
    to: invitation.email,
    subject: `You are invited to join ${invitation.tenant_name}`,
    text: `You are invited to join ${invitation.tenant_name} as ${invitation.role}.\n\nAccept the invitation (valid for ${invitationLifetimeDays} days):\n${link.toString()}\n`,
    html: `<p>You are invited to join <strong>${escapeHtml(invitation.tenant_name)}</strong> as ${escapeHtml(invitation.role)}.</p>
<p><a href="${escapeHtml(link.toString())}">Accept the invitation</a> (valid for ${invitationLifetimeDays} days).</p>`,
  });
  if (result.outcome === "rejected") services.logger.warn("invitation email rejected by the provider", { invitationId: input.invitationId, reason: result.reason });
  return { sent: result.outcome === "sent" };
}
