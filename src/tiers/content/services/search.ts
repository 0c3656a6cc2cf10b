// Full-text search over subject and body per tenant: the INDEX_CONTENT job fills the vector, search ranks, prefix-matches and highlights.
import { sql } from "drizzle-orm";
import { escapeToBuffer, type StringBuffer } from "hono/utils/html";
import { tenantBatch, type TenantScope, type TierStore } from "../../../platform/db";
import type { ContentConfig } from "../config";
import { emailContents } from "../schema";
import { type ContentBucket } from "./blobs";
import { plainText } from "./bodies";
import { getEmailContent } from "./reads";

/** The start of the text that is indexed, never cut inside a surrogate pair. */
export function indexedPrefix(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = /[\uD800-\uDBFF]/.test(text[maxChars - 1]!) ? maxChars - 1 : maxChars;
  return text.slice(0, cut);
}

/**
 * Builds the email's search vector from its subject (weight A) and body text (weight B; its first
 * `searchIndexChars`, so a body of any accepted size can be indexed). Idempotent:
 * a repeated delivery rewrites the same vector. An email deleted meanwhile updates nothing.
 */
export async function indexEmailContent(
  deps: { store: TierStore; bucket: ContentBucket; config: ContentConfig },
  scope: TenantScope,
  emailId: string,
): Promise<void> {
  const content = await getEmailContent({ ...deps, reportIntegrityFailure: async () => undefined }, scope, emailId);
  const text = plainText(content);
  await tenantBatch(deps.store, scope, (db) => [
    db.execute(sql`
      update ${emailContents}
      set search = setweight(to_tsvector('english', subject), 'A') || setweight(to_tsvector('english', ${indexedPrefix(text, deps.config.searchIndexChars)}), 'B'),
          snippet = ${indexedPrefix(text, deps.config.snippetChars)},
          indexed_at = now()
      where tenant_id = ${scope.tenantId} and email_id = ${emailId}`),
  ]);
}

export interface SearchHit {
  emailId: string;
  subject: string;
  rank: number;
  /** HTML: the matching passage, escaped, with matches wrapped in <mark>…</mark>. */
  highlight: string;
}

/** An address as Postgres's text parser keeps it: one `email` token, never split into words. */
const addressPattern = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+/gu;

/**
 * The words and addresses of a query. Every one must match; the last word may be a prefix ("invo"
 * finds "invoice"), as users type. Addresses are taken whole, as the index holds them (to_tsvector
 * makes `ada@example.org` one lexeme), instead of being split into words that the index never holds.
 */
export function parseSearchQuery(query: string): { prefix: string | null; addresses: string[] } {
  const lower = query.toLowerCase();
  const addresses = [...new Set(lower.match(addressPattern) ?? [])];
  const words = lower.replace(addressPattern, " ").match(/[\p{L}\p{N}]+/gu) ?? [];
  const prefix = words.length === 0 ? null : words.map((w, i) => (i === words.length - 1 ? `${w}:*` : w)).join(" & ");
  return { prefix, addresses };
}

/**
 * Postgres marks the matches with two private-use characters that no stored text carries (they are removed
 * from it first); the passage is then escaped as a whole and only those marks become markup. So the email's
 * own text, whatever it holds (`<img onerror>`, or `&lt;` a sender escaped), reaches the page as text.
 */
const [markStart, markStop] = ["\uE000", "\uE001"];
const headlineOptions = `StartSel=${markStart}, StopSel=${markStop}, MaxWords=30, MinWords=10, MaxFragments=2`;

function escapeHtml(text: string): string {
  const buffer: StringBuffer = [""];
  escapeToBuffer(text, buffer);
  return buffer[0] as string;
}

export const highlightHtml = (marked: string): string =>
  escapeHtml(marked).replaceAll(markStart, "<mark>").replaceAll(markStop, "</mark>");

export async function searchEmails(store: TierStore, scope: TenantScope, input: { query: string; limit: number }): Promise<SearchHit[]> {
  const { prefix, addresses } = parseSearchQuery(input.query);
  if (!prefix && addresses.length === 0) return [];
  // plainto_tsquery runs an address through the same parser as the index: one lexeme, whatever it contains.
  const parts = [...(prefix ? [sql`to_tsquery('english', ${prefix})`] : []), ...addresses.map((a) => sql`plainto_tsquery('english', ${a})`)];
  const query = sql.join(parts, sql` && `);
  const [rows] = await tenantBatch(store, scope, (db) => [
    db.execute<{ email_id: string; subject: string; rank: number; highlight: string }>(sql`
      with q as (select ${query} as q)
      select e.email_id, e.subject, ts_rank(e.search, q.q) as rank,
             ts_headline('english', translate(e.subject || ' — ' || coalesce(e.snippet, ''), ${markStart + markStop}, ''), q.q,
                         ${headlineOptions}) as highlight
      from ${emailContents} e, q
      where e.tenant_id = ${scope.tenantId} and e.search @@ q.q
      order by rank desc, e.created_at desc
      limit ${input.limit}`),
  ]);
  return rows.rows.map((r) => ({ emailId: r.email_id, subject: r.subject, rank: Number(r.rank), highlight: highlightHtml(r.highlight) }));
}
