// The List-Unsubscribe headers every sent email carries (RFC 2369, one-click per RFC 8058), as bulk senders must.
import type { Env } from "../../../platform/env";
import { signUnsubscribeToken, type UnsubscribeClaims } from "../../oltp";

/**
 * `List-Unsubscribe`: the one-click URL of POST /v1/unsubscribe (a token naming tenant, lead and email),
 * plus a mailto when UNSUBSCRIBE_MAILTO is set; `List-Unsubscribe-Post` marks the URL as one-click.
 * Empty without PUBLIC_BASE_URL (required in production), where no absolute URL can be built.
 */
export async function listUnsubscribeHeaders(env: Env, claims: UnsubscribeClaims): Promise<Record<string, string>> {
  if (!env.PUBLIC_BASE_URL) return {};
  const token = await signUnsubscribeToken(env, claims);
  const url = new URL("/v1/unsubscribe", env.PUBLIC_BASE_URL);
  url.searchParams.set("token", token);
  const targets = [`<${url.href}>`];
  if (env.UNSUBSCRIBE_MAILTO) targets.push(`<mailto:${env.UNSUBSCRIBE_MAILTO}?subject=${encodeURIComponent(`unsubscribe ${token}`)}>`);
  return { "List-Unsubscribe": targets.join(", "), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
}
