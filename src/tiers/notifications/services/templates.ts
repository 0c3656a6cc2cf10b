// Email notifications' content: one template per notification type (a default for the rest), HTML and text, every
// value HTML-escaped in the HTML part.

export interface TemplateInput {
  type: string;
  title: string;
  message: string;
  data: unknown;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => entities[c] ?? c);

/** Paragraphs of the message, each escaped, line breaks kept. */
const paragraphs = (text: string): string =>
  text
    .split(/\n{2,}/)
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, "<br>")}</p>`)
    .join("\n");

const layout = (heading: string, body: string, footer: string): string =>
  `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(heading)}</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#111">
<h1 style="font-size:18px">${escapeHtml(heading)}</h1>
${body}
<p style="color:#666;font-size:12px">${escapeHtml(footer)}</p>
</body></html>`;

type Template = (n: TemplateInput) => RenderedEmail;

const preferencesFooter = "You receive this because of your notification preferences; change them in your notification settings.";

const defaultTemplate: Template = (n) => ({
  subject: n.title,
  text: `${n.title}\n\n${n.message}\n\n--\n${preferencesFooter}\n`,
  html: layout(n.title, paragraphs(n.message), preferencesFooter),
});

/** A link from `data.url` is shown only when it is http(s); anything else is left out, not escaped into an href. */
const safeUrl = (data: unknown): string | null => {
  const url = data && typeof data === "object" ? (data as Record<string, unknown>).url : undefined;
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.toString() : null;
  } catch {
    return null;
  }
};

/** Security notices always say so in the subject, and never carry a link (a phishing pattern). */
const securityTemplate: Template = (n) => ({
  subject: `Security notice: ${n.title}`,
  text: `${n.message}\n\nIf this was not you, change your password and contact your administrator.\n`,
  html: layout(
    `Security notice: ${n.title}`,
    `${paragraphs(n.message)}\n<p><strong>If this was not you, change your password and contact your administrator.</strong></p>`,
    "Security notices are always sent.",
  ),
});

const linkTemplate: Template = (n) => {
  const url = safeUrl(n.data);
  const base = defaultTemplate(n);
  if (!url) return base;
  return {
    subject: base.subject,
    text: `${n.title}\n\n${n.message}\n\n${url}\n\n--\n${preferencesFooter}\n`,
    html: layout(n.title, `${paragraphs(n.message)}\n<p><a href="${escapeHtml(url)}">Open</a></p>`, preferencesFooter),
  };
};

/** By type prefix: `security.*`, then any type whose data carries a `url`; otherwise the default. */
export function renderEmail(n: TemplateInput): RenderedEmail {
  if (n.type.startsWith("security.")) return securityTemplate(n);
  if (safeUrl(n.data)) return linkTemplate(n);
  return defaultTemplate(n);
}

export interface DigestEntry {
  type: string;
  title: string;
  message: string;
  createdAt: string;
}

/** One email for a digest window: each notification's title and message, oldest first, every value escaped. */
export function renderDigest(entries: DigestEntry[]): RenderedEmail {
  const subject = entries.length === 1 ? "1 new notification" : `${entries.length} new notifications`;
  const text = entries.map((e) => `${e.title}\n${e.message}`).join("\n\n---\n\n");
  const html = entries.map((e) => `<h2 style="font-size:15px">${escapeHtml(e.title)}</h2>\n${paragraphs(e.message)}`).join("\n<hr>\n");
  const footer = "You receive this digest because of your notification settings; change its window or turn it off there.";
  return { subject, text: `${text}\n\n--\n${footer}\n`, html: layout(subject, html, footer) };
}
