// Unsubscribe links: an HMAC-signed token naming tenant, lead and email; redeeming it needs no login and is idempotent.
import { sql } from "drizzle-orm";
import { tenantBatch, type TierStore } from "../../../core/db";
import type { Env } from "../../../core/env";
import { AppError } from "../../../core/errors";
import { campaignLeads, emailEvents, emails, leads } from "../schema";

export interface UnsubscribeClaims {
  tenantId: string;
  leadId: string;
  emailId: string;
}

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
const fromBase64url = (text: string) => Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));

/**
 * The link is signed with JWT_SECRET under its own label, so an unsubscribe signature can never
 * pass for a token signature or the other way round.
 */
async function signingKey(env: Env): Promise<CryptoKey> {
  if (!env.JWT_SECRET) throw new AppError("INTERNAL", "Unsubscribe links need JWT_SECRET to be configured");
  const material = new TextEncoder().encode(`unsubscribe-link:${env.JWT_SECRET}`);
  return crypto.subtle.importKey("raw", material, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

export async function signUnsubscribeToken(env: Env, claims: UnsubscribeClaims): Promise<string> {
  const payload = base64url(new TextEncoder().encode(`${claims.tenantId}.${claims.leadId}.${claims.emailId}`));
  const signature = await crypto.subtle.sign("HMAC", await signingKey(env), new TextEncoder().encode(payload));
  return `${payload}.${base64url(new Uint8Array(signature))}`;
}

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const claimsPattern = new RegExp(`^(${uuid})\\.(${uuid})\\.(${uuid})$`);

export async function verifyUnsubscribeToken(env: Env, token: string): Promise<UnsubscribeClaims> {
  const invalid = new AppError("BAD_REQUEST", "This unsubscribe link is invalid");
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined || token.length > 512) throw invalid;
  let claims: RegExpExecArray | null;
  try {
    const valid = await crypto.subtle.verify("HMAC", await signingKey(env), fromBase64url(signature), new TextEncoder().encode(payload));
    if (!valid) throw invalid;
    claims = claimsPattern.exec(new TextDecoder().decode(fromBase64url(payload)));
  } catch (error) {
    if (error instanceof AppError && error.code === "INTERNAL") throw error;
    throw invalid;
  }
  if (!claims) throw invalid;
  return { tenantId: claims[1]!, leadId: claims[2]!, emailId: claims[3]! };
}

/** No user is behind a link click; this id marks the statements it runs in the tenant's context. */
const linkUser = "00000000-0000-0000-0000-000000000000";

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
  const scope = { tenantId: claims.tenantId, userId: linkUser, role: "member" as const };
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
      )
      select id from lead`),
    db.execute<{ id: string }>(sql`select id from ${leads} where tenant_id = ${claims.tenantId} and id = ${claims.leadId}`),
  ]);
  if (!lead.rows[0]) throw new AppError("NOT_FOUND", "This unsubscribe link no longer matches a contact");
  return { unsubscribed: true, alreadyUnsubscribed: changed.rows.length === 0 };
}
