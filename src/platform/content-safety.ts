// Response headers that keep served content from running as this origin: nosniff everywhere, sandboxed downloads on content routes.
import type { MiddlewareHandler } from "hono";

/**
 * Types a browser renders without running anything. Only these may stay `inline`; every other type (HTML,
 * SVG, XML, JavaScript, anything unknown) is served as a download.
 */
const passiveTypes = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv", "application/pdf", "application/octet-stream"]);

export const isPassiveType = (contentType: string | null): boolean =>
  contentType !== null && passiveTypes.has(contentType.split(";")[0]!.trim().toLowerCase());

/** Headers of a response that another layer may have made immutable (a fetched or R2 response). */
function mutableHeaders(c: Parameters<MiddlewareHandler>[0]): Headers {
  try {
    c.res.headers.set("x-content-type-options", "nosniff");
    return c.res.headers;
  } catch {
    c.res = new Response(c.res.body, c.res);
    return c.res.headers;
  }
}

/** Every response: the browser must trust the declared type, never guess an active one from the bytes. */
export const noSniff = (): MiddlewareHandler =>
  async function noSniff(c, next) {
    await next();
    mutableHeaders(c).set("x-content-type-options", "nosniff");
  };

/**
 * Routes that serve stored bytes (attachments, exports): the response is sandboxed (`Content-Security-Policy:
 * sandbox`: no script, no same-origin access even if a browser renders it), and anything but a passive type is
 * a download (`Content-Disposition: attachment`, keeping the file name).
 */
export const sandboxedContent = (): MiddlewareHandler =>
  async function sandboxedContent(c, next) {
    await next();
    const headers = mutableHeaders(c);
    headers.set("content-security-policy", "sandbox; default-src 'none'");
    // Errors are our own JSON; only served content is a download.
    if (c.res.ok && !isPassiveType(headers.get("content-type"))) {
      const disposition = headers.get("content-disposition");
      const params = disposition?.replace(/^\s*(inline|attachment)\s*;?\s*/i, "") ?? "";
      headers.set("content-disposition", params ? `attachment; ${params}` : "attachment");
    }
  };
