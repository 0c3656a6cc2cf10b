// Which URLs a tenant may make the Worker call (webhook endpoints, push subscription endpoints): the SSRF guard.
import ipaddr from "ipaddr.js";
import type { Env } from "./env";

/** Host names that never name a public service (RFC 6761, RFC 6762, RFC 8375, common internal suffixes). */
const internalName = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|corp)$/i;

/**
 * Why the Worker must not call `url` for a tenant, or null when it may. Outside production http and any host are
 * allowed, so the local stand-ins (loopback) receive in tests and `npm run dev`. In production: https only, no
 * credentials, and no host that is a loopback, private, link-local, unique-local, carrier-grade NAT, multicast or
 * otherwise reserved address (IPv4-mapped IPv6 included; ipaddr.js classifies), nor a single-label or internal
 * name. A public name that resolves to a private address is not caught here (a Worker has no DNS lookup before
 * fetch); Workers' own fetch does not reach the private networks of the machine it runs on.
 */
export function outboundUrlProblem(env: Pick<Env, "ENVIRONMENT">, url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "must be a valid URL";
  }
  if (parsed.username || parsed.password) return "must not carry credentials";
  const production = env.ENVIRONMENT === "production";
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && !production)) return production ? "must be https" : "must be http(s)";
  if (!production) return null;
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(host)) {
    let address = ipaddr.parse(host);
    if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) address = (address as ipaddr.IPv6).toIPv4Address();
    const range = address.range();
    return range === "unicast" ? null : `must not be a ${range} address`;
  }
  if (!host.includes(".") || internalName.test(host.replace(/\.$/, ""))) return "must be a public host name";
  return null;
}
