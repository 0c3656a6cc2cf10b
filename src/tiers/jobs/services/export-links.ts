// Download links for export files: an HMAC-SHA-256 signature over the storage key and an expiry, checked by GET /v1/exports/….
import type { Env } from "../../../core/env";
import { AppError } from "../../../core/errors";

const encoder = new TextEncoder();
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
const fromBase64url = (text: string) => Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));

/** Where a tenant's export file lives; the link's path mirrors it, so the key is never taken from the client as is. */
export const exportStorageKey = (tenantId: string, jobId: string) => `exports/${tenantId}/${jobId}.csv`;

/**
 * EXPORT_LINK_SECRET when set; otherwise JWT_SECRET under its own label, so an export signature can
 * never pass for a token's or an unsubscribe link's.
 */
async function signingKey(env: Env): Promise<CryptoKey> {
  const material = env.EXPORT_LINK_SECRET ?? (env.JWT_SECRET ? `export-link:${env.JWT_SECRET}` : undefined);
  if (!material) throw new AppError("INTERNAL", "Export links need EXPORT_LINK_SECRET or JWT_SECRET to be configured", { tier: "jobs" });
  return crypto.subtle.importKey("raw", encoder.encode(material), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

const signedText = (key: string, expires: number) => encoder.encode(`${key}\n${expires}`);

export interface ExportLink {
  url: string;
  expiresAt: string;
}

/** A link to download the file at `key` until `ttlSeconds` from now; `origin` is the caller's view of this Worker. */
export async function signExportLink(env: Env, key: string, ttlSeconds: number, origin: string, now = Date.now()): Promise<ExportLink> {
  const expires = Math.floor(now / 1000) + ttlSeconds;
  const signature = base64url(new Uint8Array(await crypto.subtle.sign("HMAC", await signingKey(env), signedText(key, expires))));
  const url = new URL(`/v1/${key}`, origin);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("sig", signature);
  return { url: url.toString(), expiresAt: new Date(expires * 1000).toISOString() };
}

/**
 * Checks a link's signature, then its expiry: LINK_INVALID for anything not signed by us (including a
 * path or expiry changed after signing), LINK_EXPIRED for a genuine link past its time.
 */
export async function verifyExportLink(env: Env, key: string, expires: string | undefined, sig: string | undefined, now = Date.now()): Promise<void> {
  const invalid = new AppError("LINK_INVALID", "This download link is invalid", { tier: "jobs" });
  if (!expires || !/^\d{1,12}$/.test(expires) || !sig || sig.length > 128 || !/^[A-Za-z0-9_-]+$/.test(sig)) throw invalid;
  let valid: boolean;
  try {
    valid = await crypto.subtle.verify("HMAC", await signingKey(env), fromBase64url(sig), signedText(key, Number(expires)));
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw invalid;
  }
  if (!valid) throw invalid;
  if (Number(expires) * 1000 <= now) throw new AppError("LINK_EXPIRED", "This download link has expired; ask for a new one with jobs.get", { tier: "jobs" });
}
