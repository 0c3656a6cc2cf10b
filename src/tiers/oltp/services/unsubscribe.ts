// Unsubscribe links: an HMAC-signed token naming tenant, lead and email; redeeming it needs no login and is idempotent.
import { sql } from "drizzle-orm";
import { tenantBatch, type TierStore } from "../../../platform/db";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { tenantSystemScope } from "../../../platform/services";
import { base64url, fromBase64url, linkSigner } from "../../../platform/signed-links";
import { campaignLeads, emailEvents, emails, leads, suppressions } from "../schema";
import { addressHasher, normaliseAddress } from "./suppressions";

export interface UnsubscribeClaims {
  tenantId: string;
  leadId: string;
  emailId: string;
}

/** Signed with JWT_SECRET under the link's own label, so it can never pass for a token's or an export link's signature. */
const signer = (env: Env) => linkSigner("unsubscribe-link", { shared: env.JWT_SECRET }, new AppError("INTERNAL", "Unsubscribe links need JWT_SECRET to be configured"));

export async function signUnsubscribeToken(env: Env, claims: UnsubscribeClaims): Promise<string> {
  const payload = base64url(new TextEncoder().encode(`${claims.tenantId}.${claims.leadId}.${claims.emailId}`));
  return `${payload}.${await signer(env).sign(payload)}`;
}

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const claimsPattern = new RegExp(`^(${uuid})\\.(${uuid})\\.(${uuid})$`);

export async function verifyUnsubscribeToken(env: Env, token: string): Promise<UnsubscribeClaims> {
  const invalid = new AppError("BAD_REQUEST", "This unsubscribe link is invalid");
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined || token.length > 512) throw invalid;
  if (!(await signer(env).verify(payload, signature))) throw invalid;
  let claims: RegExpExecArray | null;
  try {
    claims = claimsPattern.exec(new TextDecoder().decode(fromBase64url(payload)));
  } catch {
    throw invalid;
  }
  if (!claims) throw invalid;
  return { tenantId: claims[1]!, leadId: claims[2]!, emailId: claims[3]! };
}


/**
 * Marks the lead unsubscribed, stops its enrolments and appends one `unsubscribed` event, all in one
 * statement that does nothing when the lead already was unsubscribed: a second click (or a mail
 * scanner replaying the POST) changes nothing and answers the same.
 */
export async function redeemUnsubscribeToken(
  store: TierStore,
  env: Env,
  token: string,
): Promise<{ unsubscribed: true; alreadyUnsubscribed: boolean }> {
  const claims = await verifyUnsubscribeToken(env, token);
  // No user is behind a link click: the statements run as the tenant's own platform work.
  const scope = tenantSystemScope(claims.tenantId);
  // The address goes on the tenant's suppression list (keyed by its hash), so the opt-out outlives the lead.
  const [current] = await tenantBatch(store, scope, (db) => [
    db.execute<{ email: string }>(sql`select email from ${leads} where tenant_id = ${claims.tenantId} and id = ${claims.leadId}`),
  ]);
  const address = current.rows[0]?.email;
  if (!address) throw new AppError("NOT_FOUND", "This unsubscribe link no longer matches a contact");
  const hash = await addressHasher(env)(address);
  const [changed, lead] = await tenantBatch(store, scope, (db) => [
    db.execute<{ id: string }>(sql`
      with lead as (
        update ${leads} set unsubscribed_at = now(), updated_at = now()
        where tenant_id = ${claims.tenantId} and id = ${claims.leadId} and unsubscribed_at is null
        returning id, tenant_id
      ), event as (
        insert into ${emailEvents} (tenant_id, email_id, type)
        select e.tenant_id, e.id, 'unsubscribed' from lead join ${emails} e on e.tenant_id = lead.tenant_id and e.id = ${claims.emailId}
      ), stopped as (
        update ${campaignLeads} cl set status = 'stopped', next_send_at = null
        from lead where cl.tenant_id = lead.tenant_id and cl.lead_id = lead.id and cl.status in ('active', 'paused')
      ), listed as (
        insert into ${suppressions} (tenant_id, address_hash, address, reason)
        select tenant_id, ${hash}, ${normaliseAddress(address)}, 'unsubscribe' from ${leads} where tenant_id = ${claims.tenantId} and id = ${claims.leadId}
        on conflict (tenant_id, address_hash) do update set address = coalesce(${suppressions}.address, excluded.address)
      )
      select id from lead`),
    db.execute<{ id: string }>(sql`select id from ${leads} where tenant_id = ${claims.tenantId} and id = ${claims.leadId}`),
  ]);
  if (!lead.rows[0]) throw new AppError("NOT_FOUND", "This unsubscribe link no longer matches a contact");
  return { unsubscribed: true, alreadyUnsubscribed: changed.rows.length === 0 };
}
