import { describe, expect, inject, it } from "vitest";
import { contentSetup, fromBase64 } from "../support/content";
import { oltpSql } from "../support/factories";

const corpus = inject("contentCorpus");
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The file as an HTML body when it is valid UTF-8 HTML; every file also goes as an attachment. */
function asBodyHtml(bytes: Uint8Array, name: string): string {
  if (!name.endsWith(".html")) return "";
  try {
    return decoder.decode(bytes);
  } catch {
    return "";
  }
}

describe.skipIf(corpus.length === 0)("the real corpus (../shared/corpus; skipped when absent)", () => {
  it(`every one of ${corpus.length} files reads back byte-identical, as body and as attachment, and storage beats raw`, async () => {
    const s = await contentSetup();
    const created: { emailId: string; base64: string; html: string; name: string }[] = [];
    for (const file of corpus) {
      const bytes = fromBase64(file.base64);
      const html = asBodyHtml(bytes, file.name);
      const mimeType = file.name.endsWith(".html") ? "text/html" : "message/rfc822";
      const email = await s.client.emails.create.mutate({
        leadId: s.leadId,
        mailboxId: s.mailboxId,
        subject: `${file.folder}/${file.name}`.slice(0, 300),
        body: { text: "", html, headers: { "X-Corpus": file.folder } },
        attachments: [{ filename: file.name, mimeType, content: file.base64, disposition: "attachment" }],
      });
      created.push({ emailId: email.id, base64: file.base64, html, name: file.name });
    }
    for (const c of created) {
      const content = await s.client.content.get.query({ emailId: c.emailId });
      expect(content.html, c.name).toBe(c.html);
      const attachment = await s.client.content.attachment.query({ emailId: c.emailId, position: 1 });
      expect(attachment.content, c.name).toBe(c.base64);
    }
    const sql = oltpSql();
    const [, totals = []] = await sql.transaction([
      sql`select set_config('app.current_tenant_id', ${s.tenant.id}, true)`,
      sql`select sum(raw_size)::bigint as raw, sum(stored_size)::bigint as stored, count(*)::int as objects from content_objects where kind = 'attachment'`,
    ]);
    const { raw, stored } = totals[0] as { raw: string; stored: string };
    // The corpus baseline: gzip -6 saves 41–86% per folder; the store as built must save more than that overall.
    expect(Number(stored) / Number(raw)).toBeLessThan(0.35);
  }, 180_000);
});
