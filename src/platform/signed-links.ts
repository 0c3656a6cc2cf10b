// Signed links: one HMAC-SHA-256 helper for every credential carried in a URL (unsubscribe tokens, export downloads).
import { AppError } from "./errors";

const encoder = new TextEncoder();
export const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
export const fromBase64url = (text: string) => Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));

/** Keys imported once per secret and isolate. */
const keys = new Map<string, Promise<CryptoKey>>();

/**
 * A signer for one purpose. The purpose is mixed into the key material unless a dedicated secret is
 * given, so a signature made for one kind of link can never pass for another's (or for a token's).
 */
export function linkSigner(purpose: string, secrets: { dedicated?: string | undefined; shared?: string | undefined }, missing: AppError) {
  const material = secrets.dedicated ?? (secrets.shared ? `${purpose}:${secrets.shared}` : undefined);
  const key = () => {
    if (!material) throw missing;
    let imported = keys.get(material);
    if (!imported) {
      imported = crypto.subtle.importKey("raw", encoder.encode(material), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
      keys.set(material, imported);
    }
    return imported;
  };
  return {
    /** The base64url signature of `text`. */
    async sign(text: string): Promise<string> {
      return base64url(new Uint8Array(await crypto.subtle.sign("HMAC", await key(), encoder.encode(text))));
    },
    /** Whether `signature` (base64url) signs `text`; false for anything malformed. A missing secret still throws. */
    async verify(text: string, signature: string): Promise<boolean> {
      const k = await key();
      try {
        return await crypto.subtle.verify("HMAC", k, fromBase64url(signature), encoder.encode(text));
      } catch {
        return false;
      }
    },
  };
}
