// Open and click tracking (opt-in per campaign): links rewritten at send time into signed tokens; /t/o and /t/c queue the fact and answer at once.
import { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../../../platform/env";
import { AppError } from "../../../platform/errors";
import { base64url, fromBase64url, linkSigner } from "../../../platform/signed-links";
import { queueInboundFacts } from "./facts";

/** Signed with TRACKING_LINK_SECRET, or under its own label with JWT_SECRET: never valid as any other link's signature. */
const signer = (env: Env) =>
  linkSigner("tracking-link", { dedicated: env.TRACKING_LINK_SECRET, shared: env.JWT_SECRET }, new AppError("INTERNAL", "Tracking links need TRACKING_LINK_SECRET or JWT_SECRET"));

const claimsSchema = z.union([
  z.object({ k: z.literal("o"), e: z.uuid() }).strict(),
  // `u` is the URL that was in the email, `i` its position: the click goes there and nowhere else.
  z.object({ k: z.literal("c"), e: z.uuid(), i: z.number().int().min(0).max(10_000), u: z.string().max(2048) }).strict(),
]);
type TrackingClaims = z.infer<typeof claimsSchema>;

const isWebUrl = (url: string) => {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:";
  } catch {
    return false;
  }
};

export async function signTrackingToken(env: Env, claims: TrackingClaims): Promise<string> {
  const payload = base64url(new TextEncoder().encode(JSON.stringify(claims)));
  return `${payload}.${await signer(env).sign(payload)}`;
}

/** The token's claims, or LINK_INVALID for anything not signed here exactly as it is (a changed URL included). */
export async function verifyTrackingToken(env: Env, token: string): Promise<TrackingClaims> {
  const invalid = new AppError("LINK_INVALID", "This link is invalid");
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined || token.length > 4096) throw invalid;
  if (!(await signer(env).verify(payload, signature))) throw invalid;
  let claims: TrackingClaims;
  try {
    claims = claimsSchema.parse(JSON.parse(new TextDecoder().decode(fromBase64url(payload))));
  } catch {
    throw invalid;
  }
  if (claims.k === "c" && !isWebUrl(claims.u)) throw invalid;
  return claims;
}

/**
 * An attribute's value as the browser reads it: HTMLRewriter hands over the source text, character references
 * and all (`&amp;` in a query string). Numeric references and the named ones a URL uses are decoded; any other
 * named reference stays as written, and the link is then kept as it is rather than guessed at.
 */
function attributeValue(source: string): string | null {
  const named: Record<string, string> = { amp: "&", quot: '"', apos: "'", lt: "<", gt: ">" };
  let unknown = false;
  const value = source.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (reference, body: string) => {
    if (body[0] === "#") {
      const code = body[1] === "x" || body[1] === "X" ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : reference;
    }
    const character = named[body.toLowerCase()];
    if (character === undefined) unknown = true;
    return character ?? reference;
  });
  return unknown ? null : value;
}

/**
 * The HTML as sent with tracking: every http(s) link (except the Worker's own, such as the unsubscribe link)
 * goes through /t/c/<token>, and a 1×1 pixel through /t/o/<token>.gif closes the body. Without
 * PUBLIC_BASE_URL there is no address to point them at, and the HTML goes out as it is.
 * HTMLRewriter (the Workers runtime's streaming HTML parser) edits the attributes without reserializing the rest.
 */
export async function trackedHtml(env: Env, emailId: string, html: string): Promise<string> {
  const base = env.PUBLIC_BASE_URL?.replace(/\/+$/, "");
  if (!base) return html;
  let position = 0;
  let sawBody = false;
  const pixel = `<img src="${base}/t/o/${await signTrackingToken(env, { k: "o", e: emailId })}.gif" width="1" height="1" alt="" style="display:none">`;
  const rewritten = new HTMLRewriter()
    .on("a[href]", {
      async element(link) {
        const href = attributeValue(link.getAttribute("href")?.trim() ?? "");
        if (!href || !isWebUrl(href) || href.length > 2048 || href.startsWith(`${base}/`)) return;
        const token = await signTrackingToken(env, { k: "c", e: emailId, i: position++, u: href });
        link.setAttribute("href", `${base}/t/c/${token}`);
      },
    })
    .on("body", {
      element(body) {
        sawBody = true;
        body.append(pixel, { html: true });
      },
    })
    .onDocument({
      end(end) {
        if (!sawBody) end.append(pixel, { html: true });
      },
    })
    .transform(new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }));
  return rewritten.text();
}

/** A transparent 1×1 GIF. */
const pixelGif = Uint8Array.from(atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"), (c) => c.charCodeAt(0));

/** The facts are queued, never written here: no OLTP round trip; a queue that fails loses the fact, never the reader's redirect. */
async function queueQuietly(services: Parameters<typeof queueInboundFacts>[0], fact: Parameters<typeof queueInboundFacts>[1][number]) {
  try {
    await queueInboundFacts(services, [fact]);
  } catch {
    // queueInboundFacts logged it; the recipient still gets the pixel or the page.
  }
}

export const trackingRoutes = new Hono();

trackingRoutes.get("/o/:file", async (c) => {
  const services = c.get("services");
  const file = c.req.param("file");
  if (!file.endsWith(".gif")) throw new AppError("LINK_INVALID", "This link is invalid");
  const claims = await verifyTrackingToken(services.env, file.slice(0, -".gif".length));
  if (claims.k !== "o") throw new AppError("LINK_INVALID", "This link is invalid");
  // One open per email: the first one counts, later ones are the same fact again.
  await queueQuietly(services, { sourceEventId: `open:${claims.e}`, type: "opened", emailId: claims.e, occurredAt: services.clock.now().toISOString() });
  return c.body(pixelGif, 200, { "content-type": "image/gif", "cache-control": "no-store, private" });
});

trackingRoutes.get("/c/:token", async (c) => {
  const services = c.get("services");
  const claims = await verifyTrackingToken(services.env, c.req.param("token"));
  if (claims.k !== "c") throw new AppError("LINK_INVALID", "This link is invalid");
  await queueQuietly(services, { sourceEventId: `click:${claims.e}:${claims.i}`, type: "clicked", emailId: claims.e, occurredAt: services.clock.now().toISOString() });
  c.header("cache-control", "no-store, private");
  c.header("referrer-policy", "no-referrer");
  return c.redirect(claims.u, 302);
});
