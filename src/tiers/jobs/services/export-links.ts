// Download links for export files: a signed link over the storage key and an expiry, checked by GET /v1/exports/….
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { linkSigner } from "../../../platform/signed-links";

/** Where a tenant's export file lives; the link's path mirrors it, so the key is never taken from the client as is. */
export const exportStorageKey = (tenantId: string, jobId: string) => `exports/${tenantId}/${jobId}.csv`;

/** EXPORT_LINK_SECRET when set; otherwise JWT_SECRET under the link's own label. */
const signer = (env: Env) =>
  linkSigner(
    "export-link",
    { dedicated: env.EXPORT_LINK_SECRET, shared: env.JWT_SECRET },
    new AppError("INTERNAL", "Export links need EXPORT_LINK_SECRET or JWT_SECRET to be configured", { tier: "jobs" }),
  );

const signedText = (key: string, expires: number) => `${key}\n${expires}`;

export interface ExportLink {
  url: string;
  expiresAt: string;
}

/** A link to download the file at `key` until `ttlSeconds` after `now`; `origin` is the caller's view of this Worker. */
export async function signExportLink(env: Env, key: string, ttlSeconds: number, origin: string, now: Date): Promise<ExportLink> {
  const expires = Math.floor(now.getTime() / 1000) + ttlSeconds;
  const url = new URL(`/v1/${key}`, origin);
  url.searchParams.set("expires", String(expires));
  url.searchParams.set("sig", await signer(env).sign(signedText(key, expires)));
  return { url: url.toString(), expiresAt: new Date(expires * 1000).toISOString() };
}

/**
 * Checks a link's signature, then its expiry: LINK_INVALID for anything not signed by us (including a
 * path or expiry changed after signing), LINK_EXPIRED for a genuine link past its time.
 */
export async function verifyExportLink(env: Env, key: string, expires: string | undefined, sig: string | undefined, now: Date): Promise<void> {
  const invalid = new AppError("LINK_INVALID", "This download link is invalid", { tier: "jobs" });
  if (!expires || !/^\d{1,12}$/.test(expires) || !sig || sig.length > 128 || !/^[A-Za-z0-9_-]+$/.test(sig)) throw invalid;
  if (!(await signer(env).verify(signedText(key, Number(expires)), sig))) throw invalid;
  if (Number(expires) * 1000 <= now.getTime()) throw new AppError("LINK_EXPIRED", "This download link has expired; ask for a new one with jobs.get", { tier: "jobs" });
}
