// Issue 14, findings 3 and 4: text returned to be rendered as HTML is escaped (search highlights), and every route
// answers with nosniff; routes that serve stored bytes sandbox them and serve active types as downloads.
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { contentConfig } from "../../../src/tiers/content/config";
import { isPassiveType } from "../../../src/platform/content-safety";
import { contentSetup, deliverIndexing, toBase64, untilQuiet } from "../../support/content";
import { request } from "../../support/worker";

const markup = /<(?!\/?mark>)/;

describe("search highlights are escaped HTML", () => {
  it("an email's own markup, and markup its sender escaped, come back as text; only the matches are <mark>", async () => {
    const s = await contentSetup();
    const create = (subject: string, body: { text: string; html: string }) =>
      s.client.emails.create.mutate({ leadId: s.leadId, mailboxId: s.mailboxId, subject, body: { ...body, headers: {} } });
    const inSubject = await create("Invoice <img src=x onerror=alert(1)>", { text: "Your invoice is attached.", html: "" });
    const escapedBySender = await create("Monthly invoice", {
      text: "",
      html: "<p>Invoice &amp;lt;b&amp;gt; &lt;img src=y onerror=alert(2)&gt;</p><script>alert(3)</script>",
    });
    const quotes = await create(`Invoice "quoted" 'single' & more`, { text: `invoice ${"\uE000"}fake mark${"\uE001"}`, html: "" });
    await deliverIndexing(s.tenant.id, [inSubject.id, escapedBySender.id, quotes.id]);
    await untilQuiet();

    const hits = await s.client.content.search.query({ query: "invoice" });
    expect(hits.map((h) => h.emailId).sort()).toEqual([inSubject.id, escapedBySender.id, quotes.id].sort());
    for (const hit of hits) {
      expect(hit.highlight, hit.highlight).not.toMatch(markup);
      expect(hit.highlight).toMatch(/<mark>invoice<\/mark>/i);
    }
    const byId = new Map(hits.map((h) => [h.emailId, h.highlight]));
    expect(byId.get(inSubject.id)).toContain("&lt;img src=x onerror=alert(1)&gt;");
    // (ts_headline keeps at most 30 words, so the passage may stop inside the tag's text.)
    expect(byId.get(escapedBySender.id), byId.get(escapedBySender.id)).toContain("&lt;img src=y onerror=alert");
    // "&amp;lt;" in the HTML is the text "&lt;", which is escaped once more on the way out.
    expect(byId.get(escapedBySender.id)).toContain("&amp;lt;b&amp;gt;");
    expect(byId.get(escapedBySender.id)).not.toContain("alert(3)");
    expect(byId.get(quotes.id)).toContain("&quot;quoted&quot;");
    // Text cannot forge a mark: the private-use markers are stripped from stored text before highlighting.
    expect(byId.get(quotes.id)!.match(/<mark>/g)).toHaveLength(2);
  });
});

/** A concrete URL for a route pattern: ids where the pattern has parameters. */
const concrete = (path: string) =>
  path
    .replace(/\*$/, "x")
    .replace(/:tenantId/, crypto.randomUUID())
    .replace(/:emailId/, crypto.randomUUID())
    .replace(/:position/, "1")
    .replace(/:sha256/, "0".repeat(64))
    .replace(/:file/, `${crypto.randomUUID()}.csv`)
    .replace(/:[a-zA-Z]+/g, "x");

describe("every route answers with nosniff", () => {
  const routes = [...new Map(createApp().routes.filter((r) => r.method !== "ALL").map((r) => [`${r.method} ${r.path}`, r])).values()];

  it(`the walk finds the app's routes (${routes.length})`, () => {
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(["GET /v1/notifications/unread-count", "GET /v1/content/emails/:emailId/attachments/:position"]));
  });

  for (const route of routes) {
    it(`${route.method} ${route.path}`, async () => {
      const url = concrete(route.path);
      const response = await request(url, { method: route.method, ...(route.method === "GET" || route.method === "HEAD" ? {} : { body: "x" }) });
      await response.arrayBuffer();
      if (route.path === "/ping") return; // answered before every middleware, on purpose: the bare floor
      expect(response.headers.get("x-content-type-options"), `${route.method} ${url} → ${response.status}`).toBe("nosniff");
      if (route.path.startsWith("/v1/content/") || route.path.startsWith("/v1/exports/")) {
        expect(response.headers.get("content-security-policy")).toMatch(/\bsandbox\b/);
      }
    });
  }

  it("tRPC answers carry it too", async () => {
    const response = await request("/trpc/tenants.current");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("stored bytes are served sandboxed, active types as downloads", () => {
  it("every accepted attachment type asked for inline: active ones come back as attachment, all under CSP sandbox and nosniff", async () => {
    const s = await contentSetup();
    const types = contentConfig.allowedAttachmentTypes;
    expect(types).toContain("text/html");
    const perEmail = contentConfig.maxAttachments;
    const emails = [];
    for (let start = 0; start < types.length; start += perEmail) {
      emails.push(
        await s.client.emails.create.mutate({
          leadId: s.leadId,
          mailboxId: s.mailboxId,
          subject: "Attachments of every type",
          body: { text: "see attached", html: "", headers: {} },
          attachments: types.slice(start, start + perEmail).map((mimeType, j) => ({
            filename: `file-${start + j}`,
            mimeType,
            content: toBase64(new TextEncoder().encode(`<html><script>alert(${start + j})</script></html>`)),
            disposition: "inline" as const,
          })),
        }),
      );
    }
    for (const [i, mimeType] of types.entries()) {
      const email = emails[Math.floor(i / perEmail)]!;
      const got = await request(`/v1/content/emails/${email.id}/attachments/${(i % perEmail) + 1}`, { headers: { authorization: `Bearer ${s.tenant.member.token}` } });
      await got.arrayBuffer();
      expect(got.status).toBe(200);
      expect(got.headers.get("content-type")).toBe(mimeType);
      expect(got.headers.get("x-content-type-options"), mimeType).toBe("nosniff");
      expect(got.headers.get("content-security-policy"), mimeType).toMatch(/\bsandbox\b/);
      const disposition = got.headers.get("content-disposition") ?? "";
      expect(disposition, mimeType).toContain(`filename*=UTF-8''file-${i}`);
      expect(disposition.startsWith("attachment"), `${mimeType}: ${disposition}`).toBe(!isPassiveType(mimeType));
    }
    expect(isPassiveType("text/html")).toBe(false);
    expect(isPassiveType("image/svg+xml")).toBe(false);
    expect(isPassiveType("application/xml")).toBe(false);
    expect(isPassiveType("text/javascript")).toBe(false);
  });
});
