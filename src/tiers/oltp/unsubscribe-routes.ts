// Public unsubscribe routes: the link a recipient clicks (GET shows a button) and the one-click POST (RFC 8058).
import { Hono } from "hono";
import { AppError } from "../../platform/errors";
import { redeemUnsubscribeToken, verifyUnsubscribeToken } from "./services/unsubscribe";

export const unsubscribeRoutes = new Hono();

const tokenOf = (token: string | undefined): string => {
  if (!token) throw new AppError("BAD_REQUEST", "This unsubscribe link is incomplete");
  return token;
};

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><main><h1>${title}</h1>${body}</main></body></html>`;

/**
 * GET changes nothing: mail scanners fetch links before people do. It checks the signature and
 * shows a button that POSTs the same URL, which is also what one-click mail clients call.
 */
unsubscribeRoutes.get("/", async (c) => {
  const token = tokenOf(c.req.query("token"));
  await verifyUnsubscribeToken(c.get("env"), token);
  const action = `?token=${encodeURIComponent(token)}`;
  return c.html(page("Unsubscribe", `<form method="post" action="${action}"><button type="submit">Unsubscribe me</button></form>`));
});

unsubscribeRoutes.post("/", async (c) => {
  const env = c.get("env");
  const result = await redeemUnsubscribeToken(c.get("services").store("oltp"), env, tokenOf(c.req.query("token")));
  if (c.req.header("accept")?.includes("text/html")) {
    return c.html(page("You are unsubscribed", "<p>You will not receive further messages from this sender.</p>"));
  }
  return c.json(result);
});
